package tlog_test

import (
	"crypto/mldsa"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/vigilnet/vigil/tlog"
)

// FuzzMLDSANote parses a witness vkey of either type and opens a note with
// it and the spec's log key. Whatever passes must hold up independently: a
// verified ML-DSA-44 line verifies with crypto/mldsa over the subtree/v1
// message of the parsed checkpoint, with a non-zero timestamp. Seeds
// (testdata/fuzz/FuzzMLDSANote) include a valid note with an ML-DSA line.
func FuzzMLDSANote(f *testing.F) {
	signer, vkey := mldsaTestKey(f, "witness.example/w1", time.Unix(1700000000, 0))
	logV, err := tlog.NewNoteVerifier(specLogVKey)
	if err != nil {
		f.Fatal(err)
	}
	n, err := note.Open([]byte(specCosigned), note.VerifierList(logV))
	if err != nil {
		f.Fatal(err)
	}
	n.UnverifiedSigs = nil
	good, err := note.Sign(n, signer)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(vkey, good)
	f.Add(specWitnessVKey, []byte(specCosigned))
	f.Fuzz(func(t *testing.T, vkey string, msg []byte) {
		v, err := tlog.NewWitnessVerifier(vkey)
		if err != nil {
			return
		}
		typ, err := tlog.CosignatureKeyType(vkey)
		if err != nil {
			t.Fatalf("verifier built from a key whose type does not parse: %v", err)
		}
		c, out, err := tlog.VerifyCheckpoint(msg, "example.com/log", []note.Verifier{logV}, v)
		if err != nil || typ != tlog.AlgCosignatureMLDSA {
			return
		}
		pkb, _ := base64.StdEncoding.DecodeString(strings.SplitN(vkey, "+", 3)[2])
		pk, err := mldsa.NewPublicKey(mldsa.MLDSA44(), pkb[1:])
		if err != nil {
			t.Fatalf("accepted key crypto/mldsa rejects: %v", err)
		}
		for _, s := range out.Sigs {
			if s.Name != v.Name() || s.Hash != v.KeyHash() {
				continue
			}
			raw, _ := base64.StdEncoding.DecodeString(s.Base64)
			ts, err := tlog.CosignatureTimestamp(s)
			if err != nil || ts == 0 {
				t.Fatalf("accepted ML-DSA line with timestamp %d (%v)", ts, err)
			}
			m, err := tlog.SubtreeMessage(v.Name(), ts, c.Origin, 0, c.Size, c.Root)
			if err != nil {
				t.Fatal(err)
			}
			if err := mldsa.Verify(pk, m, raw[12:], nil); err != nil {
				t.Fatalf("accepted a line crypto/mldsa rejects: %v", err)
			}
		}
	})
}
