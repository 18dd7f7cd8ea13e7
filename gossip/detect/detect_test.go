package detect_test

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"sync"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"github.com/vigilnet/vigil/gossip/detect"
	vpb "github.com/vigilnet/vigil/proto"
	"github.com/vigilnet/vigil/tlog"
)

// Witness masks: which of w0..w4 cosign a sighting.
const (
	w0   uint8 = 1 << 0
	w1   uint8 = 1 << 1
	w2   uint8 = 1 << 2
	wAll uint8 = 1<<numWitnesses - 1
)

const (
	honest = 0
	// fork5 is the fork sharing the honest tree's first 5 entries; fork0
	// shares nothing.
	fork5 = 6
	fork0 = 1
)

// step is one thing that happens to the detector in a table test.
type step func(t *testing.T, r *rig)

// see delivers the checkpoint of branch at size, cosigned by mask, as
// published by the peer "pub".
func see(branch int, size uint64, mask uint8) step {
	return func(t *testing.T, r *rig) {
		t.Helper()
		if err := r.det.Process(context.Background(), r.w.sighting(treeID{0, branch}, size, mask, "pub")); err != nil {
			t.Fatalf("Process: %v", err)
		}
	}
}

// wait advances the clock by d and runs the due retries.
func wait(d int) step {
	return func(t *testing.T, r *rig) {
		for range d {
			r.clk.advance(testRetryMax)
			r.det.Tick(context.Background())
		}
	}
}

// settle runs retries until the grace period is over.
var settle step = func(t *testing.T, r *rig) { r.settle(context.Background()) }

// tilesReach makes the log's tiles serve its tree up to size.
func tilesReach(size uint64) step { return func(t *testing.T, r *rig) { r.pr.logSize[0] = size } }

func tilesUp(up bool) step  { return func(t *testing.T, r *rig) { r.pr.tilesUp[0] = up } }
func peersUp(up bool) step  { return func(t *testing.T, r *rig) { r.pr.peersUp[0] = up } }
func expectOpen(n int) step { return func(t *testing.T, r *rig) { checkOpen(t, r, n) } }

func checkOpen(t *testing.T, r *rig, n int) {
	t.Helper()
	if len(r.out.open) != n {
		t.Fatalf("%d open divergences, want %d: %v", len(r.out.open), n, r.out.open)
	}
}

type logMode int

const (
	tiled    logMode = iota // tiles up, peers down
	pushOnly                // no tiles; peers cannot help either
)

func TestDetector(t *testing.T) {
	tests := []struct {
		name  string
		mode  logMode
		steps []step
		// want: evidence by kind, open divergences at the end, divergences
		// resolved by how, the head's size (0: none).
		want     map[vpb.Kind]int
		open     int
		resolved map[string]int
		head     uint64
		// noTiles: the size-0 sightings must not cost a tile fetch.
		maxTileCalls int
	}{
		{name: "first at size 0 then growth, tiled", mode: tiled,
			steps: []step{see(honest, 0, w0), see(honest, 1, w1), see(honest, 2, w2), see(honest, 4, w0), settle},
			head:  4, maxTileCalls: 2},
		{name: "first at size 0 then growth, push-only, disjoint cosigners of 0 and 1", mode: pushOnly,
			steps: []step{see(honest, 0, w0), see(honest, 1, w1), see(honest, 3, w1|w2), settle},
			head:  3},
		{name: "size 0 after larger", mode: tiled,
			steps: []step{see(honest, 7, w0), see(honest, 0, w1), settle}, head: 7, maxTileCalls: 0},
		{name: "first at size 1", mode: tiled,
			steps: []step{see(honest, 1, w0), see(honest, 3, w1), see(honest, 2, w2), settle}, head: 3},
		{name: "first at a power of two", mode: tiled,
			steps: []step{see(honest, 8, w0), see(honest, 16, w1), see(honest, 4, w2), see(honest, 12, w0), settle}, head: 16},
		{name: "duplicates", mode: tiled,
			steps: []step{see(honest, 10, w0), see(honest, 10, w0), see(honest, 20, w0), see(honest, 20, w0|w1), see(honest, 10, w0), settle},
			head:  20, maxTileCalls: 2},
		{name: "same size", mode: tiled,
			steps: []step{see(honest, 10, w0), see(fork5, 10, w1), settle},
			want:  map[vpb.Kind]int{vpb.Kind_KIND_LOG_EQUIVOCATION_SAME_SIZE: 1}, head: 10},
		{name: "same size, push-only, no shared prefix", mode: pushOnly,
			steps: []step{see(fork0, 10, w1), see(honest, 10, w0), settle},
			want:  map[vpb.Kind]int{vpb.Kind_KIND_LOG_EQUIVOCATION_SAME_SIZE: 1}, head: 10},
		{name: "same size, witness on both", mode: tiled,
			steps: []step{see(honest, 10, w0|w1), see(fork5, 10, w1), settle},
			want:  map[vpb.Kind]int{vpb.Kind_KIND_LOG_EQUIVOCATION_SAME_SIZE: 1, vpb.Kind_KIND_WITNESS_EQUIVOCATION: 1}, head: 10},
		{name: "same size, witness cosigns the second side later", mode: pushOnly,
			steps: []step{see(honest, 10, w0), see(fork5, 10, w1), see(fork5, 10, w0), see(fork5, 10, w0|w1)},
			want:  map[vpb.Kind]int{vpb.Kind_KIND_LOG_EQUIVOCATION_SAME_SIZE: 1, vpb.Kind_KIND_WITNESS_EQUIVOCATION: 1}, head: 10},
		{name: "different size, larger honest first", mode: tiled,
			steps: []step{see(honest, 20, w0), see(fork5, 12, w1), settle},
			want:  map[vpb.Kind]int{vpb.Kind_KIND_LOG_EQUIVOCATION_DIFFERENT_SIZES: 1}, head: 20},
		{name: "different size, smaller honest first", mode: tiled,
			steps: []step{see(fork5, 12, w1), see(honest, 20, w0), settle},
			want:  map[vpb.Kind]int{vpb.Kind_KIND_LOG_EQUIVOCATION_DIFFERENT_SIZES: 1}, head: 12, open: 0},
		{name: "different size, fork at a power of two", mode: tiled,
			steps: []step{see(fork0, 8, w1), see(honest, 9, w0), settle},
			want:  map[vpb.Kind]int{vpb.Kind_KIND_LOG_EQUIVOCATION_DIFFERENT_SIZES: 1}, head: 8},
		{name: "different size, witness on both", mode: tiled,
			steps: []step{see(honest, 20, w0|w2), see(fork5, 12, w2), settle},
			want:  map[vpb.Kind]int{vpb.Kind_KIND_LOG_EQUIVOCATION_DIFFERENT_SIZES: 1, vpb.Kind_KIND_WITNESS_EQUIVOCATION: 1}, head: 20},
		{name: "larger side forked, only its peers can prove it", mode: tiled,
			steps: []step{peersUp(true), see(honest, 12, w0), see(fork5, 20, w1), settle},
			want:  map[vpb.Kind]int{vpb.Kind_KIND_LOG_EQUIVOCATION_DIFFERENT_SIZES: 1}, head: 12},
		{name: "a fork head beyond the tiles' reach does not hide a split below it", mode: tiled,
			steps: []step{tilesReach(12), see(fork5, 17, w1), see(honest, 7, w0), see(fork5, 10, w1), see(honest, 11, w0)},
			want:  map[vpb.Kind]int{vpb.Kind_KIND_LOG_EQUIVOCATION_DIFFERENT_SIZES: 1}, head: 17},
		{name: "larger side forked, nobody can prove it: divergence", mode: tiled,
			steps: []step{see(honest, 12, w0), see(fork5, 20, w1), expectOpen(0), settle},
			open:  1, head: 12},
		{name: "tiles that do not reproduce the signed root", mode: tiled,
			steps: []step{see(fork5, 12, w0), see(fork5, 20, w1), settle},
			open:  1, head: 12},
		{name: "tiles unreachable, then back: resolved consistent", mode: tiled,
			steps:    []step{tilesUp(false), see(honest, 10, w0), see(honest, 20, w1), settle, expectOpen(1), tilesUp(true), wait(2)},
			resolved: map[string]int{detect.ResolvedConsistent: 1}, head: 20},
		{name: "unproven, then a peer proves the split: resolved as evidence", mode: tiled,
			steps:    []step{tilesUp(false), see(honest, 12, w0), see(fork5, 20, w1), settle, expectOpen(1), peersUp(true), wait(2)},
			want:     map[vpb.Kind]int{vpb.Kind_KIND_LOG_EQUIVOCATION_DIFFERENT_SIZES: 1},
			resolved: map[string]int{detect.ResolvedEvidence: 1}, head: 12},
		{name: "tiles unreachable, a witness cosigned both: still a divergence", mode: tiled,
			steps: []step{tilesUp(false), see(honest, 10, w0|w1), see(honest, 20, w1), settle}, open: 1, head: 10},
		{name: "push-only, a witness cosigned both", mode: pushOnly,
			steps: []step{see(honest, 5, w0), see(honest, 9, w0|w2), settle}, head: 9, maxTileCalls: 1},
		{name: "push-only, unproven within the grace period is not recorded", mode: pushOnly,
			steps: []step{see(honest, 5, w0), see(honest, 9, w1), wait(3), expectOpen(0), see(honest, 9, w0)}, head: 9},
		{name: "push-only, disjoint cosigners: divergence until a witness cosigns both", mode: pushOnly,
			steps:    []step{see(honest, 5, w0), see(honest, 9, w1), settle, expectOpen(1), see(honest, 9, w0|w1)},
			resolved: map[string]int{detect.ResolvedConsistent: 1}, head: 9},
		{name: "push-only, larger checkpoint attests the pending one", mode: pushOnly,
			steps:    []step{see(honest, 5, w0), see(honest, 9, w1), settle, see(honest, 12, wAll), settle},
			resolved: map[string]int{detect.ResolvedConsistent: 1}, head: 12},
		{name: "push-only, different-size fork, disjoint cosigners: stays a divergence", mode: pushOnly,
			steps: []step{see(honest, 12, w0), see(fork5, 20, w1), settle},
			open:  1, head: 12},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t)
			r.pr.tiled[0] = tc.mode == tiled
			r.pr.tilesUp[0] = tc.mode == tiled
			r.pr.forks[0] = []int{fork5, fork0}
			for _, s := range tc.steps {
				s(t, r)
			}
			if err := r.out.verifyAll(r.w.roster); err != nil {
				t.Fatal(err)
			}
			got := r.out.kinds()
			for _, k := range []vpb.Kind{vpb.Kind_KIND_LOG_EQUIVOCATION_SAME_SIZE, vpb.Kind_KIND_LOG_EQUIVOCATION_DIFFERENT_SIZES, vpb.Kind_KIND_WITNESS_EQUIVOCATION} {
				if got[k] != tc.want[k] {
					t.Errorf("%d evidence of kind %v, want %d", got[k], k, tc.want[k])
				}
			}
			checkOpen(t, r, tc.open)
			gotRes := map[string]int{}
			for _, how := range r.out.resolved {
				gotRes[how]++
			}
			for _, how := range []string{detect.ResolvedConsistent, detect.ResolvedEvidence} {
				if gotRes[how] != tc.resolved[how] {
					t.Errorf("%d divergences resolved %q, want %d", gotRes[how], how, tc.resolved[how])
				}
			}
			// Each unproven pair is recorded once, however often retried.
			if n := len(r.out.open) + len(r.out.resolved); r.out.divergences != n {
				t.Errorf("%d divergences recorded, want %d (one per pair)", r.out.divergences, n)
			}
			head, ok := r.det.Head(r.w.logs[0].origin)
			if tc.head != 0 && (!ok || head.Size != tc.head) {
				t.Errorf("head %d (%v), want %d", head.Size, ok, tc.head)
			}
			if tc.maxTileCalls > 0 && r.pr.tileCalls > tc.maxTileCalls {
				t.Errorf("%d tile fetches, want ≤ %d", r.pr.tileCalls, tc.maxTileCalls)
			}
		})
	}
}

// TestEmptyTreeNeverHead: the empty tree is consistent with every tree, so
// a log whose first checkpoint is of size 0 is compared from its first
// non-empty checkpoint on, and no proof from 0 is ever asked for; a
// size-0 checkpoint with another root is not adopted either.
func TestEmptyTreeNeverHead(t *testing.T) {
	r := newRig(t)
	r.pr.tiled[0], r.pr.tilesUp[0] = true, true
	ctx := context.Background()
	origin := r.w.logs[0].origin
	bad := tlog.Checkpoint{Origin: origin, Size: 0, Root: r.w.key(treeID{0, 0}, 5).Root}.Marshal()
	badSig, err := r.w.logs[0].signer.Sign(bad)
	if err != nil {
		t.Fatal(err)
	}
	badSighting := detect.Sighting{
		Key:  detect.Key{Origin: origin, Size: 0, Root: r.w.key(treeID{0, 0}, 5).Root},
		Body: bad,
		Sigs: []note.Signature{{Name: r.w.logs[0].signer.Name(), Hash: r.w.logs[0].signer.KeyHash(),
			Base64: base64.StdEncoding.EncodeToString(append(binary.BigEndian.AppendUint32(nil, r.w.logs[0].signer.KeyHash()), badSig...))}},
	}
	for _, s := range []detect.Sighting{badSighting, r.w.sighting(treeID{0, 0}, 0, w0, "pub")} {
		if err := r.det.Process(ctx, s); err != nil {
			t.Fatal(err)
		}
		if _, ok := r.det.Head(origin); ok {
			t.Fatal("a size-0 checkpoint became the head")
		}
	}
	// Two roots at size 0: the log signed a non-empty tree of size 0.
	if k := r.out.kinds(); len(r.out.evidence) != 1 || k[vpb.Kind_KIND_LOG_EQUIVOCATION_SAME_SIZE] != 1 {
		t.Fatalf("evidence %v, want one of two roots at size 0", k)
	}
	if err := r.out.verifyAll(r.w.roster); err != nil {
		t.Fatal(err)
	}
	for _, size := range []uint64{1, 2, 3} {
		if err := r.det.Process(ctx, r.w.sighting(treeID{0, 0}, size, w1, "pub")); err != nil {
			t.Fatal(err)
		}
	}
	r.settle(ctx)
	if h, _ := r.det.Head(origin); h.Size != 3 || r.det.Pending(origin) != 0 || len(r.out.open) != 0 || r.out.divergences != 0 || len(r.out.evidence) != 1 {
		t.Fatalf("head %d, %d pending, %d divergences; want head 3 and none", h.Size, r.det.Pending(origin), r.out.divergences)
	}
	if r.pr.tileCalls != 2 {
		t.Errorf("%d tile fetches, want 2 (1→2, 2→3)", r.pr.tileCalls)
	}
}

// TestStoreFailure: a store that fails is reported and raises nothing.
func TestStoreFailure(t *testing.T) {
	r := newRig(t)
	r.st.fail = true
	if err := r.det.Process(context.Background(), r.w.sighting(treeID{0, 0}, 4, w0, "")); err == nil {
		t.Fatal("Process succeeded on a failing store")
	}
	if len(r.out.evidence) != 0 || r.out.divergences != 0 {
		t.Fatal("a failing store produced output")
	}
}

// TestConcurrent: sightings of several logs, and of one log from several
// goroutines, with retries running at the same time (run with -race); the
// outcome is that of the same sightings delivered one by one.
func TestConcurrent(t *testing.T) {
	r := newRig(t)
	for i := range numLogs {
		r.pr.tiled[i], r.pr.tilesUp[i] = i%2 == 0, i%2 == 0
		r.pr.forks[i] = []int{fork5}
	}
	ctx := context.Background()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l := g % numLogs
			for size := uint64(1); size <= 24; size++ {
				if err := r.det.Process(ctx, r.w.sighting(treeID{l, 0}, size, 1<<(g%numWitnesses)|w0, "pub")); err != nil {
					t.Error(err)
				}
				if l == 1 && size == 12 {
					// Log 1 also shows a fork of the same size.
					if err := r.det.Process(ctx, r.w.sighting(treeID{l, fork5}, size, w1, "pub")); err != nil {
						t.Error(err)
					}
				}
			}
		}()
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 50 {
			r.clk.advance(testRetryMax)
			r.det.Tick(ctx)
		}
	}()
	wg.Wait()
	<-done
	r.settle(ctx)
	if err := r.out.verifyAll(r.w.roster); err != nil {
		t.Fatal(err)
	}
	k := r.out.kinds()
	if k[vpb.Kind_KIND_LOG_EQUIVOCATION_SAME_SIZE] != 1 || k[vpb.Kind_KIND_WITNESS_EQUIVOCATION] != 1 || len(r.out.evidence) != 2 {
		t.Errorf("evidence %v, want one same-size split view of log 1, and w1's witness equivocation", k)
	}
	for i := range numLogs {
		if h, _ := r.det.Head(r.w.logs[i].origin); h.Size != 24 || r.det.Pending(r.w.logs[i].origin) != 0 {
			t.Errorf("log %d: head %d, %d pending; want 24, none", i, h.Size, r.det.Pending(r.w.logs[i].origin))
		}
	}
	if len(r.out.open) != 0 {
		t.Errorf("open divergences: %v", r.out.open)
	}
}
