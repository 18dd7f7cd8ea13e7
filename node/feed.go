package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/vigilnet/vigil/feed"
	"github.com/vigilnet/vigil/gossip"
	"github.com/vigilnet/vigil/gossip/evidence"
	vpb "github.com/vigilnet/vigil/proto"
	"github.com/vigilnet/vigil/roster"
	"github.com/vigilnet/vigil/store"
	"github.com/vigilnet/vigil/tlog"
	"github.com/vigilnet/vigil/witness"
)

// FeedConfig configures the read API, the event stream and the dashboard.
type FeedConfig struct {
	// Tokens, if set, are the bearer tokens allowed to read the feed
	// (at least 16 characters each); empty means public.
	Tokens []string `yaml:"tokens"`
	// CORSOrigins are the browser origins ("https://host[:port]" or "*")
	// allowed to read the feed cross-origin; empty means CORS is off.
	CORSOrigins []string `yaml:"cors_origins"`
	// WitnessInterval is the expected interval between a log's
	// checkpoints that the witness timeline measures lateness in (a
	// witness is late after one interval behind, missing after three);
	// 0 means each log's freshness interval (freshness.intervals, its
	// list's qpd, else freshness.default_interval).
	WitnessInterval time.Duration `yaml:"witness_interval"`
}

// nodeFeed is the node's feed state, embedded in Node.
type nodeFeed struct {
	feed     *feed.Feed
	feedNow  func() time.Time // Deps.Now
	peers    peerBook
	evidence evidenceList
}

// mountFeed builds the feed over the node's store and roster and adds its
// routes to the node's mux.
func (n *Node) mountFeed() error {
	for origin := range n.cfg.Freshness.Intervals {
		if _, ok := n.roster.Load().Log(origin); !ok {
			n.log.Warn("freshness.intervals names a log the roster does not list; its interval is unused", "origin", origin)
		}
	}
	cfg := feed.Config{
		Source: feedSource{n},
		// Notes that gossip verified cost the feed no Ed25519 work.
		WrapVerifiers: n.sigs.Wrap,
		Tokens:        n.cfg.Feed.Tokens,
		CORSOrigins:   n.cfg.Feed.CORSOrigins,
		// Without pacing, re-verifying each new cosigned checkpoint for the
		// feed cost the witness a third of its CPU under load.
		RebuildInterval: time.Second,
		Logger:          n.log.With("component", "feed"),
		// Stream caps below the connection caps (connlimit.go).
		MaxSubscribers:        n.cfg.HTTP.MaxEventStreams,
		MaxSubscribersPerAddr: n.cfg.HTTP.MaxEventStreamsPerAddr,
		StreamLifetime:        n.cfg.HTTP.EventStreamLifetime,
		Now:                   n.feedNow,
		Freshness: feed.FreshnessConfig{
			DefaultInterval: n.cfg.Freshness.DefaultInterval,
			Intervals:       n.cfg.Freshness.Intervals,
			Check:           n.cfg.Freshness.CheckEvery,
		},
		WitnessStore: n.store,
	}
	if iv := n.cfg.Feed.WitnessInterval; iv > 0 {
		cfg.ExpectedInterval = func(string) time.Duration { return iv }
		cfg.WitnessTick = min(5*time.Second, max(iv/10, 10*time.Millisecond))
	}
	if n.keys != nil && n.keys.Cosigner != nil {
		v, err := tlog.NewWitnessVerifier(n.keys.OwnVKey(n.cfg.Witness.CosignatureTypes, n.roster.Load()))
		if err != nil {
			return fmt.Errorf("feed: own key: %w", err)
		}
		cfg.OwnKey = v
	}
	f, err := feed.New(cfg)
	if err != nil {
		return err
	}
	n.feed = f
	n.reg.MustRegister(f.Metrics()...)
	f.Register(n.mux)
	return nil
}

// Feed returns the node's feed.
func (n *Node) Feed() *feed.Feed { return n.feed }

// runFeed follows changes for the feed's event stream until ctx ends.
func (n *Node) runFeed(ctx context.Context) error {
	if n.feed == nil {
		return nil
	}
	return n.feed.Run(ctx)
}

// afterCosign is the witness's AfterCosign hook: it must not block.
func (n *Node) afterCosign(c witness.Cosigned) {
	if n.feed != nil {
		n.feed.Cosigned(c.Log, c.Note)
		n.feed.CosignaturesSeen(c.Log.Origin, nil, c.Note)
	}
}

// feedSource is the feed's view of the node: checkpoint records with merged
// cosignatures and evidence from the store, plus the checkpoint this node's
// witness cosigned last.
type feedSource struct{ n *Node }

var _ feed.Source = feedSource{}

func (s feedSource) Roster() *roster.Roster { return s.n.roster.Load() }

// maxRecordsPerRead bounds one store read of checkpoint records.
const maxRecordsPerRead = 4096

func (s feedSource) Checkpoints(ctx context.Context, origin string, q feed.CheckpointQuery) ([][]byte, error) {
	if q.Limit <= 0 || q.MinSize > q.MaxSize {
		return nil, nil
	}
	var recs []store.CheckpointRecord
	var err error
	if q.Newest {
		recs, err = s.newest(ctx, origin, q.MinSize, q.MaxSize, q.Limit)
	} else {
		recs, err = s.oldest(ctx, origin, q.MinSize, q.MaxSize, q.Limit)
	}
	if err != nil {
		return nil, err
	}
	notes := make([][]byte, 0, len(recs)+1)
	sizes := make([]uint64, 0, len(recs)+1)
	for _, r := range recs {
		notes = append(notes, r.Note)
		sizes = append(sizes, r.Size)
	}
	// The checkpoint this node cosigned last, which gossip may not have
	// merged into a record yet.
	if st, err := s.n.store.WitnessState(ctx, origin); err == nil && len(st.Checkpoint) > 0 && st.Size >= q.MinSize && st.Size <= q.MaxSize {
		notes = append(notes, st.Checkpoint)
		sizes = append(sizes, st.Size)
	} else if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	return trimSizes(notes, sizes, q.Limit, q.Newest), nil
}

// trimSizes keeps the notes of the q.Limit first distinct sizes in query order.
func trimSizes(notes [][]byte, sizes []uint64, limit int, newest bool) [][]byte {
	distinct := slices.Clone(sizes)
	slices.Sort(distinct)
	distinct = slices.Compact(distinct)
	if len(distinct) <= limit {
		return notes
	}
	var lo, hi uint64 = distinct[0], distinct[limit-1]
	if newest {
		lo, hi = distinct[len(distinct)-limit], distinct[len(distinct)-1]
	}
	out := notes[:0:0]
	for i, n := range notes {
		if sizes[i] >= lo && sizes[i] <= hi {
			out = append(out, n)
		}
	}
	return out
}

// newest reads records of origin with sizes in [min, max], largest first,
// covering up to limit distinct sizes.
func (s feedSource) newest(ctx context.Context, origin string, minSize, maxSize uint64, limit int) ([]store.CheckpointRecord, error) {
	before := maxSize + 1
	if maxSize == math.MaxUint64 {
		before = math.MaxUint64
	}
	var out []store.CheckpointRecord
	sizes := 0
	for range maxRecordsPerRead {
		recs, next, err := s.n.store.CheckpointHistory(ctx, origin, before, limit-sizes)
		if err != nil {
			return nil, err
		}
		for _, r := range recs {
			if r.Size < minSize {
				return out, nil
			}
			if len(out) == 0 || out[len(out)-1].Size != r.Size {
				sizes++
			}
			out = append(out, r)
		}
		if next == 0 || sizes >= limit {
			return out, nil
		}
		before = next
	}
	return out, nil
}

// oldest reads records of origin with sizes in [min, max], smallest first,
// covering up to limit distinct sizes (the feed finds out whether there is
// more from a limit+1st). The store pages newest first, so it looks for a
// window [min, min+w] holding more than limit sizes (or reaching the newest
// record) by doubling w, bisecting if a window holds more records than one
// read returns: O(log size) reads.
func (s feedSource) oldest(ctx context.Context, origin string, minSize, maxSize uint64, limit int) ([]store.CheckpointRecord, error) {
	// Nothing above the newest record matters: it bounds the search.
	newest, _, err := s.n.store.CheckpointHistory(ctx, origin, math.MaxUint64, 1)
	if err != nil || len(newest) == 0 {
		return nil, err
	}
	maxSize = min(maxSize, newest[0].Size)
	if minSize > maxSize {
		return nil, nil
	}
	// read returns the records in [minSize, minSize+w] (capped at maxSize),
	// smallest first, and whether the read returned all of them.
	read := func(w uint64) (recs []store.CheckpointRecord, sizes int, whole, complete bool, err error) {
		top := maxSize
		if w < maxSize-minSize {
			top = minSize + w
		}
		all, _, err := s.n.store.CheckpointHistory(ctx, origin, top+1, maxRecordsPerRead)
		if err != nil {
			return nil, 0, false, false, err
		}
		i := slices.IndexFunc(all, func(r store.CheckpointRecord) bool { return r.Size < minSize })
		complete = i >= 0 || len(all) < maxRecordsPerRead
		if i >= 0 {
			all = all[:i]
		}
		slices.Reverse(all)
		for j, r := range all {
			if j == 0 || all[j-1].Size != r.Size {
				sizes++
			}
		}
		return all, sizes, top == maxSize, complete, nil
	}
	w := uint64(limit)
	var lo, hi uint64 // lo: a window too small; hi: one too big to read at once
	for range 130 {
		recs, sizes, whole, complete, err := read(w)
		if err != nil {
			return nil, err
		}
		switch {
		case complete && (sizes > limit || whole):
			return recs, nil
		case complete:
			lo = w
		default:
			hi = w
		}
		if hi == 0 {
			w = min(2*w, maxSize-minSize)
			continue
		}
		if w = lo + (hi-lo)/2; w == lo {
			// Only with more than maxRecordsPerRead roots of one size;
			// serve what the smaller window holds.
			recs, _, _, _, err := read(lo)
			return recs, err
		}
	}
	return nil, fmt.Errorf("reading checkpoints of %s from size %d: no window found", origin, minSize)
}

// maxEvidenceListed bounds GET /v1/evidence.
const maxEvidenceListed = 10000

// Evidence lists the newest maxEvidenceListed pieces of evidence, newest
// first.
func (s feedSource) Evidence(ctx context.Context) ([]feed.Evidence, error) {
	list, err := s.n.evidence.list(ctx, s.n.store, maxEvidenceListed)
	for i := range list {
		list[i].Entry = s.n.evReg.entry(list[i].ID) // not cached: it arrives later
	}
	return list, err
}

func (s feedSource) EvidenceFile(ctx context.Context, id string) (feed.Evidence, []byte, error) {
	rec, err := s.n.store.Evidence(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return feed.Evidence{}, nil, fmt.Errorf("evidence %s: %w", id, feed.ErrNotFound)
	}
	if err != nil {
		return feed.Evidence{}, nil, err
	}
	e, err := vpb.UnmarshalEvidence(rec.Data)
	if err != nil {
		return feed.Evidence{}, nil, fmt.Errorf("evidence %s: %w", id, err)
	}
	file, err := evidence.MarshalFile(e)
	if err != nil {
		return feed.Evidence{}, nil, fmt.Errorf("evidence %s: %w", id, err)
	}
	return evidenceInfo(rec), file, nil
}

func evidenceInfo(rec store.EvidenceRecord) feed.Evidence {
	ev := feed.Evidence{ID: rec.ID, Kind: rec.Kind, Origin: rec.Origin, Detected: rec.Stored.UTC().Truncate(time.Millisecond), Stored: rec.Stored.UTC(), Summary: rec.Statement}
	if rec.Witness != "" {
		ev.Witnesses = []string{rec.Witness}
	}
	if e, err := vpb.UnmarshalEvidence(rec.Data); err == nil {
		for _, n := range [][]byte{e.CheckpointA, e.CheckpointB} {
			if i := bytes.Index(n, []byte("\n\n")); i >= 0 {
				if cp, err := tlog.ParseCheckpoint(n[:i+1]); err == nil {
					ev.Sizes = append(ev.Sizes, cp.Size)
				}
			}
		}
		if e.DetectedUnixMs > 0 {
			ev.Detected = time.UnixMilli(e.DetectedUnixMs).UTC()
		}
	}
	return ev
}

// Peers reports the node's gossip peers as last seen by FeedHooks'
// ScoreInspect: none until gossip is wired to it.
func (s feedSource) Peers(ctx context.Context) ([]feed.Peer, error) {
	return s.n.peers.list(s.n.roster.Load()), nil
}

// FeedHooks connect the gossip service to the feed so that what gossip
// stores reaches the event stream at once (without them the feed notices
// within its refresh interval for evidence and its view TTL for
// cosignatures, and lists no peers).
type FeedHooks struct {
	// OnEvidence is gossip.Config.OnEvidence.
	OnEvidence func(store.EvidenceRecord)
	// ScoreInspect is gossip.Config.ScoreInspect: the peer list and scores.
	ScoreInspect func(map[peer.ID]float64)
	// Store wraps the gossip service's store so that each merged
	// checkpoint record, and each suspicion or divergence recorded or
	// resolved, updates the feed.
	Store func(gossip.Store) gossip.Store
	// Peers names peers (from the peers file) and, with Host, reports
	// their connection state.
	Peers func(h host.Host, named []gossip.Peer)
}

// FeedHooks returns the hooks that feed gossip's changes to the feed.
func (n *Node) FeedHooks() FeedHooks {
	return FeedHooks{
		OnEvidence: func(store.EvidenceRecord) {
			if n.feed != nil {
				n.feed.EvidenceUpdated()
			}
		},
		ScoreInspect: func(scores map[peer.ID]float64) {
			if n.peers.setScores(scores) && n.feed != nil {
				n.feed.PeersUpdated()
			}
		},
		Store: func(s gossip.Store) gossip.Store { return notifyingStore{Store: s, n: n} },
		Peers: n.peers.setHost,
	}
}

// notifyingStore tells the feed about every checkpoint record gossip merges.
type notifyingStore struct {
	gossip.Store
	n *Node
}

// The catch-up sync sends stored evidence only if its store can list it; an
// embedded gossip.Store alone would hide *store.DB's evidence reads.
var _ gossip.SyncStore = notifyingStore{}

// NewestEvidenceIDs and Evidence let the gossip catch-up sync send this
// node's evidence.
func (s notifyingStore) NewestEvidenceIDs(ctx context.Context, limit int) ([]string, error) {
	if es, ok := s.Store.(gossip.SyncStore); ok {
		return es.NewestEvidenceIDs(ctx, limit)
	}
	return nil, nil
}

func (s notifyingStore) Evidence(ctx context.Context, id string) (store.EvidenceRecord, error) {
	if es, ok := s.Store.(gossip.SyncStore); ok {
		return es.Evidence(ctx, id)
	}
	return store.EvidenceRecord{}, store.ErrNotFound
}

// MergeCheckpoint hands the feed the note of each record it writes, which
// the feed merges into its view in memory; a merge that writes nothing
// tells the feed nothing.
func (s notifyingStore) MergeCheckpoint(ctx context.Context, origin string, size uint64, root [32]byte, fn func(old store.CheckpointRecord, exists bool) (store.CheckpointRecord, bool, error)) error {
	// The store calls fn once more for each attempt; the last call's
	// answer is what it wrote. Its notes feed the view and the witness
	// timeline.
	var oldNote, newNote []byte
	err := s.Store.MergeCheckpoint(ctx, origin, size, root, func(old store.CheckpointRecord, exists bool) (store.CheckpointRecord, bool, error) {
		rec, write, err := fn(old, exists)
		oldNote, newNote = nil, nil
		if err == nil && write {
			if exists {
				oldNote = old.Note
			}
			newNote = rec.Note
		}
		return rec, write, err
	})
	if err == nil && newNote != nil && s.n.feed != nil {
		s.n.feed.CosignaturesSeen(origin, oldNote, newNote)
		// Gossip verified each line of the record against this roster
		// (n.roster.Load is its Config.Roster): the feed need not again.
		if l, ok := s.n.roster.Load().Log(origin); ok {
			s.n.feed.CheckpointVerified(l, newNote)
		} else {
			s.n.feed.CheckpointAdded(origin, newNote)
		}
	}
	return err
}

// peerBook keeps what the feed reports about peers.
type peerBook struct {
	mu     sync.Mutex
	host   host.Host
	names  map[peer.ID]string
	scores map[peer.ID]float64
}

func (b *peerBook) setHost(h host.Host, named []gossip.Peer) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.host = h
	b.names = map[peer.ID]string{}
	for _, p := range named {
		b.names[p.Info.ID] = p.Name
	}
}

// setScores records the scores and reports whether the set of peers changed.
func (b *peerBook) setScores(scores map[peer.ID]float64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	changed := len(scores) != len(b.scores)
	for id := range scores {
		if _, ok := b.scores[id]; !ok {
			changed = true
		}
	}
	b.scores = maps.Clone(scores)
	return changed
}

func (b *peerBook) list(r *roster.Roster) []feed.Peer {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]feed.Peer, 0, len(b.scores))
	for id, score := range b.scores {
		p := feed.Peer{ID: id.String(), Name: b.names[id], Score: score, Connected: true}
		p.Role = peerRole(r, p.Name)
		if b.host != nil {
			p.Connected = b.host.Network().Connectedness(id) == network.Connected
			for _, a := range b.host.Peerstore().Addrs(id) {
				p.Addrs = append(p.Addrs, a.String())
			}
		}
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b feed.Peer) int { return strings.Compare(a.ID, b.ID) })
	return out
}
