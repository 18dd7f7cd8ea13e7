package gossip

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/note"

	vpb "github.com/vigilnet/vigil/proto"
	"github.com/vigilnet/vigil/roster"
	"github.com/vigilnet/vigil/store"
	"github.com/vigilnet/vigil/tlog"
	"github.com/vigilnet/vigil/witness"
)

// Own history. A witness must never cosign a checkpoint inconsistent with
// one the network holds under its key, even when its own disk lost the
// state that recorded it (DESIGN invariant 1). The node learns the
// checkpoints that carry its own witness's valid cosignature wherever they
// pass through it (gossip, the catch-up sync, evidence, and after a start
// its peers' answers, ownquery.go) and keeps, per log, the newest one: the
// floor the witness adopts and judges requests against (witness.OwnHistory).

// OwnStore is where OwnHistory keeps its floors, beside the witness's
// state; *store.DB is one.
type OwnStore interface {
	OwnFloor(ctx context.Context, origin string) (store.OwnFloor, error)
	RaiseOwnFloor(ctx context.Context, origin string, size uint64, root [32]byte, note []byte) (store.OwnFloor, error)
	WitnessState(ctx context.Context, origin string) (store.WitnessState, error)
}

// OwnHistoryConfig configures an OwnHistory. Key and Store are required.
type OwnHistoryConfig struct {
	// Key verifies the node's own witness cosignatures.
	Key   note.Verifier
	Store OwnStore
	// RecoveryPeers is how many distinct peers must answer the own-history
	// query (ownquery.go) before the witness cosigns anything after a
	// start; 0 means none (a standalone witness).
	RecoveryPeers int
	Logger        *slog.Logger
}

// OwnHistory is the node's witness.OwnHistory: the newest own-cosigned
// checkpoint per log, durable in the store, cached in memory.
type OwnHistory struct {
	key   note.Verifier
	store OwnStore
	log   *slog.Logger

	mu sync.Mutex
	// floors caches the stored floors; a nil entry means none is stored.
	floors map[string]*store.OwnFloor
	// need and answered count the peers of the recovery after a start;
	// recovered is closed once answered reaches need.
	need, answered int
	recovered      chan struct{}
}

var _ witness.OwnHistory = (*OwnHistory)(nil)

const (
	// recoveryRetry is the Retry-After of a log refused while the node
	// recovers its cosigned state.
	recoveryRetry = 5 * time.Second
	// recoveryWait is how long a request waits for the recovery before it
	// is refused: peers usually answer within milliseconds of connecting,
	// and a log pushing to a witness that just started need not retry.
	recoveryWait = 3 * time.Second
)

// NewOwnHistory returns an OwnHistory; it refuses every log until
// RecoveryPeers peers have answered (Service.RecoverOwn).
func NewOwnHistory(cfg OwnHistoryConfig) (*OwnHistory, error) {
	if cfg.Key == nil || cfg.Store == nil {
		return nil, errors.New("gossip: own history needs Key and Store")
	}
	lg := cfg.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	h := &OwnHistory{key: cfg.Key, store: cfg.Store, log: lg, floors: map[string]*store.OwnFloor{}, need: max(0, cfg.RecoveryPeers), recovered: make(chan struct{})}
	if h.need == 0 {
		close(h.recovered)
	}
	return h, nil
}

// Floor implements witness.OwnHistory. While the node recovers it waits up
// to recoveryWait for the recovery, then refuses; once recovered (which is
// never undone) it does not wait, and answers from memory once a log's
// floor is loaded: the witness calls it inside its state update after a
// call outside it succeeded.
func (h *OwnHistory) Floor(ctx context.Context, origin string) (store.WitnessState, bool, error) {
	h.waitRecovered(ctx)
	f, err := h.floor(ctx, origin, true)
	if err != nil || f == nil {
		return store.WitnessState{}, false, err
	}
	if f.Conflict {
		return store.WitnessState{}, false, &witness.UnavailableError{
			Reason:     fmt.Sprintf("this witness's key cosigned two roots of %q at size %d; the log needs an operator", origin, f.ConflictSize),
			RetryAfter: time.Hour,
		}
	}
	return store.WitnessState{Size: f.Size, Root: f.Root, Checkpoint: f.Note}, true, nil
}

// Recovered reports whether enough peers answered since the start.
func (h *OwnHistory) Recovered() bool {
	select {
	case <-h.recovered:
		return true
	default:
		return false
	}
}

// waitRecovered waits until the recovery is done, recoveryWait passes or
// ctx ends.
func (h *OwnHistory) waitRecovered(ctx context.Context) {
	if h.Recovered() {
		return
	}
	t := time.NewTimer(recoveryWait)
	defer t.Stop()
	select {
	case <-h.recovered:
	case <-t.C:
	case <-ctx.Done():
	}
}

// floor returns the cached or stored floor of origin (nil if none); with
// gate set, an unfinished recovery is an *witness.UnavailableError.
func (h *OwnHistory) floor(ctx context.Context, origin string, gate bool) (*store.OwnFloor, error) {
	h.mu.Lock()
	if gate && !h.Recovered() {
		n, m := h.answered, h.need
		h.mu.Unlock()
		return nil, &witness.UnavailableError{
			Reason:     fmt.Sprintf("recovering cosigned state from peers (%d of %d answered)", n, m),
			RetryAfter: recoveryRetry,
		}
	}
	f, ok := h.floors[origin]
	h.mu.Unlock()
	if ok {
		return f, nil
	}
	st, err := h.store.OwnFloor(ctx, origin)
	switch {
	case errors.Is(err, store.ErrNotFound):
		f = nil
	case err != nil:
		return nil, fmt.Errorf("reading own-cosigned floor: %w", err)
	default:
		f = &st
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if cur, ok := h.floors[origin]; ok {
		return cur, nil // a learn raced this read: it is newer
	}
	h.floors[origin] = f
	return f, nil
}

// learn records cp, whose verified note msg carries this witness's
// cosignature. Checkpoints at or below the floor with its root cost no
// write.
func (h *OwnHistory) learn(ctx context.Context, cp tlog.Checkpoint, msg []byte, via string) {
	cur, err := h.floor(ctx, cp.Origin, false)
	if err != nil {
		h.log.Error("reading own-cosigned floor", "origin", cp.Origin, "err", err)
		return
	}
	if cur != nil && (cp.Size < cur.Size || (cp.Size == cur.Size && (cp.Root == cur.Root || cur.Conflict))) {
		return
	}
	// Each checkpoint the witness cosigns comes back to it in gossip: the
	// witness state has it already, and the floor is kept in the same
	// store, so it would add nothing.
	if st, err := h.store.WitnessState(ctx, cp.Origin); err == nil && (st.Size > cp.Size || (st.Size == cp.Size && st.Root == cp.Root)) {
		return
	}
	next, err := h.store.RaiseOwnFloor(ctx, cp.Origin, cp.Size, cp.Root, msg)
	if err != nil {
		h.log.Error("storing own-cosigned floor", "origin", cp.Origin, "err", err)
		return
	}
	h.mu.Lock()
	h.floors[cp.Origin] = &next
	h.mu.Unlock()
	if next.Conflict && (cur == nil || !cur.Conflict) {
		h.log.Error("this witness's key cosigned two roots at one size", "origin", cp.Origin, "size", next.ConflictSize, "via", via)
		return
	}
	h.log.Debug("own-cosigned floor raised", "origin", cp.Origin, "size", next.Size, "via", via)
}

// answeredBy counts one more peer that answered the recovery query.
func (h *OwnHistory) answeredBy() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.answered++
	if h.answered == h.need {
		close(h.recovered)
		h.log.Info("recovered cosigned state from peers", "peers", h.answered)
	}
}

// ownSig reports whether sigs hold a signature by key.
func ownSig(key note.Verifier, sigs []note.Signature) bool {
	for _, s := range sigs {
		if s.Name == key.Name() && s.Hash == key.KeyHash() {
			return true
		}
	}
	return false
}

// openOwn verifies msg as a checkpoint of a roster log carrying this
// witness's cosignature and returns it with a note holding only the
// verified signatures (the log's and the witness's).
func openOwn(r *roster.Roster, key note.Verifier, msg []byte) (tlog.Checkpoint, []byte, bool) {
	origin, ok := tlog.OriginOf(msg)
	if !ok {
		return tlog.Checkpoint{}, nil, false
	}
	lg, ok := r.Log(origin)
	if !ok {
		return tlog.Checkpoint{}, nil, false
	}
	cp, n, err := tlog.VerifyCheckpoint(msg, origin, []note.Verifier{lg.Verifier}, key)
	if err != nil || !ownSig(key, n.Sigs) {
		return tlog.Checkpoint{}, nil, false
	}
	out, err := tlog.FormatNote([]byte(n.Text), n.Sigs)
	if err != nil {
		return tlog.Checkpoint{}, nil, false
	}
	return cp, out, true
}

// sawOwn is called with each sighting that passed validation: one carrying
// this witness's cosignature (verified by the validator) raises the floor.
func (s *Service) sawOwn(ctx context.Context, sg *sighting) {
	if s.cfg.Own == nil || !ownSig(s.cfg.Own.key, sg.sigs) {
		return
	}
	msg := sg.msg.Checkpoint
	i := bytes.LastIndex(msg, []byte("\n\n"))
	if i < 0 {
		return
	}
	out, err := tlog.FormatNote(msg[:i+1], sg.sigs)
	if err != nil {
		return
	}
	s.cfg.Own.learn(ctx, sg.cp, out, "sighting")
}

// sawOwnEvidence is called with each verified evidence stored: either of
// its checkpoints may carry this witness's cosignature.
func (s *Service) sawOwnEvidence(ctx context.Context, e *vpb.Evidence) {
	if s.cfg.Own == nil {
		return
	}
	r := s.cfg.Roster()
	for _, msg := range [][]byte{e.CheckpointA, e.CheckpointB} {
		if cp, out, ok := openOwn(r, s.cfg.Own.key, msg); ok {
			s.cfg.Own.learn(ctx, cp, out, "evidence")
		}
	}
}
