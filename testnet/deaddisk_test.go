package testnet_test

// The dead-disk test for design invariant 1: a witness that lost its data
// directory must not cosign the other side of a split view it had already
// cosigned, which the network still holds under its key.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/vigilnet/vigil/feed"
	vpb "github.com/vigilnet/vigil/proto"
	"github.com/vigilnet/vigil/testnet"
	"github.com/vigilnet/vigil/testnet/scriptlog"
	"github.com/vigilnet/vigil/tlog"
	"github.com/vigilnet/vigil/witness"
)

// TestDeadDiskWitnessDoesNotEquivocate: a log equivocates at one size, view
// A to w0 and view B to w1 and w2, in a network of three `vigil node`
// processes. Once w2's cosignature on B and the evidence are at every node,
// w2 is killed, its data directory removed, and it is started again. Asked
// with old size 0 to cosign view A, it must answer 409 with B's size (or 503
// while it recovers), never 200, and no node may hold evidence that w2
// cosigned both views.
func TestDeadDiskWitnessDoesNotEquivocate(t *testing.T) {
	if testing.Short() {
		t.Skip("runs real vigil processes")
	}
	bin, err := buildVigil()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	lg, err := scriptlog.New("deaddisk.testnet.vigil.example/log")
	if err != nil {
		t.Fatal(err)
	}
	logV, err := note.NewVerifier(lg.VerifierKey())
	if err != nil {
		t.Fatal(err)
	}
	stderr := &syncBuffer{}
	nw, err := testnet.Start(ctx, testnet.Options{
		Dir:       t.TempDir(),
		Witnesses: 3,
		Logs:      []testnet.LogEntry{{VKey: lg.VerifierKey()}},
		Binary:    bin,
		Stderr:    stderr,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer nw.Stop()
	defer func() {
		if t.Failed() {
			t.Logf("node logs:\n%s", stderr.String())
		}
	}()
	if err := nw.WaitMeshed(ctx, 30*time.Second); err != nil {
		t.Fatal(err)
	}

	const size = 12
	lg.AppendN(10, "base")
	fork, err := lg.Fork(10)
	if err != nil {
		t.Fatal(err)
	}
	lg.GrowTo(size, "view A")
	fork.GrowTo(size, "view B")
	viewA, err := lg.CheckpointAt(size)
	if err != nil {
		t.Fatal(err)
	}
	rootB, err := fork.Root(size)
	if err != nil {
		t.Fatal(err)
	}
	p := testnet.NewPusher(nw)
	if err := p.PushAll(ctx, lg, []int{0}); err != nil {
		t.Fatal(err)
	}
	if err := p.PushAll(ctx, fork, []int{1, 2}); err != nil {
		t.Fatal(err)
	}

	w2 := nw.Members[2]
	w2Key, err := tlog.NewCosignatureVerifier(w2.VKey)
	if err != nil {
		t.Fatal(err)
	}
	// w2's cosignature on B and the split view's evidence reach every node.
	waitFor(t, ctx, 30*time.Second, "w2's cosignature on view B and the evidence at every node", func() (bool, error) {
		for i, m := range nw.Members {
			ev, err := nw.Evidence(ctx, i)
			if err != nil || len(ev) == 0 || !servesCosigned(ctx, m.URL, lg.Origin(), logV, w2Key, size, rootB) {
				return false, nil
			}
		}
		return true, nil
	})

	// w2's disk dies: killed, its data directory gone, started again.
	if err := nw.Kill(2); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(w2.Dir, "data")); err != nil {
		t.Fatal(err)
	}
	if err := nw.Restart(ctx, 2); err != nil {
		t.Fatal(err)
	}
	body := (&witness.AddCheckpointRequest{OldSize: 0, Checkpoint: viewA}).Marshal()
	c := newClient()
	var code, unavailable int
	var resp []byte
	restarted := time.Now()
	waitFor(t, ctx, 30*time.Second, "w2 to answer view A with 409", func() (bool, error) {
		var err error
		code, _, resp, err = post(ctx, c, w2.URL, body)
		switch {
		case err != nil:
			return false, fmt.Errorf("posting view A to the restarted w2: %w", err)
		case code == http.StatusServiceUnavailable:
			unavailable++
			return false, nil // recovering from its peers
		case code != http.StatusConflict:
			return false, fmt.Errorf("restarted w2 answered view A with old 0: %d %q, want 409 (or 503 while recovering)", code, resp)
		}
		return true, nil
	})
	t.Logf("restarted w2 answered 409 %s after it was started, after %d answers 503", time.Since(restarted).Round(time.Millisecond), unavailable)
	if got := strings.TrimSpace(string(resp)); got != fmt.Sprint(size) {
		t.Fatalf("409 body %q, want view B's size %d", got, size)
	}
	// It still cosigns view B, the side it chose before.
	proofB, err := fork.ConsistencyProof(size, size)
	if err != nil {
		t.Fatal(err)
	}
	viewB, err := fork.CheckpointAt(size)
	if err != nil {
		t.Fatal(err)
	}
	if code, _, resp, err := post(ctx, c, w2.URL, (&witness.AddCheckpointRequest{OldSize: size, Proof: proofB, Checkpoint: viewB}).Marshal()); err != nil || code != http.StatusOK {
		t.Fatalf("restarted w2 asked for view B again: %d %q %v, want 200", code, resp, err)
	}
	for i := range nw.Members {
		ev, err := nw.Evidence(ctx, i)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ev {
			if e.Kind == vpb.KindName(vpb.Kind_KIND_WITNESS_EQUIVOCATION) || e.Witness != "" {
				t.Fatalf("%s holds witness-equivocation evidence: %s", nw.Members[i].Name, e.Statement)
			}
		}
	}
}

// servesCosigned reports whether the node at url serves, in its checkpoint
// history, origin's checkpoint (size, root) with a valid cosignature by key.
func servesCosigned(ctx context.Context, url, origin string, logV, key note.Verifier, size uint64, root [32]byte) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/v1/logs/%s/checkpoints?from=%d", url, tlog.LogID(origin), size), nil)
	if err != nil {
		return false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil || resp.StatusCode != http.StatusOK {
		return false
	}
	var h feed.HistoryResponse
	if err := json.NewDecoder(bytes.NewReader(b)).Decode(&h); err != nil {
		return false
	}
	for _, e := range h.Checkpoints {
		cp, n, err := tlog.VerifyCheckpoint([]byte(e.Note), origin, []note.Verifier{logV}, key)
		if err == nil && cp.Size == size && cp.Root == root && tlog.SignedBy(n, key) {
			return true
		}
	}
	return false
}
