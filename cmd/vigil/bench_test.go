package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
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
// response must carry a valid cosignature by each. --pid-file names the
// node's process (this test's) and a helper (a real child process standing
// in for a signer): both are measured, alone and in total.
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
	helper := exec.Command("sleep", "600")
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { helper.Process.Kill(); helper.Wait() }()
	pidFile, jsonFile := filepath.Join(dir, "witness.pid"), filepath.Join(dir, "result.json")
	if err := os.WriteFile(pidFile, fmt.Appendf(nil, "%d\n%d\n", os.Getpid(), helper.Process.Pid), 0o644); err != nil {
		t.Fatal(err)
	}

	stdout := &watchedWriter{watch: "wrote roster with", seen: make(chan struct{})}
	var stderr bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- vigilMain([]string{"bench", "witness", "--url", n.URL, "--witness-vkey", vkey, "--witness-vkey", mlvkey,
			"--roster-out", roster, "--logs", "4", "--concurrency", "2", "--requests", "20", "--wait", "30s",
			"--pid-file", pidFile, "--json", jsonFile}, stdout, &stderr)
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
	for _, want := range []string{"waiting up to 30s for " + n.URL, "4 logs, 2 clients, 20 requests", "responses: 200=20\n", "of each type: ed25519, mldsa\n", "cosignatures verified: 20 of 20 (0 failures)",
		fmt.Sprintf("CPU of its helper process %d (sleep)", helper.Process.Pid), "CPU of the witness with its helpers"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	b, err := os.ReadFile(jsonFile)
	if err != nil {
		t.Fatal(err)
	}
	var res benchJSON
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	if res.TargetPID != os.Getpid() || len(res.TargetHelpers) != 1 || res.TargetHelpers[0].PID != helper.Process.Pid {
		t.Fatalf("processes measured: witness %d, helpers %+v; want %d and %d\n%s", res.TargetPID, res.TargetHelpers, os.Getpid(), helper.Process.Pid, b)
	}
	if res.TargetCPUus <= 0 || res.TargetTotalCPUus < res.TargetCPUus || res.TargetTotalRSSMB <= res.TargetRSSMB {
		t.Fatalf("witness alone %.0f µs, %.1f MB; with its helper %.0f µs, %.1f MB\n%s", res.TargetCPUus, res.TargetRSSMB, res.TargetTotalCPUus, res.TargetTotalRSSMB, b)
	}
}

func TestReadPIDFile(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		want       []int
	}{
		{name: "one", text: "4242", want: []int{4242}},
		{name: "one with newline", text: "4242\n", want: []int{4242}},
		{name: "witness and signer", text: "4242\n77\n", want: []int{4242, 77}},
		{name: "blank lines and spaces", text: "\n 4242 \n\n77\n", want: []int{4242, 77}},
		{name: "empty", text: "\n"},
		{name: "not a number", text: "4242\nssh-agent\n"},
		{name: "zero", text: "0\n"},
		{name: "negative", text: "-1\n"},
		{name: "twice", text: "4242\n4242\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "pid")
			if err := os.WriteFile(path, []byte(tc.text), 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := readPIDFile(path)
			if tc.want == nil {
				if err == nil || !strings.Contains(err.Error(), path) {
					t.Fatalf("read %q as %v, %v; want an error naming the file", tc.text, got, err)
				}
				return
			}
			if err != nil || fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("read %q as %v, %v; want %v", tc.text, got, err, tc.want)
			}
		})
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
