package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestLogES256Receipts: vigil log --init --receipt-alg es256 creates a P-256
// receipt key; the service signs ES256 receipts with it and vigil
// verify-receipt checks them with its .pub (and refuses an unknown
// --receipt-alg).
func TestLogES256Receipts(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "ts")
	if code, _, stderr := runVigil("log", "--init", "--data", data, "--origin", "ts.vigil.test/log", "--receipt-alg", "rs256"); code != 2 || !strings.Contains(stderr, "eddsa or es256") {
		t.Fatalf("unknown --receipt-alg: %d %s", code, stderr)
	}
	code, out, stderr := runVigil("log", "--init", "--data", data, "--origin", "ts.vigil.test/log", "--receipt-alg", "es256")
	if code != 0 || !regexp.MustCompile(`receipt verifier key \(for verify-receipt --log-key\): ts.vigil.test/log\+es256\+\S+`).MatchString(out) {
		t.Fatalf("log --init: %d %s %s", code, out, stderr)
	}
	issuerKey := filepath.Join(dir, "issuer.key")
	if code, _, stderr := runVigil("submit", "--new-key", "provider.example", "--key", issuerKey); code != 0 {
		t.Fatalf("submit --new-key: %s", stderr)
	}
	vkey, _ := os.ReadFile(issuerKey + ".pub")
	policy := filepath.Join(dir, "policy.yaml")
	os.WriteFile(policy, fmt.Appendf(nil, "issuers:\n  - name: provider.example\n    keys: [%q]\n    kinds: [configuration]\n", strings.TrimSpace(string(vkey))), 0o644)
	ctx, cancel := context.WithCancel(context.Background())
	stdout := &lockedBuffer{changed: make(chan struct{})}
	env := &cliEnv{stdout: stdout, stderr: &lockedBuffer{changed: make(chan struct{})}}
	done := make(chan error, 1)
	go func() {
		done <- runLog(ctx, env, []string{"--data", data, "--policy", policy, "--listen", "127.0.0.1:0"})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("vigil log: %v", err)
		}
	}()
	url := stdout.waitFor(t, regexp.MustCompile(`listening on (http://\S+)\n`), done)[1]
	conf := filepath.Join(dir, "vm-1.json")
	os.WriteFile(conf, []byte(`{"resource":"vm-1","as_of":"2026-01-02T03:04:05Z","config":{"ports":[443]}}`), 0o644)
	rcpt, stmt := filepath.Join(dir, "vm-1.receipt"), filepath.Join(dir, "vm-1.cose")
	if code, out, stderr := runVigil("submit", "--key", issuerKey, "--kind", "configuration", "--log", url, "--out", rcpt, "--statement-out", stmt, conf); code != 0 {
		t.Fatalf("submit: %s %s", out, stderr)
	}
	if code, out, stderr := runVigil("verify-receipt", stmt, rcpt, "--log-key", filepath.Join(data, "receipt.key.pub")); code != 0 || !strings.HasPrefix(out, "valid:") {
		t.Fatalf("verify-receipt: %d %s %s", code, out, stderr)
	}
	// The Ed25519 checkpoint key is not the receipt key.
	if code, _, _ := runVigil("verify-receipt", stmt, rcpt, "--log-key", filepath.Join(data, "log.key.pub")); code != 1 {
		t.Fatalf("verify-receipt with the log key: exit %d", code)
	}
}
