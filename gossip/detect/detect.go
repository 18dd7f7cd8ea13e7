// Package detect is the split-view detector's core: given verified
// checkpoints of the logs a node watches, it finds every split view they
// reveal (evidence), and keeps visible every divergence it cannot prove
// yet (a suspicion), without knowing about gossip, storage or HTTP.
//
// The caller (gossip's adapter) implements the interfaces declared here
// with the node's store, the logs' tiles, the peer proof protocol and the
// evidence topic, and feeds Process with sightings whose log signature and
// cosignatures it has verified against the roster.
package detect

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/note"

	vpb "github.com/vigilnet/vigil/proto"
	"github.com/vigilnet/vigil/roster"
	"github.com/vigilnet/vigil/tlog"
)

// Key identifies a checkpoint: (origin, size, root).
type Key struct {
	Origin string
	Size   uint64
	Root   [32]byte
}

// Sighting is a checkpoint whose log signature and roster cosignatures the
// caller verified.
type Sighting struct {
	Key Key
	// Body is the checkpoint text (the note's signed message).
	Body []byte
	// Sigs are the verified signatures: the log's first, then roster
	// witnesses' cosignatures.
	Sigs []note.Signature
	// Cosigners are the roster names of the witnesses among Sigs.
	Cosigners map[string]bool
	// From is the peer that published the sighting, "" if none (this node,
	// a pull from the log). It may serve a consistency proof.
	From string
	// Seen, Observer and Source describe the first sighting, for the
	// store's record; the detector does not read them.
	Seen             time.Time
	Observer, Source string
}

// Note returns the signed note of s.
func (s *Sighting) Note() ([]byte, error) { return tlog.FormatNote(s.Body, s.Sigs) }

// Store holds the checkpoints the node has seen.
type Store interface {
	// Known reports, from memory, whether k is stored; false when unsure.
	Known(k Key) bool
	// AtSize returns the keys of the stored checkpoints of origin at size.
	AtSize(ctx context.Context, origin string, size uint64) ([]Key, error)
	// Merge stores s, merging its signatures into k's stored note; it
	// reports whether roster cosigners were added (or k is new).
	Merge(ctx context.Context, s Sighting) (added bool, err error)
	// Note returns k's stored note: the best-known one, with every
	// verified signature merged.
	Note(ctx context.Context, k Key) ([]byte, error)
	// Cosigners returns the roster witnesses whose valid cosignature k's
	// stored note carries.
	Cosigners(ctx context.Context, k Key) (map[string]bool, error)
	// Newest returns the largest stored checkpoint of origin.
	Newest(ctx context.Context, origin string) (Key, bool, error)
}

// ErrNoSource means there is no way to read the log's tree (a push-only
// log without a tiles URL).
var ErrNoSource = errors.New("no proof source for this log")

// Proofs builds consistency proofs from the log's tree as it is served to
// this node.
type Proofs interface {
	// Consistency returns an evidence-form consistency proof from m to n
	// (1 <= m < n; see evidence.EvidenceProof) of the log's tree at size
	// n, whose signed root the caller expects to be rootN, and the size-m
	// and size-n roots the proof implies (evidence.RootsFromConsistency;
	// the detector relies on them, and the evidence it raises is verified
	// again). Errors wrap ErrNoSource when the log has no source.
	Consistency(ctx context.Context, origin string, m, n uint64, rootN [32]byte) (proof [][]byte, rootM, gotN [32]byte, err error)
}

// PeerProofs asks other nodes for consistency proofs.
type PeerProofs interface {
	// PeerProof asks peer for an evidence-form proof m→n bound to rootN
	// and returns it with the size-m root it implies. A proof returned
	// reproduces rootN.
	PeerProof(ctx context.Context, peer, origin string, m, n uint64, rootN [32]byte) (proof [][]byte, rootM [32]byte, err error)
	// WitnessPeer returns the peer of the roster witness name, if known.
	WitnessPeer(name string) (string, bool)
}

// Side is one checkpoint of an unproven divergence.
type Side struct {
	Size      uint64
	Root      [32]byte
	Cosigners []string
}

// How a divergence ended.
const (
	ResolvedConsistent = "consistent"
	ResolvedEvidence   = "evidence"
)

// Output receives what the detector finds.
type Output interface {
	// Evidence is a split view: log equivocation (kind, checkpoints A and
	// B with A.size <= B.size, a proof for different sizes) or witness
	// equivocation (the same plus the witness's key).
	Evidence(ctx context.Context, e *vpb.Evidence)
	// Divergence is an unproven divergence between two validly signed
	// checkpoints of origin, recorded (again) after the grace period.
	Divergence(ctx context.Context, origin string, small, large Side, reason string)
	// Resolved ends the divergence recorded under large.
	Resolved(ctx context.Context, large Key, how string)
	// Head reports the log's new head: the largest checkpoint checked
	// consistent with the previous one.
	Head(k Key)
}

// Config configures a Detector. Store, Out and Roster are required.
type Config struct {
	Store Store
	// Proofs nil means the node reads no log's tree.
	Proofs Proofs
	// Peers nil means no proof is asked of other nodes.
	Peers  PeerProofs
	Out    Output
	Roster func() *roster.Roster
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Grace is how long two checkpoints of different sizes may stay
	// unproven before the divergence is recorded (default 2m).
	Grace time.Duration
	// RetryMin and RetryMax bound the backoff between attempts to prove
	// an unproven pair (defaults 2s and 5m).
	RetryMin, RetryMax time.Duration
	// MaxPeerAsks bounds the peers asked for one proof per attempt
	// (default 3): the publisher first, then cosigning witnesses.
	MaxPeerAsks int
	Logger      *slog.Logger
}

// Detector holds the per-log detection state. It is safe for concurrent
// use; work on one log is serialised.
type Detector struct {
	cfg Config
	log *slog.Logger

	mu   sync.Mutex
	logs map[string]*logState
}

// New returns a detector.
func New(cfg Config) (*Detector, error) {
	if cfg.Store == nil || cfg.Out == nil || cfg.Roster == nil {
		return nil, errors.New("detect: Store, Out and Roster are required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Grace <= 0 {
		cfg.Grace = 2 * time.Minute
	}
	if cfg.RetryMin <= 0 {
		cfg.RetryMin = 2 * time.Second
	}
	if cfg.RetryMax < cfg.RetryMin {
		cfg.RetryMax = max(cfg.RetryMin, 5*time.Minute)
	}
	if cfg.MaxPeerAsks <= 0 {
		cfg.MaxPeerAsks = 3
	}
	lg := cfg.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	return &Detector{cfg: cfg, log: lg, logs: map[string]*logState{}}, nil
}

// Bounds on the per-log memory.
const (
	// maxConflictsPerLog bounds the split views remembered per log for
	// witness-equivocation re-checks when new cosignatures arrive.
	maxConflictsPerLog = 64
	// maxPendingPerLog bounds the unproven checkpoints kept per log for
	// re-checks; beyond it a divergence is recorded at once.
	maxPendingPerLog = 32
)

// logState is the detector's per-log state; mu serialises work on the log.
type logState struct {
	mu sync.Mutex
	// head is the largest checkpoint whose consistency with the previous
	// head was checked (by proof or attestation); never of size 0.
	head     Key
	haveHead bool
	// pending are checkpoints of another size than head not yet shown
	// consistent with it or not.
	pending []*pending
	// conflicts are the split views found, kept to detect witnesses that
	// cosign both sides later.
	conflicts []*conflict
	// unstored is the checkpoint being looked at before it is stored, and
	// unstoredNote (while not nil) its sighting's note.
	unstored     Key
	unstoredNote []byte
}

type conflict struct {
	a, b    Key      // a.Size <= b.Size
	proof   [][]byte // evidence form; nil for same size
	witness map[string]bool
}

// state returns the state of origin, created on first use.
func (d *Detector) state(origin string) *logState {
	d.mu.Lock()
	defer d.mu.Unlock()
	ls, ok := d.logs[origin]
	if !ok {
		ls = &logState{}
		d.logs[origin] = ls
	}
	return ls
}

// Head returns the head of origin, if there is one.
func (d *Detector) Head(origin string) (Key, bool) {
	ls := d.state(origin)
	ls.mu.Lock()
	defer ls.mu.Unlock()
	return ls.head, ls.haveHead
}

// Pending returns the number of checkpoints of origin not yet proven
// consistent or not with its head.
func (d *Detector) Pending(origin string) int {
	ls := d.state(origin)
	ls.mu.Lock()
	defer ls.mu.Unlock()
	return len(ls.pending)
}

// Process merges a verified sighting into the store and looks for the
// split views it reveals. It returns an error only if the store failed.
func (d *Detector) Process(ctx context.Context, s Sighting) error {
	ls := d.state(s.Key.Origin)
	ls.mu.Lock()
	defer ls.mu.Unlock()
	k := s.Key
	// Another root at this size can only appear with a checkpoint new to
	// this node; later sightings of either side are handled through
	// conflicts (and when that list is full the store is asked every
	// time). The check runs before the (durable, so slow) write: evidence
	// then carries the sighting's own note for this side.
	if !d.cfg.Store.Known(k) || len(ls.conflicts) >= maxConflictsPerLog {
		if n, err := s.Note(); err == nil {
			ls.unstored, ls.unstoredNote = k, n
			d.sameSize(ctx, ls, k)
			ls.unstoredNote = nil
		}
	}
	added, err := d.cfg.Store.Merge(ctx, s)
	if err != nil {
		return err
	}
	d.compareHead(ctx, ls, k, s.From)
	if added {
		for _, c := range ls.conflicts {
			if c.a == k || c.b == k {
				d.witnessEquivocation(ctx, c)
			}
		}
		d.cosignersAdded(ctx, ls, k)
	}
	return nil
}

// sameSize raises evidence for every stored checkpoint of k's size with
// another root.
func (d *Detector) sameSize(ctx context.Context, ls *logState, k Key) {
	keys, err := d.cfg.Store.AtSize(ctx, k.Origin, k.Size)
	if err != nil {
		d.log.Error("reading checkpoints", "origin", k.Origin, "err", err)
		return
	}
	for _, o := range keys {
		if o.Root != k.Root {
			d.found(ctx, ls, &conflict{a: o, b: k})
		}
	}
}
