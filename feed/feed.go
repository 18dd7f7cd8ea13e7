// Package feed is Vigil's read side for regulators and customers: a JSON API
// of the co-signed checkpoints a node holds (k of n roster witnesses), the
// evidence it keeps, the suspicions it could not settle (unproven
// divergences among them) and its peers; a server-sent event stream of
// changes; and a server-rendered HTML dashboard.
//
// GET /v1/logs/{logID}/checkpoint serves checkpoints in the format of the
// C2SP tlog-witness monitoring endpoint (c2sp.org/tlog-witness), merged from
// every source and extended with ?k=N; the node's witness serves the
// endpoint itself, for what it cosigned, under its monitoring prefix. The
// feed trusts nothing its Source returns: every note is verified
// against the roster (log signature, then each witness cosignature) before it
// is served, and the verified, merged note is cached so that serving it does
// no signature verification.
package feed

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/mod/sumdb/note"

	"github.com/vigilnet/vigil/roster"
	"github.com/vigilnet/vigil/tlog"
)

// ErrNotFound is returned by a Source for an unknown evidence ID.
var ErrNotFound = errors.New("not found")

// Source is what the feed reads. The node implements it over its store, its
// roster and its gossip engine. Implementations must be safe for concurrent use.
type Source interface {
	// Roster returns the current roster: the logs to list and the witnesses
	// whose cosignatures count.
	Roster() *roster.Roster
	// Checkpoints returns the signed checkpoint notes held for origin, each
	// with whatever cosignatures it carries, whose tree size lies in
	// [q.MinSize, q.MaxSize], ordered by size (descending if q.Newest) and
	// covering at most q.Limit distinct sizes. Several notes may share a size
	// (one per cosigner, or two roots of an equivocating log); the feed
	// verifies each and merges the cosignatures of identical checkpoints.
	Checkpoints(ctx context.Context, origin string, q CheckpointQuery) ([][]byte, error)
	// Evidence lists the evidence the node holds, newest first.
	Evidence(ctx context.Context) ([]Evidence, error)
	// EvidenceFile returns one piece of evidence and its raw file (the
	// bytes `vigil verify` checks), or an error wrapping ErrNotFound.
	EvidenceFile(ctx context.Context, id string) (Evidence, []byte, error)
	// Peers returns the node's current gossip peers.
	Peers(ctx context.Context) ([]Peer, error)
	// Suspicions lists the suspicions the node recorded, open and
	// resolved, in any order; the feed fills in ID, Kind, LogID and Open.
	Suspicions(ctx context.Context) ([]Suspicion, error)
}

// CheckpointQuery selects checkpoints by tree size.
type CheckpointQuery struct {
	// MinSize and MaxSize bound the tree size, inclusive.
	MinSize, MaxSize uint64
	// Limit bounds the number of distinct sizes returned.
	Limit int
	// Newest returns the largest sizes in the range first.
	Newest bool
}

// AllSizes is the MaxSize that bounds nothing.
const AllSizes = math.MaxUint64

// Evidence describes one piece of stored evidence of misbehaviour.
type Evidence struct {
	// ID identifies the evidence (e.g. the hex SHA-256 of its file).
	ID string `json:"id"`
	// Kind is log-equivocation or witness-equivocation (design: kinds 1-3).
	Kind   string `json:"kind"`
	Origin string `json:"origin"`
	// LogID is filled in by the feed.
	LogID string `json:"log_id"`
	// Witnesses names the roster witnesses implicated, if any.
	Witnesses []string `json:"witnesses,omitempty"`
	// Sizes are the tree sizes of the two conflicting checkpoints.
	Sizes []uint64 `json:"sizes,omitempty"`
	// Detected is when the node that found it did; Stored is when this
	// node stored it (the same, or later when it came by gossip).
	Detected time.Time `json:"detected"`
	Stored   time.Time `json:"stored"`
	// Entry is the transparency-service entry ID under which the node
	// registered this evidence (node option evidence.register_to), if any.
	Entry string `json:"entry,omitempty"`
	// Summary says in one sentence what the evidence proves.
	Summary string `json:"summary"`
}

// Peer is one gossip peer of the node.
type Peer struct {
	ID string `json:"id"`
	// Name is the operator name from the roster, if the peer is a roster witness.
	Name string `json:"name,omitempty"`
	// Role is "witness" (the peers file binds it to a roster witness),
	// "observer" (the peers file names it, not as a roster witness) or
	// "unknown" (nothing the node was configured with names it).
	Role  string  `json:"role"`
	Score float64 `json:"score"`
	// Connected reports a live connection.
	Connected bool     `json:"connected"`
	Addrs     []string `json:"addrs,omitempty"`
}

// Config configures a Feed. Source is required.
type Config struct {
	Source Source
	// OwnKey is this node's cosignature verifier when it is a witness. Its
	// cosignature is served with the checkpoints it cosigned (as the C2SP
	// monitoring endpoint requires) but counts towards k only if the roster
	// lists the key.
	OwnKey note.Verifier
	// Tokens, if non-empty, are the bearer tokens that may read the feed;
	// empty means the read endpoints are public.
	Tokens []string
	// CORSOrigins lists the browser origins allowed to read the API
	// cross-origin ("*" for any); empty disables CORS.
	CORSOrigins []string
	// RefreshInterval is how often the feed re-reads its source for changes
	// nobody announced (new cosignatures, evidence, peers); 0 means 5s.
	RefreshInterval time.Duration
	// WrapVerifiers, if set, wraps the verifiers the feed checks notes with,
	// once per roster: a node passes its gossip service's cache of verified
	// signatures (gossip.SignatureCache.Wrap), so that a note gossip has
	// checked costs the feed no Ed25519 work. Wrapped verifiers must accept
	// exactly what the originals accept.
	WrapVerifiers func(r *roster.Roster, vs ...note.Verifier) []note.Verifier
	// RebuildInterval paces the work announced by CheckpointUpdated and the
	// other *Updated calls: after a round of view rebuilds the feed waits
	// until this long after the round began, so announcements coalesce and a
	// busy witness pays for at most about one view build (note
	// verifications included) per log per interval, instead of one per
	// cosignature. The first announcement after a quiet period is handled at
	// once. 0 means no pacing.
	RebuildInterval time.Duration
	// ViewTTL is how old a log's cached view may get before the refresh
	// loop rebuilds it; 0 means 30s.
	ViewTTL time.Duration
	// EventBuffer is how many past events a reconnecting client can resume
	// from; 0 means 1024.
	EventBuffer int
	// MaxSubscribers bounds concurrent event streams; past it the oldest
	// stream is ended. 0 means 128.
	MaxSubscribers int
	// MaxSubscribersPerAddr bounds concurrent event streams from one IP
	// address; past it that address's oldest stream is ended. 0 means 8.
	MaxSubscribersPerAddr int
	// StreamLifetime is how long an event stream lasts before the feed ends
	// it, having sent a retry line, so that EventSource clients reconnect
	// (and resume with Last-Event-ID). 0 means 10 minutes.
	StreamLifetime time.Duration
	// Heartbeat is the interval of SSE keep-alive comments; 0 means 15s.
	Heartbeat time.Duration
	// Freshness sets the logs' expected publication intervals and how
	// often their freshness is re-evaluated (freshness.go).
	Freshness FreshnessConfig
	// WitnessStore, if set, persists the witness timeline (witness_timeline.go)
	// across restarts; nil keeps it in memory.
	WitnessStore WitnessStore
	// ExpectedInterval returns a log's expected publication interval, the
	// unit of the witness late and missing thresholds; nil means the log's
	// freshness interval (Freshness.Interval).
	ExpectedInterval func(origin string) time.Duration
	// WitnessTick is how often witness states are recomputed; 0 means 5s.
	WitnessTick time.Duration
	// Now is the clock; nil means time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

// Feed serves the read API, the event stream and the dashboard.
type Feed struct {
	cfg     Config
	src     Source
	log     *slog.Logger
	now     func() time.Time
	metrics *Metrics
	hub     *hub
	views   *viewCache
	auth    *access
	fresh   *freshTracker
	// witnesses is the witness timeline.
	witnesses *witnessTracker

	dirtyMu sync.Mutex
	dirty   map[string]bool
	wake    chan struct{}
	// urgent wakes a paced round for new evidence, which is rare and
	// must not wait for the rebuilds' pacing.
	urgent chan struct{}

	stateMu    sync.Mutex
	evidence   []Evidence // last evidence list seen, newest first
	peers      []Peer
	suspicions []Suspicion // last suspicion list published, in key order
	// suspicionsRead is the last suspicion list read, published or not.
	suspicionsRead []Suspicion
}

// New returns a Feed. Call Run to follow changes and Handler to serve it.
func New(cfg Config) (*Feed, error) {
	if cfg.Source == nil {
		return nil, errors.New("feed: Source is required")
	}
	if cfg.RefreshInterval <= 0 {
		cfg.RefreshInterval = 5 * time.Second
	}
	if cfg.ViewTTL <= 0 {
		cfg.ViewTTL = 30 * time.Second
	}
	if cfg.EventBuffer <= 0 {
		cfg.EventBuffer = 1024
	}
	if cfg.MaxSubscribers <= 0 {
		cfg.MaxSubscribers = 128
	}
	if cfg.MaxSubscribersPerAddr <= 0 {
		cfg.MaxSubscribersPerAddr = 8
	}
	if cfg.StreamLifetime <= 0 {
		cfg.StreamLifetime = 10 * time.Minute
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = 15 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	lg := cfg.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	auth, err := newAccess(cfg.Tokens, cfg.CORSOrigins)
	if err != nil {
		return nil, err
	}
	m := newMetrics()
	f := &Feed{
		cfg:     cfg,
		src:     cfg.Source,
		log:     lg,
		now:     cfg.Now,
		metrics: m,
		hub:     newHub(cfg.EventBuffer, cfg.MaxSubscribers, cfg.MaxSubscribersPerAddr, cfg.Now),
		auth:    auth,
		dirty:   map[string]bool{},
		wake:    make(chan struct{}, 1),
		urgent:  make(chan struct{}, 1),
	}
	f.views = newViewCache(f)
	f.fresh = newFreshTracker(f, cfg.Freshness)
	f.witnesses = newWitnessTracker(f)
	f.witnesses.load(context.Background())
	// Prime the evidence and peer lists so only later changes become
	// events. Here, not in Run: what the caller's hooks report between New
	// and Run (a node starts Run in its own goroutine) is a later change,
	// and a prime in Run would take it in unannounced.
	f.refreshEvidence(context.Background(), false)
	f.refreshPeers(context.Background(), false)
	f.refreshSuspicions(context.Background(), false)
	return f, nil
}

// Metrics returns the feed's Prometheus collectors for the caller to register.
func (f *Feed) Metrics() []prometheus.Collector {
	return append(append(f.metrics.collectors(f.hub), f.fresh.m.collectors()...), newWitnessCollector(f))
}

// CheckpointUpdated tells the feed that the source holds something new for
// origin (a checkpoint this node cosigned, or cosignatures from gossip). It
// never blocks: the view is rebuilt and an event published by Run.
func (f *Feed) CheckpointUpdated(origin string) {
	f.views.slot(origin).pending.markStale()
	f.markDirty(origin)
}

// EvidenceUpdated tells the feed that the source holds new evidence. It never
// blocks; Run publishes the event.
func (f *Feed) EvidenceUpdated() {
	f.markDirty(dirtyEvidence)
	select {
	case f.urgent <- struct{}{}:
	default:
	}
}

// PeersUpdated tells the feed that the node's peers changed. It never blocks.
func (f *Feed) PeersUpdated() { f.markDirty(dirtyPeers) }

// Internal dirty keys; origins never contain "\n", so these cannot collide.
const (
	dirtyEvidence   = "\nevidence"
	dirtyPeers      = "\npeers"
	dirtySuspicions = "\nsuspicions"
)

func (f *Feed) markDirty(key string) {
	f.dirtyMu.Lock()
	f.dirty[key] = true
	f.dirtyMu.Unlock()
	f.poke()
}

func (f *Feed) poke() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// Run follows the source until ctx ends: it rebuilds the views of logs that
// changed, polls for evidence and peer changes, and publishes events. When
// it returns, every open event stream is closed.
func (f *Feed) Run(ctx context.Context) error {
	defer f.hub.close()
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { f.fresh.run(ctx) })
	defer f.witnesses.start(ctx)()
	t := time.NewTicker(f.cfg.RefreshInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-f.wake:
			start := time.Now()
			f.processDirty(ctx)
			f.pace(ctx, start)
		case <-t.C:
			f.refreshEvidence(ctx, true)
			f.refreshPeers(ctx, true)
			f.refreshSuspicions(ctx, true)
			f.views.refreshStale(ctx)
		}
	}
}

// pace waits until RebuildInterval after start, or until ctx ends. New
// evidence announced meanwhile is published at once.
func (f *Feed) pace(ctx context.Context, start time.Time) {
	d := f.cfg.RebuildInterval - time.Since(start)
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			return
		case <-f.urgent:
			f.dirtyMu.Lock()
			due := f.dirty[dirtyEvidence]
			delete(f.dirty, dirtyEvidence)
			f.dirtyMu.Unlock()
			if due {
				f.refreshEvidence(ctx, true)
			}
		}
	}
}

func (f *Feed) processDirty(ctx context.Context) {
	f.dirtyMu.Lock()
	dirty := f.dirty
	f.dirty = map[string]bool{}
	f.dirtyMu.Unlock()
	for key := range dirty {
		if ctx.Err() != nil {
			return
		}
		switch key {
		case dirtyEvidence:
			f.refreshEvidence(ctx, true)
		case dirtyPeers:
			f.refreshPeers(ctx, true)
		case dirtySuspicions:
			f.refreshSuspicions(ctx, true)
		default:
			f.views.rebuild(ctx, key)
		}
	}
}

// evidenceList returns the evidence the source holds now, falling back to
// the last list seen if the source fails.
func (f *Feed) evidenceList(ctx context.Context) []Evidence {
	list, err := f.src.Evidence(ctx)
	if err != nil {
		f.log.Warn("feed: listing evidence", "err", err)
		f.stateMu.Lock()
		defer f.stateMu.Unlock()
		return f.evidence
	}
	for i := range list {
		list[i].LogID = tlog.LogID(list[i].Origin)
	}
	return list
}

// refreshEvidence re-reads the evidence list and, if publish is set,
// publishes an event for each piece not seen before, oldest first.
func (f *Feed) refreshEvidence(ctx context.Context, publish bool) {
	list, err := f.src.Evidence(ctx)
	if err != nil {
		f.log.Warn("feed: listing evidence", "err", err)
		return
	}
	f.stateMu.Lock()
	seen := make(map[string]bool, len(f.evidence))
	for _, e := range f.evidence {
		seen[e.ID] = true
	}
	f.evidence = list
	f.stateMu.Unlock()
	if !publish {
		return
	}
	for i := len(list) - 1; i >= 0; i-- {
		if e := list[i]; !seen[e.ID] {
			e.LogID = tlog.LogID(e.Origin)
			f.hub.publish(EventEvidence, e)
			f.metrics.events.WithLabelValues(EventEvidence).Inc()
		}
	}
}

// refreshPeers re-reads the peers and, if publish is set and a peer came,
// went, changed role or connection, publishes the new list.
func (f *Feed) refreshPeers(ctx context.Context, publish bool) {
	peers, err := f.src.Peers(ctx)
	if err != nil {
		f.log.Warn("feed: listing peers", "err", err)
		return
	}
	f.stateMu.Lock()
	changed := !samePeers(f.peers, peers)
	f.peers = peers
	f.stateMu.Unlock()
	if publish && changed {
		if peers == nil {
			peers = []Peer{}
		}
		f.hub.publish(EventPeers, PeersEvent{Peers: peers})
		f.metrics.events.WithLabelValues(EventPeers).Inc()
	}
}

// samePeers compares peer lists by identity, role and connection; scores
// drift all the time and are not worth an event.
func samePeers(a, b []Peer) bool {
	type k struct {
		id, role  string
		connected bool
	}
	set := func(ps []Peer) map[k]bool {
		m := make(map[k]bool, len(ps))
		for _, p := range ps {
			m[k{p.ID, p.Role, p.Connected}] = true
		}
		return m
	}
	sa, sb := set(a), set(b)
	if len(sa) != len(sb) {
		return false
	}
	for x := range sa {
		if !sb[x] {
			return false
		}
	}
	return true
}

// Cosigned tells the feed that this node's witness has just cosigned
// signedNote for l (the roster entry whose key verified the log's
// signature) and stored it, and announces it: the next round merges it
// into the log's view in memory. The feed takes that note's log signature
// and this node's cosignature as verified instead of verifying them again:
// under load that re-verification was the feed's largest cost. Only the newest such note per log is
// remembered, and only for the roster entry l: after a roster reload the
// note is verified as usual. The feed keeps signedNote itself, so the
// caller must not modify it afterwards.
func (f *Feed) Cosigned(l *roster.Log, signedNote []byte) {
	f.views.slot(l.Origin).vouched.Store(&vouchedNote{note: signedNote, log: l})
	f.markDirty(l.Origin)
}
