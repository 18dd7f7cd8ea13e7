package node_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"

	"github.com/vigilnet/vigil/node"
	"github.com/vigilnet/vigil/store"
	"github.com/vigilnet/vigil/testnet/scriptlog"
)

// testNode is a node built by node.New on a 127.0.0.1:0 listener, with keys
// from GenerateKeys and a roster file, running until the test ends.
type testNode struct {
	t      *testing.T
	n      *node.Node
	cfg    node.Config
	vkey   string
	cancel context.CancelFunc
	done   chan error
}

func newConfig(t *testing.T, roster string) (node.Config, string) {
	t.Helper()
	dir := t.TempDir()
	cfg := node.DefaultConfig()
	cfg.DataDir = filepath.Join(dir, "data")
	cfg.KeysDir = filepath.Join(dir, "keys")
	cfg.Roster = filepath.Join(dir, "roster.txt")
	vkey, err := node.GenerateKeys(cfg.KeysDir, "witness.test/node")
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, cfg.Roster, roster)
	return cfg, vkey
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

func startNode(t *testing.T, cfg node.Config, vkey string) *testNode {
	t.Helper()
	ln := listen(t)
	n, err := node.New(cfg, node.Deps{Listener: ln, Logger: testLogger(t)})
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	tn := &testNode{t: t, n: n, cfg: cfg, vkey: vkey, cancel: cancel, done: make(chan error, 1)}
	go func() { tn.done <- n.Run(ctx) }()
	t.Cleanup(func() { tn.stop() })
	return tn
}

// stop shuts the node down and waits for Run to return; idempotent.
func (tn *testNode) stop() {
	tn.t.Helper()
	if tn.done == nil {
		return
	}
	tn.cancel()
	select {
	case err := <-tn.done:
		if err != nil {
			tn.t.Errorf("Run: %v", err)
		}
	case <-time.After(30 * time.Second):
		tn.t.Error("node did not stop")
	}
	tn.done = nil
}

func (tn *testNode) get(path string) (int, string) {
	tn.t.Helper()
	return httpDo(tn.t, http.MethodGet, tn.n.URL()+path, nil)
}

func httpDo(t *testing.T, method, url string, body []byte) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// addCheckpointBody is an add-checkpoint request for l's checkpoint at size
// n with a consistency proof from old, growing l to n first.
func addCheckpointBody(t *testing.T, l *scriptlog.Log, old, n uint64) []byte {
	t.Helper()
	if l.Size() < n {
		l.AppendN(int(n-l.Size()), "entry")
	}
	cp, err := l.CheckpointAt(n)
	if err != nil {
		t.Fatal(err)
	}
	p, err := l.ConsistencyProof(old, n)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "old %d\n", old)
	for _, h := range p {
		fmt.Fprintf(&b, "%s\n", base64.StdEncoding.EncodeToString(h))
	}
	b.WriteString("\n")
	b.Write(cp)
	return b.Bytes()
}

// push sends l's checkpoint at size n with a proof from old and returns the
// status and body; a 200 body must verify as the node's cosignature.
func (tn *testNode) push(l *scriptlog.Log, old, n uint64) (int, string) {
	tn.t.Helper()
	t := tn.t
	code, body := httpDo(t, http.MethodPost, tn.n.URL()+"/add-checkpoint", addCheckpointBody(t, l, old, n))
	if code == http.StatusOK {
		cp, err := l.CheckpointAt(n)
		if err != nil {
			t.Fatal(err)
		}
		logV, err := note.NewVerifier(l.VerifierKey())
		if err != nil {
			t.Fatal(err)
		}
		witV, err := fnote.NewVerifierForCosignatureV1(tn.vkey)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := note.Open(append(cp, body...), note.VerifierList(logV, witV)); err != nil {
			t.Fatalf("cosignature does not verify: %v", err)
		}
	}
	return code, body
}

func newLog(t *testing.T, origin string) *scriptlog.Log {
	t.Helper()
	l, err := scriptlog.New(origin)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func rosterOf(logs ...*scriptlog.Log) string {
	var b strings.Builder
	b.WriteString("# test roster\n")
	for _, l := range logs {
		fmt.Fprintf(&b, "log %s\n", l.VerifierKey())
	}
	return b.String()
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func requireStatus(t *testing.T, what string, code int, body string, want int) {
	t.Helper()
	if code != want {
		t.Fatalf("%s: status %d (%q), want %d", what, code, body, want)
	}
}

func TestNodeServesWitness(t *testing.T) {
	a := newLog(t, "example.com/a")
	cfg, vkey := newConfig(t, rosterOf(a))
	tn := startNode(t, cfg, vkey)

	code, body := tn.get("/healthz")
	requireStatus(t, "healthz", code, body, 200)
	if body != "ok\n" {
		t.Fatalf("healthz body %q", body)
	}
	code, body = tn.push(a, 0, 5)
	requireStatus(t, "first push", code, body, 200)
	code, body = tn.push(a, 5, 9)
	requireStatus(t, "second push", code, body, 200)
	code, body = tn.push(a, 0, 9)
	requireStatus(t, "stale push", code, body, 409)

	code, metrics := tn.get("/metrics")
	requireStatus(t, "metrics", code, metrics, 200)
	for _, want := range []string{
		`vigil_witness_add_checkpoint_requests_total{code="200"} 2`,
		`vigil_witness_add_checkpoint_requests_total{code="409"} 1`,
		"vigil_witness_cosignatures_total 2",
		"vigil_witness_add_checkpoint_seconds_count 3",
		"vigil_store_operation_seconds_bucket",
		"vigil_store_commit_batch_size_count",
		"vigil_roster_logs 1",
	} {
		if !hasMetric(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if code, body := httpDo(t, http.MethodGet, tn.n.URL()+"/add-checkpoint", nil); code != http.StatusMethodNotAllowed {
		t.Errorf("GET /add-checkpoint: %d %q", code, body)
	}

	// After a graceful stop the store is closed (the lock is free) and
	// holds the cosigned state.
	tn.stop()
	db, err := store.Open(cfg.DataDir, store.Options{})
	if err != nil {
		t.Fatalf("reopening the store after Run returned: %v", err)
	}
	defer db.Close()
	st, err := db.WitnessState(context.Background(), a.Origin())
	if err != nil || st.Size != 9 {
		t.Fatalf("stored state %d, %v; want size 9", st.Size, err)
	}
}

func TestNodeRosterReload(t *testing.T) {
	a, b := newLog(t, "example.com/a"), newLog(t, "example.com/b")
	cfg, vkey := newConfig(t, rosterOf(a))
	tn := startNode(t, cfg, vkey)

	code, body := tn.push(a, 0, 7)
	requireStatus(t, "push a", code, body, 200)
	code, body = tn.push(b, 0, 3)
	requireStatus(t, "b before reload", code, body, 404)

	writeFile(t, cfg.Roster, rosterOf(a, b))
	if err := tn.n.ReloadRoster(); err != nil {
		t.Fatal(err)
	}
	if got := len(tn.n.Roster().Logs()); got != 2 {
		t.Fatalf("%d logs after reload", got)
	}
	code, body = tn.push(b, 0, 3)
	requireStatus(t, "b after reload", code, body, 200)
	// a's state was kept.
	code, body = tn.push(a, 0, 7)
	requireStatus(t, "a probe after reload", code, body, 409)
	if body != "7\n" {
		t.Fatalf("a's stored size after reload: %q", body)
	}
	if _, m := tn.get("/metrics"); !hasMetric(m, "vigil_roster_logs 2") {
		t.Error("vigil_roster_logs does not follow the reload")
	}

	for _, tc := range []struct {
		name  string
		setup func()
	}{
		{"broken roster", func() { writeFile(t, cfg.Roster, "log not-a-key\n") }},
		{"unknown keyword", func() { writeFile(t, cfg.Roster, rosterOf(a)+"frobnicate yes\n") }},
		{"missing roster", func() {
			if err := os.Remove(cfg.Roster); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.setup()
			if err := tn.n.ReloadRoster(); err == nil {
				t.Fatal("ReloadRoster accepted a bad roster")
			}
			if got := len(tn.n.Roster().Logs()); got != 2 {
				t.Fatalf("old roster not kept: %d logs", got)
			}
			// Both logs are still witnessable, state intact.
			size := b.Size()
			code, body := tn.push(b, size, size+1)
			requireStatus(t, "b after a failed reload", code, body, 200)
		})
	}

	// Dropping a log from the roster stops witnessing it but keeps its state.
	writeFile(t, cfg.Roster, rosterOf(b))
	if err := tn.n.ReloadRoster(); err != nil {
		t.Fatal(err)
	}
	code, body = tn.push(a, 7, 8)
	requireStatus(t, "a after removal", code, body, 404)
	writeFile(t, cfg.Roster, rosterOf(a, b))
	if err := tn.n.ReloadRoster(); err != nil {
		t.Fatal(err)
	}
	code, body = tn.push(a, 0, 8)
	requireStatus(t, "a re-added", code, body, 409)
	if body != "7\n" {
		t.Fatalf("a's state after removal and re-adding: %q", body)
	}
}

func TestNodeStoreLocked(t *testing.T) {
	a := newLog(t, "example.com/a")
	cfg, vkey := newConfig(t, rosterOf(a))
	tn := startNode(t, cfg, vkey)
	code, body := tn.push(a, 0, 2)
	requireStatus(t, "push", code, body, 200)

	ln := listen(t)
	defer ln.Close()
	_, err := node.New(cfg, node.Deps{Listener: ln, Logger: testLogger(t)})
	if !errors.Is(err, store.ErrLocked) {
		t.Fatalf("second node on the same data directory: %v, want ErrLocked", err)
	}
	if !strings.Contains(err.Error(), cfg.DataDir) {
		t.Fatalf("error %q does not name the directory", err)
	}
	// The first node is unaffected.
	code, body = tn.push(a, 2, 4)
	requireStatus(t, "push after the failed second node", code, body, 200)
}

func TestNodeObserver(t *testing.T) {
	a := newLog(t, "example.com/a")
	cfg, _ := newConfig(t, rosterOf(a))
	if err := os.Remove(filepath.Join(cfg.KeysDir, node.WitnessKeyFile)); err != nil {
		t.Fatal(err)
	}
	ln := listen(t)
	if _, err := node.New(cfg, node.Deps{Listener: ln, Logger: testLogger(t)}); err == nil || !strings.Contains(err.Error(), node.WitnessKeyFile) {
		t.Fatalf("witness node without witness.key: %v", err)
	}
	cfg.Observer = true
	tn := startNodeOn(t, cfg, ln)
	if tn.n.Witness() != nil {
		t.Fatal("observer has a witness")
	}
	code, body := tn.push(a, 0, 3)
	if code == http.StatusOK {
		t.Fatalf("observer cosigned: %q", body)
	}
	code, body = tn.get("/healthz")
	requireStatus(t, "observer healthz", code, body, 200)
}

// hasMetric reports whether a line of the Prometheus text exposition is
// want, or starts with want followed by labels or a value.
func hasMetric(exposition, want string) bool {
	for _, line := range strings.Split(exposition, "\n") {
		if rest, ok := strings.CutPrefix(line, want); ok && (rest == "" || rest[0] == ' ' || rest[0] == '{') {
			return true
		}
	}
	return false
}

func startNodeOn(t *testing.T, cfg node.Config, ln net.Listener) *testNode {
	t.Helper()
	n, err := node.New(cfg, node.Deps{Listener: ln, Logger: testLogger(t)})
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	tn := &testNode{t: t, n: n, cfg: cfg, cancel: cancel, done: make(chan error, 1)}
	go func() { tn.done <- n.Run(ctx) }()
	t.Cleanup(func() { tn.stop() })
	return tn
}

func TestNewRejectsBadConfig(t *testing.T) {
	cfg, _ := newConfig(t, "")
	cfg.LogLevel = "chatty"
	if _, err := node.New(cfg, node.Deps{}); err == nil {
		t.Fatal("New accepted an invalid config")
	}
	cfg, _ = newConfig(t, "")
	writeFile(t, cfg.Roster, "log garbage\n")
	ln := listen(t)
	defer ln.Close()
	if _, err := node.New(cfg, node.Deps{Listener: ln}); err == nil || !strings.Contains(err.Error(), "roster") {
		t.Fatalf("New with a broken roster: %v", err)
	}
	// Nothing was left open: the data directory is free.
	db, err := store.Open(cfg.DataDir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
}

// testLogger routes slog to t.Logf.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Logf("%s", bytes.TrimRight(p, "\n"))
	return len(p), nil
}

// TestNodePprof checks that Go's profiles are served only when pprof is on.
func TestNodePprof(t *testing.T) {
	a := newLog(t, "example.com/a")
	for _, on := range []bool{false, true} {
		cfg, vkey := newConfig(t, rosterOf(a))
		cfg.Pprof = on
		tn := startNode(t, cfg, vkey)
		code, body := tn.get("/debug/pprof/heap?debug=1")
		switch {
		case on && (code != http.StatusOK || !strings.Contains(body, "heap profile")):
			t.Errorf("pprof on: GET heap profile: %d %.80q", code, body)
		case !on && code != http.StatusNotFound:
			t.Errorf("pprof off: GET heap profile: %d, want 404", code)
		}
		tn.stop()
	}
}
