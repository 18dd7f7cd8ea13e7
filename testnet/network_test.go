package testnet_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/vigilnet/vigil/gossip/evidence"
	vpb "github.com/vigilnet/vigil/proto"
	"github.com/vigilnet/vigil/roster"
	"github.com/vigilnet/vigil/testnet"
	"github.com/vigilnet/vigil/testnet/scriptlog"
)

// waitFor polls cond until it holds or the deadline passes; the network is
// asynchronous, so a condition with a deadline is the synchronisation.
func waitFor(t *testing.T, ctx context.Context, d time.Duration, what string, cond func() (bool, error)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, err := cond()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if ok {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: not reached within %s", what, d)
		case <-tick.C:
		}
	}
}

// TestNetworkScenario runs the demo scenario on a 10-node in-process network:
// honest growth (no evidence anywhere), a kill and restart, a partition
// across which the log equivocates, the heal, and evidence at every node.
func TestNetworkScenario(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	lg, err := scriptlog.New("scenario.testnet.vigil.example/log")
	if err != nil {
		t.Fatal(err)
	}
	nw, err := testnet.Start(ctx, testnet.Options{
		Dir:       t.TempDir(),
		Witnesses: 8,
		Observers: 2,
		Logs:      []testnet.LogEntry{{VKey: lg.VerifierKey()}},
		Logger:    slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer nw.Stop()
	r, err := roster.Load(nw.RosterPath)
	if err != nil {
		t.Fatal(err)
	}
	p := testnet.NewPusher(nw)
	witnesses := testnet.Range(0, 8)
	noEvidence := func() {
		t.Helper()
		for i := range nw.Members {
			ev, err := nw.Evidence(ctx, i)
			if err != nil {
				t.Fatal(err)
			}
			if len(ev) != 0 {
				t.Fatalf("%s holds evidence of honest behaviour: %+v", nw.Members[i].Name, ev[0])
			}
		}
	}

	for round := 0; round < 20; round++ {
		lg.AppendN(5, "honest")
		if err := p.PushAll(ctx, lg, witnesses); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if round == 10 {
			// A crash in the middle of honest operation.
			url := nw.Members[3].URL
			if err := nw.Kill(3); err != nil {
				t.Fatal(err)
			}
			if err := nw.Restart(ctx, 3); err != nil {
				t.Fatal(err)
			}
			// It comes back where logs that push to it expect it.
			if got := nw.Members[3].URL; got != url {
				t.Fatalf("restarted at %s, was at %s", got, url)
			}
		}
	}
	// Every node, observers included, hears of the latest checkpoint.
	size := lg.Size()
	waitFor(t, ctx, time.Minute, "sightings everywhere", func() (bool, error) {
		for _, m := range nw.Members {
			rec, err := m.Node().Store().NewestCheckpoint(ctx, lg.Origin(), 0)
			if err != nil || rec.Size < size {
				return false, nil
			}
		}
		return true, nil
	})
	noEvidence()

	// Partition the network, then show each half a different history.
	a, b := testnet.Range(0, 5), testnet.Range(5, 10)
	if err := nw.Partition(a, b); err != nil {
		t.Fatal(err)
	}
	fork, err := lg.Fork(lg.Size())
	if err != nil {
		t.Fatal(err)
	}
	lg.AppendN(3, "view A")
	fork.AppendN(3, "view B")
	if err := p.PushAll(ctx, lg, testnet.Range(0, 5)); err != nil {
		t.Fatal(err)
	}
	if err := p.PushAll(ctx, fork, testnet.Range(5, 8)); err != nil {
		t.Fatal(err)
	}
	noEvidence() // nothing crossed the partition yet

	if err := nw.Heal(ctx, a, b); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, time.Minute, "evidence at every node", func() (bool, error) {
		for i := range nw.Members {
			ev, err := nw.Evidence(ctx, i)
			if err != nil || len(ev) == 0 {
				return false, err
			}
		}
		return true, nil
	})
	for i, m := range nw.Members {
		ev, _ := nw.Evidence(ctx, i)
		for _, rec := range ev {
			e, err := vpb.UnmarshalEvidence(rec.Data)
			if err != nil {
				t.Fatalf("%s: %v", m.Name, err)
			}
			f, err := evidence.Verify(e, r)
			if err != nil {
				t.Fatalf("%s holds evidence that does not verify: %v", m.Name, err)
			}
			if f.Origin != lg.Origin() {
				t.Fatalf("%s: evidence about %q", m.Name, f.Origin)
			}
		}
		t.Logf("%s: %d piece(s) of evidence", m.Name, len(ev))
	}
}
