package detect_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/vigilnet/vigil/tlog"
)

// modelLog is one log of a random history: its honest checkpoints, and
// possibly a fork (a tree sharing the first prefix entries of the honest
// one, then diverging) whose checkpoints some witnesses also see.
type modelLog struct {
	idx                     int
	tiled, tilesUp, peersUp bool
	honest                  []uint64
	forked                  bool
	prefix                  int
	fork                    []uint64
	// delivered: which checkpoints at least one sighting reached.
	deliveredHonest, deliveredFork map[uint64]bool
}

func (l *modelLog) branch() int { return l.prefix + 1 }

// forkShown is the model's answer: the node was shown an inconsistent
// pair, and for different sizes a proof bound to the larger one's root is
// reachable (the log's tiles serve the honest tree; peers serve either).
func (l *modelLog) forkShown() bool {
	if !l.forked {
		return false
	}
	for h := range l.deliveredHonest {
		if h <= uint64(l.prefix) {
			continue // a prefix of the fork too
		}
		for f := range l.deliveredFork {
			switch {
			case h == f:
				return true
			case !l.tiled:
			case h > f && (l.tilesUp || l.peersUp):
				return true
			case f > h && l.peersUp:
				return true
			}
		}
	}
	return false
}

type modelSighting struct {
	log    int // index into history.logs
	branch int
	size   uint64
	mask   uint8
}

type history struct {
	logs      []*modelLog
	sightings []modelSighting
	// gaps[i] is the clock advance before sightings[i]; ticks[i] whether a
	// Tick runs after it.
	gaps  []time.Duration
	ticks []bool
}

func randomSizes(rng *rand.Rand) []uint64 {
	var start uint64
	switch rng.IntN(4) {
	case 0:
		start = 0
	case 1:
		start = 1
	case 2:
		start = 1 << rng.IntN(5)
	default:
		start = 1 + rng.Uint64N(20)
	}
	sizes := []uint64{start}
	for range 1 + rng.IntN(5) {
		next := sizes[len(sizes)-1] + 1 + rng.Uint64N(8)
		if next > maxTreeSize {
			break
		}
		sizes = append(sizes, next)
	}
	return sizes
}

func randomMask(rng *rand.Rand) uint8 { return uint8(1 + rng.IntN(int(wAll))) }

func newHistory(rng *rand.Rand) *history {
	h := &history{}
	perm := rng.Perm(numLogs)
	for i := range 1 + rng.IntN(3) {
		l := &modelLog{
			idx:     perm[i],
			tiled:   rng.IntN(3) != 0,
			tilesUp: rng.IntN(4) != 0,
			peersUp: rng.IntN(2) == 0,
			honest:  randomSizes(rng),
			forked:  rng.IntN(2) == 0,
		}
		if l.forked {
			l.prefix = rng.IntN(20)
			for range 1 + rng.IntN(2) {
				var f uint64
				if rng.IntN(2) == 0 {
					f = l.honest[rng.IntN(len(l.honest))] // same size as an honest one
				} else {
					f = uint64(l.prefix) + 1 + rng.Uint64N(maxTreeSize-uint64(l.prefix))
				}
				if f > uint64(l.prefix) && !slices.Contains(l.fork, f) {
					l.fork = append(l.fork, f)
				}
			}
		}
		h.logs = append(h.logs, l)
		add := func(branch int, size uint64) {
			for range 1 + rng.IntN(3) {
				if rng.IntN(7) == 0 {
					continue // lost
				}
				s := modelSighting{log: i, branch: branch, size: size, mask: randomMask(rng)}
				h.sightings = append(h.sightings, s)
				if rng.IntN(7) == 0 {
					h.sightings = append(h.sightings, s) // duplicate
				}
			}
		}
		for _, size := range l.honest {
			add(0, size)
		}
		for _, size := range l.fork {
			add(l.branch(), size)
		}
		// The honest network converges: every witness cosigns the latest
		// checkpoint, and that sighting is not lost.
		h.sightings = append(h.sightings, modelSighting{log: i, branch: 0, size: l.honest[len(l.honest)-1], mask: wAll})
	}
	rng.Shuffle(len(h.sightings), func(i, j int) { h.sightings[i], h.sightings[j] = h.sightings[j], h.sightings[i] })
	for range h.sightings {
		h.gaps = append(h.gaps, time.Duration(rng.IntN(20_000))*time.Millisecond)
		h.ticks = append(h.ticks, rng.IntN(3) == 0)
	}
	return h
}

// run plays h against a fresh detector and checks the properties.
func (h *history) run(t testing.TB) error {
	ctx := context.Background()
	r := newRig(t)
	for _, l := range h.logs {
		r.pr.tiled[l.idx], r.pr.tilesUp[l.idx], r.pr.peersUp[l.idx] = l.tiled, l.tilesUp, l.peersUp
		// The tiles serve the log's tree as it is: up to its latest size.
		r.pr.logSize[l.idx] = max(1, l.honest[len(l.honest)-1])
		if l.forked {
			r.pr.forks[l.idx] = []int{l.branch()}
		}
		l.deliveredHonest, l.deliveredFork = map[uint64]bool{}, map[uint64]bool{}
	}
	for i, s := range h.sightings {
		l := h.logs[s.log]
		r.clk.advance(h.gaps[i])
		if err := r.det.Process(ctx, r.w.sighting(treeID{l.idx, s.branch}, s.size, s.mask, "peer-"+strconv.Itoa(i%3))); err != nil {
			return fmt.Errorf("Process: %w", err)
		}
		if s.branch == 0 {
			l.deliveredHonest[s.size] = true
		} else {
			l.deliveredFork[s.size] = true
		}
		if h.ticks[i] {
			r.det.Tick(ctx)
		}
	}
	// The tiles of honest logs come back: an unreachable log is a
	// suspicion until they do, then every divergence is resolved.
	for _, l := range h.logs {
		if !l.forked {
			r.pr.tilesUp[l.idx] = true
		}
	}
	r.settle(ctx)
	if err := r.out.verifyAll(r.w.roster); err != nil {
		return err
	}
	byOrigin := map[string]int{}
	for _, e := range r.out.evidence {
		o, _ := tlog.OriginOf(e.CheckpointA)
		byOrigin[o]++
	}
	for _, l := range h.logs {
		origin := r.w.logs[l.idx].origin
		want := l.forkShown()
		if got := byOrigin[origin] > 0; got != want {
			return fmt.Errorf("log %d (tiled %v, tiles up %v, peers up %v, honest %v, fork at %d %v, forked %v): evidence %v, want %v",
				l.idx, l.tiled, l.tilesUp, l.peersUp, l.honest, l.prefix, l.fork, l.forked, got, want)
		}
		if l.forked {
			continue
		}
		for k, reason := range r.out.open {
			if k.Origin == origin {
				return fmt.Errorf("honest log %d (tiled %v, tiles up %v, peers up %v, sizes %v): open divergence at size %d: %s",
					l.idx, l.tiled, l.tilesUp, l.peersUp, l.honest, k.Size, reason)
			}
		}
		if p := r.det.Pending(origin); p != 0 {
			return fmt.Errorf("honest log %d: %d checkpoints still pending", l.idx, p)
		}
		if head, ok := r.det.Head(origin); !ok || head.Size != l.honest[len(l.honest)-1] && l.honest[len(l.honest)-1] != 0 {
			return fmt.Errorf("honest log %d: head %d, want %d", l.idx, head.Size, l.honest[len(l.honest)-1])
		}
	}
	return nil
}

// checkHistories plays n random histories from seed on.
func checkHistories(t *testing.T, n int) {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("VIGIL_DETECT_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("VIGIL_DETECT_SEED: %v", err)
		}
	}
	start := time.Now()
	forked, shown := 0, 0
	for i := range uint64(n) {
		h := newHistory(rand.New(rand.NewPCG(seed, i)))
		if err := h.run(t); err != nil {
			t.Fatalf("history %d of seed %d (rerun with VIGIL_DETECT_SEED=%d): %v", i, seed, seed, err)
		}
		for _, l := range h.logs {
			if l.forked {
				forked++
			}
			if l.forkShown() {
				shown++
			}
		}
	}
	t.Logf("%d histories (seed %d): %d forked logs, %d forks shown with proof reachable, in %s", n, seed, forked, shown, time.Since(start))
}

// TestDetectorModel: random histories of several logs (real trees, real
// signatures), forks injected, sightings delivered in random order with
// duplicates and losses, proofs sometimes unavailable. Evidence exists if
// and only if a fork was shown, every piece verifies offline, and honest
// logs end with no evidence, no open divergence and their latest
// checkpoint as the head.
func TestDetectorModel(t *testing.T) {
	n := 10_000
	if testing.Short() || raceEnabled {
		n = 1_000
	}
	checkHistories(t, n)
}

func TestSoakDetectorProperty(t *testing.T) {
	if os.Getenv("VIGIL_SOAK") == "" {
		t.Skip("set VIGIL_SOAK=1 (make soak)")
	}
	checkHistories(t, 1_000_000)
}
