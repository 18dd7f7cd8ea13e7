package testnet_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigilnet/vigil/node"
	"github.com/vigilnet/vigil/roster"
	"github.com/vigilnet/vigil/testnet"
	"github.com/vigilnet/vigil/testnet/scriptlog"
	"github.com/vigilnet/vigil/tlog"
)

// TestKeyTypeSplitViews: a network whose roster lists only the witnesses'
// ML-DSA-44 keys (half the witnesses sign with both keys, half with ML-DSA
// only), and one whose roster lists only their Ed25519 keys (every witness
// signs with both), each reach the quorum through gossip, serve it
// to `vigil checkpoint --k`, and catch a same-size and a different-size
// split view; every node's evidence verifies offline with `vigil verify`.
// Each network has 10 nodes, 8 witnesses and 2 observers (about 6 s each
// on 2 cores).
func TestKeyTypeSplitViews(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two networks and vigil processes")
	}
	const witnesses, observers = 8, 2
	bin, err := buildVigil()
	if err != nil {
		t.Fatal(err)
	}
	for _, keys := range []string{node.CosignMLDSA, node.CosignEd25519} {
		t.Run(keys, func(t *testing.T) {
			began := time.Now()
			runKeyTypeSplitViews(t, bin, keys, witnesses, observers)
			t.Logf("%d nodes, %s roster: %s", witnesses+observers, keys, time.Since(began).Round(time.Millisecond))
		})
	}
}

// splitLog is one log identity shown as two views, each served over
// tlog-tiles HTTP: half A of the network follows view A, half B view B.
type splitLog struct {
	a, b         *scriptlog.Log
	urlA, urlB   string
	origin, vkey string
}

func newSplitLog(t *testing.T, origin string) *splitLog {
	t.Helper()
	a, err := scriptlog.New(origin)
	if err != nil {
		t.Fatal(err)
	}
	b, err := a.Fork(0)
	if err != nil {
		t.Fatal(err)
	}
	sa, sb := httptest.NewServer(a.Handler()), httptest.NewServer(b.Handler())
	t.Cleanup(sa.Close)
	t.Cleanup(sb.Close)
	return &splitLog{a: a, b: b, urlA: sa.URL, urlB: sb.URL, origin: origin, vkey: a.VerifierKey()}
}

func runKeyTypeSplitViews(t *testing.T, bin, keys string, witnesses, observers int) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	same := newSplitLog(t, "same."+keys+".testnet.vigil.example/log")
	diff := newSplitLog(t, "diff."+keys+".testnet.vigil.example/log")
	half := witnesses / 2
	logsFor := func(i int) []testnet.LogEntry {
		var out []testnet.LogEntry
		for _, l := range []*splitLog{same, diff} {
			u := l.urlB
			if i < half {
				u = l.urlA
			}
			out = append(out, testnet.LogEntry{VKey: l.vkey, URL: u})
		}
		return out
	}
	// Under the ML-DSA roster, every other witness signs with its ML-DSA
	// key only (witness.cosignature_types: mldsa), the rest with both.
	var types func(int) string
	if keys == node.CosignMLDSA {
		types = func(i int) string {
			if i%2 == 0 {
				return node.CosignMLDSA
			}
			return ""
		}
	}
	nw, err := testnet.Start(ctx, testnet.Options{
		CosignatureTypes: types,
		Dir:              t.TempDir(),
		Witnesses:        witnesses,
		Observers:        observers,
		RosterKeys:       keys,
		Logs:             logsFor(0),
		MemberLogs:       logsFor,
		FollowInterval:   100 * time.Millisecond,
		Logger:           slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer nw.Stop()
	r, err := roster.Load(nw.RosterPath)
	if err != nil {
		t.Fatal(err)
	}
	wantType := byte(tlog.AlgCosignatureV1)
	if keys == node.CosignMLDSA {
		wantType = tlog.AlgCosignatureMLDSA
	}
	for _, w := range r.Witnesses() {
		if typ, err := tlog.CosignatureKeyType(w.VKey); err != nil || typ != wantType {
			t.Fatalf("roster lists %s with key type %x, want %x", w.Name, typ, wantType)
		}
	}

	// Honest operation: both views agree; the witnesses cosign what they
	// follow, a quorum of roster keys' cosignatures reaches every node by
	// gossip, and `vigil checkpoint --k` counts them.
	for _, l := range []*splitLog{same, diff} {
		l.a.AppendN(5, "honest")
		l.b.AppendN(5, "honest")
		if err := nw.WaitCosigned(ctx, l.origin, 5, nw.Quorum(), time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	out, err := exec.CommandContext(ctx, bin, "checkpoint", same.origin, "--k", fmt.Sprint(nw.Quorum()), "--node", nw.Members[witnesses].URL, "--roster", nw.RosterPath).CombinedOutput()
	if err != nil {
		t.Fatalf("vigil checkpoint --k %d: %v\n%s", nw.Quorum(), err, out)
	}

	// The split: the same size with another root, and a larger
	// inconsistent size.
	same.a.AppendN(3, "view A")
	same.b.AppendN(3, "view B")
	diff.a.AppendN(2, "view A")
	diff.b.AppendN(6, "view B")
	for _, c := range []struct{ origin, kind string }{
		{same.origin, "log-equivocation-same-size"},
		{diff.origin, "log-equivocation-different-sizes"},
	} {
		found, err := nw.WaitEvidenceOf(ctx, c.origin, c.kind, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		for i, rec := range found {
			file, err := nw.EvidenceFile(ctx, i, rec.ID)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), rec.ID+".evidence")
			if err := os.WriteFile(path, file, 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := exec.CommandContext(ctx, bin, "verify", path, "--roster", nw.RosterPath).CombinedOutput()
			if err != nil {
				t.Fatalf("vigil verify of %s's evidence %s: %v\n%s", nw.Members[i].Name, rec.ID, err, out)
			}
			if want := "VALID " + c.kind + " evidence " + rec.ID; !strings.Contains(string(out), want) {
				t.Fatalf("vigil verify of %s's evidence: no %q in\n%s", nw.Members[i].Name, want, out)
			}
		}
	}
}
