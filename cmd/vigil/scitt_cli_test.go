package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// lockedBuffer is an io.Writer that signals every write.
type lockedBuffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{}
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Write(p)
	close(b.changed)
	b.changed = make(chan struct{})
	return len(p), nil
}

func (b *lockedBuffer) waitFor(t *testing.T, re *regexp.Regexp, done <-chan error) []string {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		b.mu.Lock()
		m := re.FindStringSubmatch(b.buf.String())
		ch := b.changed
		b.mu.Unlock()
		if m != nil {
			return m
		}
		select {
		case <-ch:
		case err := <-done:
			t.Fatalf("vigil log exited: %v", err)
		case <-deadline:
			t.Fatalf("no %q in time", re)
		}
	}
}

func runVigil(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = vigilMain(args, &o, &e)
	return code, o.String(), e.String()
}

// TestLogSubmitVerifyReceipt drives vigil log --init, vigil log, vigil submit
// (plain and hash envelope) and vigil verify-receipt end to end, in process.
func TestLogSubmitVerifyReceipt(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "ts")
	if code, _, stderr := runVigil("log", "--init", "--data", data, "--origin", "ts.vigil.test/log"); code != 0 {
		t.Fatalf("log --init: %s", stderr)
	}
	issuerKey, policy := newIssuer(t, dir)

	url, stop := startLog(t, context.Background(), "--data", data, "--policy", policy, "--listen", "127.0.0.1:0")
	defer stop()

	conf := writeVMConfig(t, dir)
	receiptKey := filepath.Join(data, "receipt.key.pub")
	tests := []struct {
		name  string
		extra []string
	}{
		{"plain", nil},
		{"hash envelope", []string{"--hash-envelope", "--location", "https://provider.example/vm-1", "--subject", "vm-1-digest"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-"))
			args := append([]string{"submit", "--key", issuerKey, "--kind", "configuration", "--log", url,
				"--out", out + ".receipt", "--statement-out", out + ".cose"}, tt.extra...)
			if code, stdout, stderr := runVigil(append(args, conf)...); code != 0 || !strings.Contains(stdout, "registered "+url+"/entries/") {
				t.Fatalf("submit: %d %s %s", code, stdout, stderr)
			}
			if code, stdout, stderr := runVigil("verify-receipt", out+".cose", out+".receipt", "--log-key", receiptKey); code != 0 || !strings.HasPrefix(stdout, "valid:") {
				t.Fatalf("verify-receipt: %d %s %s", code, stdout, stderr)
			}
			// The log's checkpoint key is not the receipt key: exit 1 with a reason.
			if code, _, stderr := runVigil("verify-receipt", "--log-key", filepath.Join(data, "log.key.pub"), out+".cose", out+".receipt"); code != 1 || !strings.Contains(stderr, "invalid") {
				t.Fatalf("verify-receipt with the wrong key: %d %s", code, stderr)
			}
			// A receipt for another statement does not verify.
			other := filepath.Join(dir, "plain.cose")
			if out+".cose" != other {
				if code, _, _ := runVigil("verify-receipt", other, out+".receipt", "--log-key", receiptKey); code != 1 {
					t.Fatalf("verify-receipt of another statement: exit %d", code)
				}
			}
		})
	}
	// Submitting the same file again (Ed25519 is deterministic: the same
	// statement) is a replay; submit fetches the existing entry's receipt.
	if code, stdout, stderr := runVigil("submit", "--key", issuerKey, "--kind", "configuration", "--log", url,
		"--out", filepath.Join(dir, "again.receipt"), "--statement-out", filepath.Join(dir, "again.cose"), conf); code != 0 || !strings.Contains(stdout, "registered") {
		t.Fatalf("replayed submit: %d %s %s", code, stdout, stderr)
	}
	if code, _, stderr := runVigil("verify-receipt", filepath.Join(dir, "again.cose"), filepath.Join(dir, "again.receipt"), "--log-key", receiptKey); code != 0 {
		t.Fatalf("receipt of the replayed submit: %s", stderr)
	}
	// A statement the policy refuses fails with the problem's title.
	inv := filepath.Join(dir, "inv.json")
	os.WriteFile(inv, []byte(`{"provider":"p","customer":"c","as_of":"2026-01-02T03:04:05Z","resources":[]}`), 0o644)
	if code, _, stderr := runVigil("submit", "--key", issuerKey, "--kind", "inventory", "--log", url, inv); code != 1 || !strings.Contains(stderr, "Rejected") {
		t.Fatalf("disallowed kind: %d %s", code, stderr)
	}
	if code, _, _ := runVigil("verify-receipt", "only-one-arg", "--log-key", receiptKey); code != 2 {
		t.Fatalf("usage error: exit %d", code)
	}
}
