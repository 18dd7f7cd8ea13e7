package witness_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/vigilnet/vigil/store"
	"github.com/vigilnet/vigil/tlog"
	"github.com/vigilnet/vigil/witness"
)

// knownHistory is a witness.OwnHistory over a set of own-cosigned
// checkpoints the test says the node holds. It implements the contract in
// full: the floor is the newest; two members that no branch of the test's
// log contains together refuse the log; so does an unfinished recovery.
type knownHistory struct {
	mu         sync.Mutex
	known      map[string][]store.WitnessState
	recovering bool
	// consistent reports whether two checkpoints of one log agree.
	consistent func(a, b store.WitnessState) bool
}

func (h *knownHistory) learn(origin string, st store.WitnessState) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.known == nil {
		h.known = map[string][]store.WitnessState{}
	}
	h.known[origin] = append(h.known[origin], st)
}

func (h *knownHistory) Floor(_ context.Context, origin string) (store.WitnessState, bool, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.recovering {
		return store.WitnessState{}, false, &witness.UnavailableError{Reason: "recovering cosigned state from peers (0 of 1 answered)", RetryAfter: time.Second}
	}
	var floor store.WitnessState
	found := false
	ks := h.known[origin]
	for i, a := range ks {
		for _, b := range ks[i+1:] {
			if !h.consistent(a, b) {
				return store.WitnessState{}, false, &witness.UnavailableError{Reason: "two own-cosigned checkpoints disagree", RetryAfter: time.Minute}
			}
		}
		if !found || a.Size > floor.Size {
			floor, found = a, true
		}
	}
	return floor, found, nil
}

// sameRootAtSize is the consistency rule a test without forks beyond one
// size needs: two checkpoints of one size agree only with equal roots, and
// the table tests name their inconsistent pairs explicitly.
func sameRootAtSize(a, b store.WitnessState) bool { return a.Size != b.Size || a.Root == b.Root }

// ownCosigned returns l's checkpoint at size n cosigned by signer, as the
// network would hold it.
func ownCosigned(t testing.TB, l *testLog, n uint64, signer note.Signer) store.WitnessState {
	t.Helper()
	n0, err := note.Open(l.checkpoint(t, n), note.VerifierList(mustNoteVerifier(t, l.VerifierKey())))
	if err != nil {
		t.Fatal(err)
	}
	n0.UnverifiedSigs = nil
	msg, err := note.Sign(n0, signer)
	if err != nil {
		t.Fatal(err)
	}
	return store.WitnessState{Size: n, Root: l.root(t, n), Checkpoint: msg}
}

type historyWitness struct {
	w      *witness.Witness
	db     *store.DB
	signer *tlog.CosignatureSigner
	vkey   string
}

func newHistoryWitness(t testing.TB, skey string, h witness.OwnHistory, logs ...*testLog) *historyWitness {
	t.Helper()
	signer, err := tlog.NewCosignatureSigner(skey, nil)
	if err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(t.TempDir(), store.Options{GossipSyncDelay: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	w, err := witness.New(witness.Config{Signer: signer, Logs: policyFor(t, logs...), Store: db, History: h, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	return &historyWitness{w: w, db: db, signer: signer, vkey: signer.VerifierKey()}
}

func TestAddConsultsOwnHistory(t *testing.T) {
	a := newTestLog(t, "example.com/a", nil)
	a.grow(20, "a")
	b := a.fork(t, 8)
	b.grow(20, "b")
	skey, _, err := tlog.GenerateCosignerKey(rand.Reader, witnessName)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := tlog.NewCosignatureSigner(skey, nil)
	if err != nil {
		t.Fatal(err)
	}
	type req struct {
		log      *testLog
		old, new uint64
	}
	tests := []struct {
		name string
		// state is what the witness cosigned itself before (sizes of a).
		state []uint64
		// floor is the own-cosigned checkpoint the network holds.
		floorLog  *testLog
		floorSize uint64
		// conflict adds a second own-cosigned checkpoint at the floor's
		// size with another root.
		conflict   bool
		recovering bool
		req        req
		wantErr    error
		wantSize   uint64 // the ConflictError's size for ErrConflict
	}{
		{name: "no floor: a fresh witness cosigns", req: req{a, 0, 5}},
		{name: "floor above a lost state: old 0 is 409 with the floor's size", floorLog: a, floorSize: 12, req: req{a, 0, 5}, wantErr: witness.ErrConflict, wantSize: 12},
		{name: "floor above a lost state: old 0 with the other view is 409", floorLog: b, floorSize: 12, req: req{a, 0, 12}, wantErr: witness.ErrConflict, wantSize: 12},
		{name: "floor adopted: the same checkpoint again is cosigned", floorLog: a, floorSize: 12, req: req{a, 12, 12}},
		{name: "floor adopted: growth with a proof from the floor is cosigned", floorLog: a, floorSize: 12, req: req{a, 12, 16}},
		{name: "floor's size with another root is 422", floorLog: b, floorSize: 12, req: req{a, 12, 12}, wantErr: witness.ErrInconsistent},
		{name: "growth of the other fork from the floor's size is 422", floorLog: a, floorSize: 12, req: req{b, 12, 16}, wantErr: witness.ErrInconsistent},
		{name: "floor above the state: old at the state is 409", state: []uint64{6}, floorLog: a, floorSize: 12, req: req{a, 6, 14}, wantErr: witness.ErrConflict, wantSize: 12},
		{name: "floor below the state: judged against the state", state: []uint64{6, 14}, floorLog: a, floorSize: 12, req: req{a, 14, 18}},
		{name: "floor at the state's size with another root is 503", state: []uint64{12}, floorLog: b, floorSize: 12, req: req{a, 12, 16}, wantErr: witness.ErrUnavailable},
		{name: "two own-cosigned roots at one size are 503", floorLog: a, floorSize: 12, conflict: true, req: req{a, 0, 3}, wantErr: witness.ErrUnavailable},
		{name: "recovering from peers is 503", recovering: true, req: req{a, 0, 3}, wantErr: witness.ErrUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &knownHistory{consistent: sameRootAtSize}
			hw := newHistoryWitness(t, skey, h, a)
			ctx := context.Background()
			var old uint64
			for _, s := range tt.state {
				var p [][]byte
				if old > 0 {
					p = a.proof(t, old, s)
				}
				if _, err := hw.w.AddCheckpoint(ctx, &witness.AddCheckpointRequest{OldSize: old, Proof: p, Checkpoint: a.checkpoint(t, s)}); err != nil {
					t.Fatalf("setting up state at %d: %v", s, err)
				}
				old = s
			}
			if tt.floorLog != nil {
				h.learn(a.Origin(), ownCosigned(t, tt.floorLog, tt.floorSize, signer))
			}
			if tt.conflict {
				other := a
				if tt.floorLog == a {
					other = b
				}
				h.learn(a.Origin(), ownCosigned(t, other, tt.floorSize, signer))
			}
			h.recovering = tt.recovering
			var p [][]byte
			if tt.req.old > 0 && tt.req.old != tt.req.new {
				p = tt.req.log.proof(t, tt.req.old, tt.req.new)
			}
			cosig, err := hw.w.AddCheckpoint(ctx, &witness.AddCheckpointRequest{OldSize: tt.req.old, Proof: p, Checkpoint: tt.req.log.checkpoint(t, tt.req.new)})
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("AddCheckpoint: %v, want a cosignature", err)
				}
				checkCosignature(t, hw.vkey, a.VerifierKey(), tt.req.log.checkpoint(t, tt.req.new), string(cosig))
				return
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("AddCheckpoint: %v, want %v", err, tt.wantErr)
			}
			if cosig != nil {
				t.Fatalf("refused request returned a cosignature")
			}
			var ce *witness.ConflictError
			if errors.As(err, &ce) && ce.Size != tt.wantSize {
				t.Fatalf("409 size %d, want %d", ce.Size, tt.wantSize)
			}
			var ue *witness.UnavailableError
			if errors.As(err, &ue) && (ue.Reason == "" || ue.RetryAfter <= 0) {
				t.Fatalf("503 without a reason or Retry-After: %+v", ue)
			}
		})
	}
}

// TestFloorAdoptedDurably: a witness that adopted a floor keeps it as its
// state (Latest serves the network's note) even when the history forgets it.
func TestFloorAdoptedDurably(t *testing.T) {
	a := newTestLog(t, "example.com/a", nil)
	a.grow(12, "a")
	skey, _, err := tlog.GenerateCosignerKey(rand.Reader, witnessName)
	if err != nil {
		t.Fatal(err)
	}
	h := &knownHistory{consistent: sameRootAtSize}
	hw := newHistoryWitness(t, skey, h, a)
	floor := ownCosigned(t, a, 12, hw.signer)
	h.learn(a.Origin(), floor)
	ctx := context.Background()
	_, err = hw.w.AddCheckpoint(ctx, &witness.AddCheckpointRequest{OldSize: 0, Checkpoint: a.checkpoint(t, 3)})
	if !errors.Is(err, witness.ErrConflict) {
		t.Fatalf("AddCheckpoint: %v, want 409", err)
	}
	st, err := hw.db.WitnessState(ctx, a.Origin())
	if err != nil || st.Size != 12 || st.Root != floor.Root || string(st.Checkpoint) != string(floor.Checkpoint) {
		t.Fatalf("stored state %d %x (%v), want the adopted floor at 12", st.Size, st.Root[:4], err)
	}
	latest, err := hw.w.Latest(ctx, a.Origin())
	if err != nil || string(latest) != string(floor.Checkpoint) {
		t.Fatalf("Latest: %q %v, want the floor's note", latest, err)
	}
}

// TestOwnHistoryProperty: random sequences of own-cosigned checkpoints
// learnt from the network, disk losses and add-checkpoint requests over two
// forks of one log. The witness never returns a cosignature for a
// checkpoint inconsistent with any own-cosigned checkpoint the node knew of
// when it answered.
func TestOwnHistoryProperty(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	for run := range 4 {
		t.Run(fmt.Sprint(run), func(t *testing.T) { ownHistoryRun(t, seed+uint64(run)) })
	}
}

func ownHistoryRun(t *testing.T, seed uint64) {
	rng := mrand.New(mrand.NewPCG(seed, 1))
	const maxSize = 24
	forkAt := uint64(1 + rng.IntN(10))
	a := newTestLog(t, "example.com/a", nil)
	a.grow(forkAt, "base")
	b := a.fork(t, forkAt)
	a.grow(maxSize, "a")
	b.grow(maxSize, "b")
	forks := []*testLog{a, b}
	// mask is the set of forks containing (size, root): two checkpoints
	// are consistent exactly when their masks intersect.
	mask := func(st store.WitnessState) int {
		m := 0
		for i, l := range forks {
			if st.Size <= maxSize && l.root(t, st.Size) == st.Root {
				m |= 1 << i
			}
		}
		return m
	}
	consistent := func(x, y store.WitnessState) bool { return x.Size == 0 || y.Size == 0 || mask(x)&mask(y) != 0 }
	skey, _, err := tlog.GenerateCosignerKey(rand.Reader, witnessName)
	if err != nil {
		t.Fatal(err)
	}
	h := &knownHistory{consistent: consistent}
	hw := newHistoryWitness(t, skey, h, a)
	// network holds what reached it of every cosignature this key gave;
	// pending ones have not reached it yet.
	var network, pending []store.WitnessState
	ctx := context.Background()
	cosigned, refused := 0, 0
	for step := range 150 {
		switch r := rng.IntN(20); {
		case r == 0:
			// The disk dies: a new witness on an empty store, which
			// knows nothing until it has recovered from its peers.
			h = &knownHistory{consistent: consistent, recovering: true}
			hw = newHistoryWitness(t, skey, h, a)
		case r <= 2 && h.recovering:
			h.mu.Lock()
			h.recovering = false
			h.mu.Unlock()
			for _, st := range network {
				h.learn(a.Origin(), st)
			}
		case r <= 5 && len(pending) > 0:
			// The network learns one of them; the node hears of it.
			i := rng.IntN(len(pending))
			st := pending[i]
			pending = append(pending[:i], pending[i+1:]...)
			network = append(network, st)
			h.learn(a.Origin(), st)
		default:
			l := forks[rng.IntN(2)]
			size := uint64(rng.IntN(maxSize + 1))
			var old uint64
			if st, err := hw.db.WitnessState(ctx, a.Origin()); err == nil && rng.IntN(4) > 0 {
				old = st.Size
			} else if rng.IntN(2) == 0 {
				old = uint64(rng.IntN(int(size) + 1))
			}
			if old > size {
				size = old
			}
			var p [][]byte
			if old > 0 && old < size {
				p = l.proof(t, old, size)
			}
			h.mu.Lock()
			knew := append([]store.WitnessState(nil), h.known[a.Origin()]...)
			h.mu.Unlock()
			cand := store.WitnessState{Size: size, Root: l.root(t, size)}
			cosig, err := hw.w.AddCheckpoint(ctx, &witness.AddCheckpointRequest{OldSize: old, Proof: p, Checkpoint: l.checkpoint(t, size)})
			if err != nil {
				refused++
				continue
			}
			cosigned++
			for _, k := range knew {
				if !consistent(k, cand) {
					t.Fatalf("step %d: cosigned size %d of fork %d (%q), inconsistent with own-cosigned size %d known to the node", step, size, mask(cand), cosig, k.Size)
				}
			}
			// The node holds it in its state; the network learns of it
			// later.
			cand.Checkpoint = l.checkpoint(t, size)
			h.learn(a.Origin(), cand)
			pending = append(pending, cand)
		}
	}
	t.Logf("fork at %d: %d cosigned, %d refused", forkAt, cosigned, refused)
	if cosigned == 0 {
		t.Fatalf("no request was cosigned: the run tested nothing")
	}
}
