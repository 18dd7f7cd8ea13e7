package main

import (
	"context"
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
	issuerKey, policy := newIssuer(t, dir)
	url, stop := startLog(t, context.Background(), "--data", data, "--policy", policy, "--listen", "127.0.0.1:0")
	defer stop()
	conf := writeVMConfig(t, dir)
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
