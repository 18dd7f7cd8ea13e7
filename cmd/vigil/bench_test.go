package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigilnet/vigil/testnet/load"
)

// TestBenchWitnessURL runs `vigil bench witness --url` against a node that
// starts without the generated logs and reloads its roster once the command
// has written it, as an operator would with SIGHUP. The node signs with
// both key types (its default), and both verifier keys are given: every
// response must carry a valid cosignature by each.
func TestBenchWitnessURL(t *testing.T) {
	dir := t.TempDir()
	n, err := load.StartNode(dir, []byte("quorum none\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	roster := filepath.Join(dir, "roster.policy") // the file the node reads
	vkey := filepath.Join(dir, "keys", "witness.vkey")
	mlvkey := filepath.Join(dir, "keys", "witness-mldsa.vkey")

	stdout := &watchedWriter{watch: "wrote roster with", seen: make(chan struct{})}
	var stderr bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- vigilMain([]string{"bench", "witness", "--url", n.URL, "--witness-vkey", vkey, "--witness-vkey", mlvkey,
			"--roster-out", roster, "--logs", "4", "--concurrency", "2", "--requests", "20", "--wait", "30s"}, stdout, &stderr)
	}()
	select {
	case <-stdout.seen:
	case code := <-done:
		t.Fatalf("exit %d before writing the roster\n%s%s", code, stdout, &stderr)
	case <-time.After(30 * time.Second):
		t.Fatal("the roster was not written in 30s")
	}
	if err := n.Node.ReloadRoster(); err != nil {
		t.Fatal(err)
	}
	var code int
	select {
	case code = <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("vigil bench witness did not finish in 60s")
	}
	out := stdout.String()
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, &stderr)
	}
	for _, want := range []string{"waiting up to 30s for " + n.URL, "4 logs, 2 clients, 20 requests", "responses: 200=20\n", "of each type: ed25519, mldsa\n", "cosignatures verified: 20 of 20 (0 failures)"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// watchedWriter collects output and closes seen once a line containing
// watch has been written.
type watchedWriter struct {
	mu    sync.Mutex
	b     bytes.Buffer
	watch string
	seen  chan struct{}
	once  sync.Once
}

func (w *watchedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.b.Write(p)
	if strings.Contains(w.b.String(), w.watch) {
		w.once.Do(func() { close(w.seen) })
	}
	return len(p), nil
}

func (w *watchedWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}
