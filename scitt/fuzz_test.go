package scitt_test

import (
	"bytes"
	"crypto/ed25519"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/fxamacker/cbor/v2"
	"github.com/veraison/go-cose"
	"github.com/vigilnet/vigil/scitt"
)

// fixedKey returns a deterministic key so seeds and fuzz targets agree.
func fixedKey(name string, seed byte) *scitt.PrivateKey {
	return &scitt.PrivateKey{Name: name, Key: ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, 32))}
}

var (
	fuzzIssuer  = fixedKey("provider.example", 1)
	fuzzReceipt = fixedKey("ts.vigil.test", 2)
)

func fuzzStatement(tb testing.TB, n int, he bool) []byte {
	b, err := scitt.SignStatement(fuzzIssuer, fmt.Sprint("urn:x:", n), scitt.KindConfiguration,
		fmt.Appendf(nil, `{"resource":"r%d","as_of":"2026-01-01T00:00:00Z","digest":{"alg":"sha-256","value":"%064x"}}`, n, n),
		scitt.SignOptions{HashEnvelope: he})
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// fuzzReceiptFor builds a valid receipt for stmt as leaf 0 of a 1-leaf tree.
func fuzzReceiptFor(tb testing.TB, stmt []byte) []byte {
	entry, err := scitt.EntryFor(stmt)
	if err != nil {
		tb.Fatal(err)
	}
	r, err := scitt.BuildReceipt(fuzzReceipt, "urn:x:1", scitt.InclusionProof{Size: 1, Index: 0, Path: [][]byte{}}, scitt.LeafHash(entry))
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

func FuzzParseStatement(f *testing.F) {
	f.Add(fuzzStatement(f, 1, false))
	f.Add(fuzzStatement(f, 2, true))
	f.Add([]byte{0xd2, 0x84, 0x40, 0xa0, 0x40, 0x40})
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := scitt.ParseStatement(b)
		if err != nil {
			return
		}
		// The entry is a fixed point and parses to the same statement.
		again, err := scitt.ParseStatement(s.Entry)
		if err != nil {
			t.Fatalf("entry does not parse: %v", err)
		}
		if !bytes.Equal(again.Entry, s.Entry) || again.Issuer != s.Issuer || again.Subject != s.Subject || again.Kind != s.Kind {
			t.Fatal("entry is not a fixed point")
		}
		_ = s.Verify(fuzzIssuer.Public().Key)
	})
}

func FuzzVerifyReceipt(f *testing.F) {
	stmt := fuzzStatement(f, 1, false)
	f.Add(fuzzReceiptFor(f, stmt))
	f.Add([]byte{0xd2, 0x84, 0x40, 0xa0, 0xf6, 0x40})
	key := fuzzReceipt.Public()
	entry, _ := scitt.EntryFor(stmt)
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := scitt.ParseReceipt(b)
		if err != nil {
			return
		}
		if r.Proof.Index >= r.Proof.Size {
			t.Fatal("parsed a proof with index >= size")
		}
		if err := r.Verify(entry, key); err == nil {
			// Only a 1-leaf tree over exactly this entry can verify.
			if r.Proof.Size != 1 || len(r.Proof.Path) != 0 {
				t.Fatalf("forged receipt verified: %+v", r.Proof)
			}
		}
	})
}

func FuzzParseProblem(f *testing.F) {
	f.Add([]byte{0xa2, 0x20, 0x63, 'a', 'b', 'c', 0x21, 0x60})
	f.Add([]byte{0xa1, 0x20, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := scitt.ParseProblem(b)
		if err != nil {
			return
		}
		_ = p.Error()
	})
}

func FuzzParseCOSEKey(f *testing.F) {
	f.Add(fuzzReceipt.Public().COSEKey())
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := scitt.ParseCOSEKey(b)
		if err != nil {
			return
		}
		if _, err := scitt.ParseCOSEKey(k.COSEKey()); err != nil {
			t.Fatalf("re-encoded key does not parse: %v", err)
		}
	})
}

// TestWriteFuzzSeeds regenerates testdata/fuzz seed files when
// VIGIL_WRITE_FUZZ_SEEDS=1.
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("VIGIL_WRITE_FUZZ_SEEDS") != "1" {
		t.Skip("set VIGIL_WRITE_FUZZ_SEEDS=1 to regenerate the seed corpora")
	}
	stmt := fuzzStatement(t, 1, false)
	rcpt := fuzzReceiptFor(t, stmt)
	seeds := map[string][][]byte{
		"FuzzParseStatement": {stmt, fuzzStatement(t, 2, true), rcpt},
		"FuzzVerifyReceipt":  {rcpt, stmt},
		"FuzzParseProblem":   {{0xa2, 0x20, 0x69, 'N', 'o', 't', ' ', 'F', 'o', 'u', 'n', 'd', 0x21, 0x61, 'x'}},
		"FuzzParseCOSEKey":   {fuzzReceipt.Public().COSEKey()},
	}
	// X.509 statements and x5chain headers, from a CA built here.
	root := newCA(t, "Fuzz Root", nil)
	leaf, leafKey := newLeaf(t, root, "fuzz leaf", leafOpts{})
	chain, _ := cbor.Marshal([]any{leaf.Raw, root.cert.Raw})
	single, _ := cbor.Marshal(leaf.Raw)
	seeds["FuzzParseX5Chain"] = [][]byte{chain, single, {0x80}, {0x41, 0x00}}
	seeds["FuzzParseStatement"] = append(seeds["FuzzParseStatement"],
		signCOSE(t, cose.AlgorithmES256, leafKey, map[any]any{int64(33): chainOf(leaf, root.cert), int64(15): claims("https://fuzz.example", "s"), int64(3): "application/vnd.cyclonedx+json"}, []byte(cyclonedx)),
		signCOSE(t, cose.AlgorithmES256, leafKey, map[any]any{int64(34): x5t(leaf), int64(15): claims("https://fuzz.example", "s"), int64(2): []any{int64(3)}, int64(3): "application/json"}, []byte("{}")))
	patterns := [][2]string{{"application/*", "application/json"}, {"application/*+json", "application/vnd.in-toto+json"}, {"*/*", "text/plain; charset=utf-8"}, {"application/vnd.cyclonedx+json", "APPLICATION/VND.CYCLONEDX+JSON"}}
	pdir := filepath.Join("testdata", "fuzz", "FuzzMediaPattern")
	if err := os.MkdirAll(pdir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i, p := range patterns {
		content := fmt.Sprintf("go test fuzz v1\nstring(%q)\nstring(%q)\n", p[0], p[1])
		if err := os.WriteFile(filepath.Join(pdir, fmt.Sprintf("seed%d", i)), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for name, list := range seeds {
		dir := filepath.Join("testdata", "fuzz", name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for i, b := range list {
			content := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed%d", i)), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestEntryEncodingMatchesCBOR checks the hand-written entry encoding
// against fxamacker/cbor's core deterministic encoding.
func TestEntryEncodingMatchesCBOR(t *testing.T) {
	for _, n := range []int{0, 23, 24, 255, 256, 70000} {
		stmt, err := scitt.SignStatement(fuzzIssuer, "s", scitt.KindConfiguration,
			fmt.Appendf(nil, `{"resource":"r%s","as_of":"2026-01-01T00:00:00Z","config":{}}`, bytes.Repeat([]byte("x"), n)), scitt.SignOptions{})
		if err != nil {
			t.Fatal(err)
		}
		entry, err := scitt.EntryFor(stmt)
		if err != nil {
			t.Fatal(err)
		}
		var parts []cbor.RawMessage
		var tag cbor.RawTag
		if err := cbor.Unmarshal(entry, &tag); err != nil || tag.Number != 18 {
			t.Fatalf("entry tag: %v", err)
		}
		if err := cbor.Unmarshal(tag.Content, &parts); err != nil || len(parts) != 4 || !bytes.Equal(parts[1], []byte{0xa0}) {
			t.Fatalf("entry layout: %v", err)
		}
		var prot, payload, sig []byte
		_ = cbor.Unmarshal(parts[0], &prot)
		_ = cbor.Unmarshal(parts[2], &payload)
		_ = cbor.Unmarshal(parts[3], &sig)
		em, _ := cbor.CoreDetEncOptions().EncMode()
		want, _ := em.Marshal(cbor.Tag{Number: 18, Content: []any{prot, map[any]any{}, payload, sig}})
		if !bytes.Equal(entry, want) {
			t.Fatalf("payload %d bytes: entry encoding differs from core deterministic CBOR", n)
		}
	}
}

// FuzzValidatePayload runs the payload schemas on arbitrary JSON.
func FuzzValidatePayload(f *testing.F) {
	for i, k := range scitt.Kinds {
		f.Add(uint8(i), payload(k, i))
	}
	f.Fuzz(func(t *testing.T, kind uint8, b []byte) {
		k := scitt.Kinds[int(kind)%len(scitt.Kinds)]
		_ = scitt.ValidatePayload(k, b)
	})
}
