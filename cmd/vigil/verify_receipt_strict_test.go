package main

import (
	"crypto/rand"
	"crypto/sha256"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/veraison/go-cose"
	"github.com/vigilnet/vigil/scitt"
)

// TestVerifyReceiptStrict checks that vigil verify-receipt accepts a receipt
// with the one inclusion proof the service issues and rejects one that
// carries an extra proof, junk or valid, after or before the good one.
func TestVerifyReceiptStrict(t *testing.T) {
	dir := t.TempDir()
	newKey := func(name string) *scitt.PrivateKey {
		skey, _, err := scitt.GenerateKey(rand.Reader, name)
		if err != nil {
			t.Fatal(err)
		}
		k, err := scitt.ParsePrivateKey(skey)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	issuer, ts := newKey("provider.example"), newKey("ts.vigil.test")
	stmt, err := scitt.SignStatement(issuer, "urn:x", scitt.KindConfiguration,
		[]byte(`{"resource":"vm-1","as_of":"2026-01-02T03:04:05Z","config":{}}`), scitt.SignOptions{})
	if err != nil {
		t.Fatal(err)
	}
	entry, _ := scitt.EntryFor(stmt)
	// A two-leaf tree: the statement at index 0, another entry at 1.
	sibling := scitt.LeafHash([]byte("other entry"))
	root := sha256Node(scitt.LeafHash(entry), sibling)
	rcpt, err := scitt.BuildReceipt(ts, "urn:x", scitt.InclusionProof{Size: 2, Index: 0, Path: [][]byte{sibling}}, root)
	if err != nil {
		t.Fatal(err)
	}
	var msg cose.Sign1Message
	if err := msg.UnmarshalCBOR(rcpt); err != nil {
		t.Fatal(err)
	}
	good := msg.Headers.Unprotected[int64(396)].(map[any]any)[int64(-1)].([]any)[0].([]byte)
	withProofs := func(proofs ...any) []byte {
		m := msg
		m.Headers.Unprotected = map[any]any{int64(396): map[any]any{int64(-1): proofs}}
		m.Headers.RawUnprotected = nil
		b, err := m.MarshalCBOR()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	stmtFile := write("s.cose", stmt)
	keyFile := write("receipt.key.pub", []byte(ts.Public().String()+"\n"))
	junk := []byte{0x83, 0x02, 0x01, 0x80}
	tests := []struct {
		name    string
		receipt []byte
		code    int
	}{
		{"one proof", rcpt, 0},
		{"[good, junk]", withProofs(good, junk), 1},
		{"[junk, good]", withProofs(junk, good), 1},
		{"[good, good]", withProofs(good, good), 1},
	}
	for _, tt := range tests {
		code, stdout, stderr := runVigil("verify-receipt", stmtFile, write("r", tt.receipt), "--log-key", keyFile)
		if code != tt.code {
			t.Errorf("%s: exit %d, want %d (%s%s)", tt.name, code, tt.code, stdout, stderr)
		}
		if tt.code == 1 && !strings.Contains(stderr, "exactly one") {
			t.Errorf("%s: reason %q does not say why", tt.name, stderr)
		}
	}
}

// sha256Node is the RFC 9162 interior node hash.
func sha256Node(l, r []byte) []byte {
	h := sha256.New()
	h.Write([]byte{1})
	h.Write(l)
	h.Write(r)
	return h.Sum(nil)
}
