package main

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigilnet/vigil/gossip/evidence"
	vpb "github.com/vigilnet/vigil/proto"
	"github.com/vigilnet/vigil/tlog"
)

// cosigner is a witness key for the tests: its roster vkey and a function
// appending its cosignature line to a note (corrupted if asked).
type cosigner struct {
	name, vkey string
	signer     *tlog.CosignatureSigner
}

func newCosigner(t *testing.T, name string) cosigner {
	t.Helper()
	skey, vkey, err := tlog.GenerateCosignerKey(rand.Reader, name)
	if err != nil {
		t.Fatal(err)
	}
	s, err := tlog.NewCosignatureSigner(skey, func() time.Time { return time.Unix(1700000000, 0) })
	if err != nil {
		t.Fatal(err)
	}
	return cosigner{name, vkey, s}
}

func (c cosigner) cosign(t *testing.T, n []byte, corrupt bool) []byte {
	t.Helper()
	body := n[:bytes.Index(n, []byte("\n\n"))+1]
	sig, err := c.signer.Sign(body)
	if err != nil {
		t.Fatal(err)
	}
	if corrupt {
		sig[len(sig)-1] ^= 1
	}
	raw := binary.BigEndian.AppendUint32(nil, c.signer.KeyHash())
	return fmt.Appendf(bytes.Clone(n), "— %s %s\n", c.name, base64.StdEncoding.EncodeToString(append(raw, sig...)))
}

// TestVerifyEveryRosterSignature: vigil verify checks every signature line
// whose name and key ID are a roster key, the log's or any witness's, not
// only the log's and the accused witness's, and names the failing line.
func TestVerifyEveryRosterSignature(t *testing.T) {
	dir := t.TempDir()
	l, a, b, proof := splitView(t, "example.com/sigs-log")
	w1, w2, outsider := newCosigner(t, "w1.example"), newCosigner(t, "w2.example"), newCosigner(t, "w3.example")
	rosterPath := filepath.Join(dir, "roster")
	policy := fmt.Sprintf("log %s\nwitness w1 %s\nwitness w2 %s\n", l.VerifierKey(), w1.vkey, w2.vkey)
	if err := os.WriteFile(rosterPath, []byte(policy), 0o644); err != nil {
		t.Fatal(err)
	}
	// The log's line, its signature bytes changed and its key ID kept.
	logName, logB64, _ := strings.Cut(strings.TrimSuffix(strings.TrimPrefix(string(a[bytes.Index(a, []byte("\n\n"))+2:]), "— "), "\n"), " ")
	raw, err := base64.StdEncoding.DecodeString(logB64)
	if err != nil {
		t.Fatal(err)
	}
	raw[len(raw)-1] ^= 1
	corruptLog := fmt.Appendf(nil, "— %s %s\n", logName, base64.StdEncoding.EncodeToString(raw))
	diff := func(a, b []byte) *vpb.Evidence {
		return &vpb.Evidence{Kind: vpb.Kind_KIND_LOG_EQUIVOCATION_DIFFERENT_SIZES, CheckpointA: a, CheckpointB: b, ConsistencyProof: proof}
	}
	wit := func(a, b []byte) *vpb.Evidence {
		e := diff(a, b)
		e.Kind, e.WitnessKey = vpb.Kind_KIND_WITNESS_EQUIVOCATION, w1.vkey
		return e
	}
	for _, tc := range []struct {
		name string
		e    *vpb.Evidence
		code int
		out  string
	}{
		{"valid cosignatures by two witnesses", diff(w1.cosign(t, a, false), w2.cosign(t, w1.cosign(t, b, false), false)), 0, "VALID log-equivocation-different-sizes"},
		{"failing cosignature by another roster witness", diff(a, w2.cosign(t, w1.cosign(t, b, false), true)), 1, "checkpoint B: signature from a known key does not verify: signature line 3 (w2.example, key ID"},
		{"witness equivocation, another witness's line fails", wit(w2.cosign(t, w1.cosign(t, a, false), true), w1.cosign(t, b, false)), 1, "checkpoint A: signature from a known key does not verify: signature line 3 (w2.example"},
		{"witness equivocation, all lines valid", wit(w2.cosign(t, w1.cosign(t, a, false), false), w1.cosign(t, b, false)), 0, "VALID witness-equivocation"},
		{"failing cosignature by a key not in the roster", diff(outsider.cosign(t, a, true), b), 0, "VALID log-equivocation-different-sizes"},
		{"corrupted second line of the log's key", diff(append(bytes.Clone(a), corruptLog...), b), 1, "checkpoint A: signature from a known key does not verify: signature line 2 (example.com/sigs-log"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file, err := evidence.MarshalFile(tc.e)
			if err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(t.TempDir(), "e.evidence")
			if err := os.WriteFile(p, file, 0o644); err != nil {
				t.Fatal(err)
			}
			code, stdout, stderr := runCLI("verify", p, "--roster", rosterPath)
			if code != tc.code || !strings.Contains(stdout+stderr, tc.out) {
				t.Fatalf("exit %d, want %d with %q\nstdout: %s\nstderr: %s", code, tc.code, tc.out, stdout, stderr)
			}
		})
	}
}
