package load_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigilnet/vigil/node"
	"github.com/vigilnet/vigil/roster"
	"github.com/vigilnet/vigil/testnet/load"
	"github.com/vigilnet/vigil/tlog"
)

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Logf("%s", bytes.TrimRight(p, "\n"))
	return len(p), nil
}

func newWorkload(t testing.TB, logs, steps int) *load.Workload {
	t.Helper()
	wl, err := load.NewWorkload(load.WorkloadConfig{Logs: logs, Steps: steps})
	if err != nil {
		t.Fatal(err)
	}
	return wl
}

func startNode(t testing.TB, policy []byte) *load.Node {
	t.Helper()
	return startNodeWith(t, policy, nil)
}

func startNodeWith(t testing.TB, policy []byte, tune func(*node.Config)) *load.Node {
	t.Helper()
	n, err := load.StartNodeWith(t.TempDir(), policy, testLogger(t), tune)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Errorf("closing node: %v", err)
		}
	})
	return n
}

func verifier(t testing.TB, vkey string) *tlog.CosignatureVerifier {
	t.Helper()
	v, err := tlog.NewCosignatureVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestWorkloadChains(t *testing.T) {
	wl := newWorkload(t, 3, 4)
	if got := wl.Requests(); got != 12 {
		t.Fatalf("Requests() = %d, want 12", got)
	}
	for _, c := range wl.Chains {
		var old uint64
		for i, st := range c.Steps {
			if st.OldSize != old || st.Size <= old {
				t.Fatalf("%s step %d: old %d size %d after size %d", c.Log.Origin(), i, st.OldSize, st.Size, old)
			}
			if !bytes.HasSuffix(st.Body, st.Checkpoint) || !bytes.HasPrefix(st.Body, fmt.Appendf(nil, "old %d\n", old)) {
				t.Fatalf("step %d body is not an add-checkpoint request:\n%s", i, st.Body)
			}
			old = st.Size
		}
	}
	r, err := roster.ParsePolicy(wl.Policy("w.example/w", ""))
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Logs()) != 3 {
		t.Fatalf("policy lists %d logs, want 3", len(r.Logs()))
	}
	for _, c := range wl.Chains {
		if _, ok := r.Log(c.Log.Origin()); !ok {
			t.Errorf("policy lacks %s", c.Log.Origin())
		}
	}
}

// TestRunAgainstNode drives a real node to the end of the workload, verifies
// every cosignature, then replays the workload: the witness must refuse
// every chain as stale, since it remembers what it cosigned.
func TestRunAgainstNode(t *testing.T) {
	wl := newWorkload(t, 20, 5)
	n := startNode(t, wl.Policy("", ""))
	ctx := t.Context()
	res, err := load.Run(ctx, wl, load.Config{URL: n.URL, Concurrency: 4})
	if err != nil {
		t.Fatal(err)
	}
	if res.Cosigned != 100 || res.Errors() != 0 || !res.Exhausted || res.Clients != 4 {
		t.Fatalf("run: cosigned %d errors %d exhausted %v clients %d; status %v", res.Cosigned, res.Errors(), res.Exhausted, res.Clients, res.Status)
	}
	if err := res.Verify(ctx, verifier(t, n.VKey)); err != nil || res.Verified != 100 {
		t.Fatalf("Verify: %v (verified %d)", err, res.Verified)
	}
	if len(res.Latency) != 100 || res.Percentile(50) <= 0 || res.Percentile(100) < res.Percentile(99) {
		t.Fatalf("latency: %d samples, p50 %s p99 %s max %s", len(res.Latency), res.Percentile(50), res.Percentile(99), res.Percentile(100))
	}
	var out strings.Builder
	res.Report(&out)
	for _, want := range []string{"throughput:", "p99", "200=100", "verified: 100 of 100 (0 failures)"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}

	again, err := load.Run(ctx, wl, load.Config{URL: n.URL, Concurrency: 4})
	if err != nil {
		t.Fatal(err)
	}
	if again.Cosigned != 0 || again.Stale != 20 || again.Status[http.StatusConflict] != 20 {
		t.Fatalf("replay: cosigned %d stale %d status %v", again.Cosigned, again.Stale, again.Status)
	}
}

func TestRunLimits(t *testing.T) {
	wl := newWorkload(t, 10, 10)
	n := startNode(t, wl.Policy("", ""))
	res, err := load.Run(t.Context(), wl, load.Config{URL: n.URL, Concurrency: 3, Requests: 25})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests != 25 || res.Cosigned != 25 || res.Exhausted {
		t.Fatalf("requests %d cosigned %d exhausted %v", res.Requests, res.Cosigned, res.Exhausted)
	}
	// A duration limit ends the run even with work left.
	res, err = load.Run(t.Context(), wl, load.Config{URL: n.URL, Concurrency: 3, Duration: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests >= 75 || res.Exhausted {
		t.Fatalf("duration limit: %d requests, exhausted %v", res.Requests, res.Exhausted)
	}
}

// TestRunStatusHandling scripts a witness's replies to check how a client
// reacts to each: back off on 429, retry on 500, accept a 409 naming the
// size it sent (an earlier attempt landed), give up on a chain after 404.
func TestRunStatusHandling(t *testing.T) {
	wl := newWorkload(t, 1, 3)
	steps := wl.Chains[0].Steps
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch calls.Add(1) {
		case 1:
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusTooManyRequests)
		case 2:
			w.WriteHeader(http.StatusInternalServerError)
		case 3:
			w.Header().Set("Content-Type", "text/x.tlog.size")
			w.WriteHeader(http.StatusConflict)
			fmt.Fprintf(w, "%d\n", steps[0].Size)
		case 4:
			fmt.Fprint(w, "— bench.vigil.example/witness AAAAAAAA\n")
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	defer srv.Close()
	res, err := load.Run(t.Context(), wl, load.Config{URL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	want := map[int]int{429: 1, 500: 1, 409: 1, 200: 1, 404: 1}
	if fmt.Sprint(res.Status) != fmt.Sprint(want) || res.Cosigned != 1 || !res.Exhausted || res.Stale != 0 {
		t.Fatalf("status %v cosigned %d exhausted %v stale %d", res.Status, res.Cosigned, res.Exhausted, res.Stale)
	}
	_, vkey, err := tlog.GenerateCosignerKey(rand.Reader, load.WitnessName)
	if err != nil {
		t.Fatal(err)
	}
	if err := res.Verify(t.Context(), verifier(t, vkey)); err == nil || res.VerifyFailures != 1 {
		t.Fatalf("Verify accepted a bogus cosignature: err %v failures %d", err, res.VerifyFailures)
	}
}

func TestRunTransportErrors(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens there any more
	wl := newWorkload(t, 2, 2)
	res, err := load.Run(t.Context(), wl, load.Config{URL: url, Concurrency: 2})
	if err != nil {
		t.Fatal(err)
	}
	if res.Transport == 0 || res.Cosigned != 0 {
		t.Fatalf("transport %d cosigned %d", res.Transport, res.Cosigned)
	}
}

// TestWaitReady waits for a node to learn the workload's logs from a
// reloaded roster, without changing its state.
func TestWaitReady(t *testing.T) {
	wl := newWorkload(t, 3, 2)
	dir := t.TempDir()
	n, err := load.StartNode(dir, []byte("quorum none\n"), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	// Long enough for at least one probe to be answered on a loaded
	// machine; the node never learns the logs here, so this is the wait.
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	err = load.WaitReady(ctx, nil, n.URL, wl, 20*time.Millisecond)
	cancel()
	if err == nil || !strings.Contains(err.Error(), "does not know") {
		t.Fatalf("WaitReady before the roster has the logs: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "roster.policy"), wl.Policy("", ""), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := n.Node.ReloadRoster(); err != nil {
		t.Fatal(err)
	}
	if err := load.WaitReady(t.Context(), nil, n.URL, wl, 20*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	// The probes changed nothing: the whole workload still applies.
	res, err := load.Run(t.Context(), wl, load.Config{URL: n.URL})
	if err != nil {
		t.Fatal(err)
	}
	if res.Cosigned != 6 || res.Errors() != 0 {
		t.Fatalf("after WaitReady: cosigned %d status %v", res.Cosigned, res.Status)
	}
}
