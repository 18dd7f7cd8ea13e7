package gossip_test

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/vigilnet/vigil/store"
)

// TestNoFalseEvidence: an honest log grows through many checkpoints, which
// 8 witness nodes learn by push and by pull in every order gossip produces,
// and cosign; not one piece of evidence or suspicion may appear. 400
// checkpoints reach the 8 nodes as ≥ 10,000 checkpoint updates (each
// witness's cosigned copy is a new update for every other node); the test
// counts them. -short and -race run 60 checkpoints; VIGIL_SOAK runs
// TestSoakNoFalseEvidence with 12,500.
func TestNoFalseEvidence(t *testing.T) {
	rounds, want := 400, 10_000
	if testing.Short() || raceEnabled {
		rounds, want = 60, 1000
	}
	if got := honestRun(t, 8, rounds); got < want {
		t.Fatalf("only %d checkpoint updates processed, want ≥ %d", got, want)
	}
}

func TestSoakNoFalseEvidence(t *testing.T) {
	if os.Getenv("VIGIL_SOAK") == "" {
		t.Skip("set VIGIL_SOAK=1 (make soak)")
	}
	honestRun(t, 8, 12500)
}

// honestRun returns the number of checkpoint updates (accepted sightings)
// the detectors processed across all nodes.
func honestRun(t *testing.T, nodes, rounds int) int {
	// Every own cosignature goes out, not one per log per window: the
	// most traffic gossip can carry, the most chances for a false alarm.
	n := newNet(t, netOptions{nodes: nodes, ownInterval: -1})
	n.connectRing()
	start := time.Now()
	for r := 0; r < rounds; r++ {
		// Anything from one entry to a few tiles' worth per checkpoint.
		grow := 1 + r%5
		if r%97 == 0 {
			grow = 300
		}
		n.log.AppendN(grow, "honest")
		var wg sync.WaitGroup
		for i, nd := range n.nodes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				// Each node misses some checkpoints, and learns the rest by
				// push or pull, so sizes arrive out of order via gossip.
				switch (r + i) % 4 {
				case 0:
					n.push(nd, n.log)
				case 1, 2:
					n.pull(nd)
				}
			}()
		}
		wg.Wait()
	}
	size := n.log.Size()
	root, _ := n.log.Root(size)
	ctx := context.Background()
	for _, nd := range n.nodes {
		waitFor(t, 60*time.Second, nd.name+" to hold the final checkpoint", func() bool {
			_, err := nd.db.Checkpoint(ctx, n.log.Origin(), size, root)
			return err == nil
		})
	}
	updates := 0
	for _, nd := range n.nodes {
		updates += int(histogramCount(t, nd.svc, "vigil_detector_seconds"))
	}
	t.Logf("%d checkpoints (size %d), %d nodes, %d checkpoint updates processed, in %s", rounds, size, nodes, updates, time.Since(start))
	for _, nd := range n.nodes {
		if c := evidenceCount(t, nd); c != 0 {
			t.Errorf("%s produced %d evidence records for an honest log", nd.name, c)
		}
		var sus []store.Suspicion
		nd.db.Suspicions(ctx, func(s store.Suspicion) error { sus = append(sus, s); return nil })
		if len(sus) != 0 {
			t.Errorf("%s recorded %d suspicions of an honest log, e.g. %q", nd.name, len(sus), sus[0].Reason)
		}
	}
	return updates
}
