package tlog_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"testing"
	"time"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"

	"github.com/vigilnet/vigil/tlog"
)

// Spec vectors from c2sp.org/tlog-cosignature §7 (https://c2sp.org/tlog-cosignature).
const (
	specLogVKey     = "example.com/log+d455c521+AQOhB7/zzhC+HXDdGOdLwJln5NYwm6UNXx3chmQSVTG4"
	specWitnessVKey = "witness.example/w1+20324abe+BCmsuuFBvMrwsi4alNNNC8c2HlJtC/4SyJeUvJMilm3X"
	specBody        = "example.com/log\n7\nWmH8K1T5z6cXdPJDIUPdQMbLKxGUf69lp9PaXLZRmcg=\n"
	specCosigned    = specBody + "\n" +
		"— example.com/log 1FXFIXn5WNO0nmB8jpaNKWoqfB//pR44E4k8CO4SmN1B50zYwNAr2omDcPg3jHsVO5RoDZ3k9OJRhEsiuhDyOm4Ktgw=\n" +
		"— witness.example/w1 IDJKvgAAAABlU/EAdmzUw1pItfMvHFyF/EilC4Xz+dLXIuByIqUj+94vGvXlxGRv29FzD1xGZRc5au0NWlmpZ1YpokOHmYzEU9LPDg==\n"
)

func seed(from byte) []byte {
	s := make([]byte, 32)
	for i := range s {
		s[i] = from + byte(i)
	}
	return s
}

// specWitnessSKey builds the spec's witness private key string (seed 0x20..0x3f).
func specWitnessSKey(t *testing.T) string {
	t.Helper()
	v, err := tlog.NewCosignatureVerifier(specWitnessVKey)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("PRIVATE+KEY+witness.example/w1+%08x+%s", v.KeyHash(),
		base64.StdEncoding.EncodeToString(append([]byte{tlog.AlgCosignatureV1}, seed(0x20)...)))
}

func TestCosignatureSpecVector(t *testing.T) {
	signer, err := tlog.NewCosignatureSigner(specWitnessSKey(t), func() time.Time { return time.Unix(1700000000, 0) })
	if err != nil {
		t.Fatal(err)
	}
	if got := signer.VerifierKey(); got != specWitnessVKey {
		t.Fatalf("VerifierKey = %q, want %q", got, specWitnessVKey)
	}
	logV, err := note.NewVerifier(specLogVKey)
	if err != nil {
		t.Fatal(err)
	}
	n, err := note.Open([]byte(specCosigned), note.VerifierList(logV))
	if err != nil {
		t.Fatal(err)
	}
	// Our signer reproduces the spec's cosignature line byte for byte.
	out, err := note.Sign(n, signer)
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != specCosigned {
		t.Fatalf("cosigned note differs from the spec vector:\n%s\nwant:\n%s", out, specCosigned)
	}
	// Byte layout: key ID || uint64 timestamp || 64-byte signature.
	raw, _ := base64.StdEncoding.DecodeString("IDJKvgAAAABlU/EAdmzUw1pItfMvHFyF/EilC4Xz+dLXIuByIqUj+94vGvXlxGRv29FzD1xGZRc5au0NWlmpZ1YpokOHmYzEU9LPDg==")
	if len(raw) != 76 || hex.EncodeToString(raw[:12]) != "20324abe000000006553f100" {
		t.Fatalf("layout: %x", raw[:12])
	}
	pub, _ := base64.StdEncoding.DecodeString("Kay64UG8yvCyLhqU000LxzYeUm0L/hLIl5S8kyKWbdc=")
	if !ed25519.Verify(pub, tlog.CosignatureMessage(1700000000, []byte(specBody)), raw[12:]) {
		t.Fatal("raw Ed25519 check of the spec cosignature failed")
	}
}

func TestCosignatureAgainstThirdPartyVerifier(t *testing.T) {
	skey, vkey, err := tlog.GenerateCosignerKey(nil, "witness.test/a")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := tlog.NewCosignatureSigner(skey, nil)
	if err != nil {
		t.Fatal(err)
	}
	// transparency-dev/formats is the independent verifier.
	theirs, err := fnote.NewVerifierForCosignatureV1(vkey)
	if err != nil {
		t.Fatal(err)
	}
	ours, err := tlog.NewCosignatureVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	if theirs.KeyHash() != ours.KeyHash() {
		t.Fatalf("key IDs differ: %08x vs %08x", theirs.KeyHash(), ours.KeyHash())
	}
	sig, err := signer.Sign([]byte(specBody))
	if err != nil {
		t.Fatal(err)
	}
	if !theirs.Verify([]byte(specBody), sig) || !ours.Verify([]byte(specBody), sig) {
		t.Fatal("cosignature rejected")
	}
	bad := bytes.Clone(sig)
	bad[20] ^= 1
	if theirs.Verify([]byte(specBody), bad) || ours.Verify([]byte(specBody), bad) {
		t.Fatal("tampered cosignature accepted")
	}
	// And the reverse: formats' signer verified by ours.
	fs, err := fnote.NewSignerForCosignatureV1(skey)
	if err != nil {
		t.Fatal(err)
	}
	sig2, err := fs.Sign([]byte(specBody))
	if err != nil {
		t.Fatal(err)
	}
	if !ours.Verify([]byte(specBody), sig2) {
		t.Fatal("our verifier rejects formats' cosignature")
	}
}

func TestParseCheckpoint(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		ok         bool
	}{
		{"spec", specBody, true},
		{"extensions", specBody + "ext one\next two\n", true},
		{"empty tree", "o\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n", true},
		{"no final newline", "o\n7\nWmH8K1T5z6cXdPJDIUPdQMbLKxGUf69lp9PaXLZRmcg=", false},
		{"two lines", "o\n7\n", false},
		{"empty origin", "\n7\nWmH8K1T5z6cXdPJDIUPdQMbLKxGUf69lp9PaXLZRmcg=\n", false},
		{"leading zero", "o\n07\nWmH8K1T5z6cXdPJDIUPdQMbLKxGUf69lp9PaXLZRmcg=\n", false},
		{"plus sign", "o\n+7\nWmH8K1T5z6cXdPJDIUPdQMbLKxGUf69lp9PaXLZRmcg=\n", false},
		{"negative", "o\n-7\nWmH8K1T5z6cXdPJDIUPdQMbLKxGUf69lp9PaXLZRmcg=\n", false},
		{"too big", "o\n9223372036854775808\nWmH8K1T5z6cXdPJDIUPdQMbLKxGUf69lp9PaXLZRmcg=\n", false},
		{"short root", "o\n7\nAAAA\n", false},
		{"bad base64", "o\n7\n!!!!\n", false},
		{"empty extension", specBody + "\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := tlog.ParseCheckpoint([]byte(tc.body))
			if tc.ok != (err == nil) {
				t.Fatalf("err = %v, want ok=%v", err, tc.ok)
			}
			if err != nil {
				if !errors.Is(err, tlog.ErrMalformedCheckpoint) {
					t.Fatalf("error %v is not ErrMalformedCheckpoint", err)
				}
				return
			}
			if got := string(c.Marshal()); got != tc.body {
				t.Fatalf("round trip: %q != %q", got, tc.body)
			}
		})
	}
}

func TestVerifyCheckpoint(t *testing.T) {
	logV, _ := note.NewVerifier(specLogVKey)
	witV, _ := tlog.NewCosignatureVerifier(specWitnessVKey)
	c, n, err := tlog.VerifyCheckpoint([]byte(specCosigned), "example.com/log", []note.Verifier{logV}, witV)
	if err != nil {
		t.Fatal(err)
	}
	if c.Size != 7 || len(n.Sigs) != 2 || !tlog.SignedBy(n, witV) {
		t.Fatalf("got size %d with %d sigs", c.Size, len(n.Sigs))
	}
	ts, err := tlog.CosignatureTimestamp(n.Sigs[1])
	if err != nil || ts != 1700000000 {
		t.Fatalf("timestamp %d, %v", ts, err)
	}
	if _, _, err := tlog.VerifyCheckpoint([]byte(specCosigned), "other", []note.Verifier{logV}); !errors.Is(err, tlog.ErrWrongOrigin) {
		t.Fatalf("wrong origin: %v", err)
	}
	_, otherV, _ := note.GenerateKey(nil, "example.com/log")
	ov, _ := note.NewVerifier(otherV)
	if _, _, err := tlog.VerifyCheckpoint([]byte(specCosigned), "example.com/log", []note.Verifier{ov}); !errors.Is(err, tlog.ErrUnsigned) {
		t.Fatalf("unknown key: %v", err)
	}
	tampered := bytes.Replace([]byte(specCosigned), []byte("uhDyOm4"), []byte("uhDyOm5"), 1)
	if _, _, err := tlog.VerifyCheckpoint(tampered, "example.com/log", []note.Verifier{logV}); !errors.Is(err, tlog.ErrBadSignature) {
		t.Fatalf("bad signature: %v", err)
	}
	if _, _, err := tlog.VerifyCheckpoint([]byte("garbage"), "example.com/log", []note.Verifier{logV}); !errors.Is(err, tlog.ErrMalformedNote) {
		t.Fatalf("garbage: %v", err)
	}
	// A key listed twice is ambiguous, as with note.VerifierList.
	if _, _, err := tlog.VerifyCheckpoint([]byte(specCosigned), "example.com/log", []note.Verifier{logV}, logV); !errors.Is(err, tlog.ErrMalformedNote) {
		t.Fatalf("key listed twice: %v", err)
	}
	// The fast Ed25519 verifier and x/mod's agree on the spec note.
	fastV, err := tlog.NewNoteVerifier(specLogVKey)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := tlog.VerifyCheckpoint([]byte(specCosigned), "example.com/log", []note.Verifier{fastV}, witV); err != nil {
		t.Fatalf("fast verifier: %v", err)
	}
	if _, _, err := tlog.VerifyCheckpoint(tampered, "example.com/log", []note.Verifier{fastV}); !errors.Is(err, tlog.ErrBadSignature) {
		t.Fatalf("fast verifier, bad signature: %v", err)
	}
}

func TestKeyErrors(t *testing.T) {
	for _, k := range []string{"", "a+b+c", "name+0000000g+AQ==", "bad name+00000000+BA==", specLogVKey} {
		if _, err := tlog.NewCosignatureVerifier(k); !errors.Is(err, tlog.ErrBadKey) {
			t.Errorf("NewCosignatureVerifier(%q) = %v", k, err)
		}
	}
	if _, err := tlog.NewCosignatureSigner("PRIVATE+KEY+x+00000000+"+base64.StdEncoding.EncodeToString(append([]byte{4}, seed(0)...)), nil); !errors.Is(err, tlog.ErrBadKey) {
		t.Errorf("mismatched key ID accepted: %v", err)
	}
	if _, _, err := tlog.GenerateCosignerKey(nil, "has space"); !errors.Is(err, tlog.ErrBadKey) {
		t.Errorf("bad name accepted: %v", err)
	}
}

func TestLogID(t *testing.T) {
	// Spec example from c2sp.org/tlog-witness monitoring API.
	if got := tlog.LogID("example.com/behind-the-sofa"); got != "5fd2dc0beb4ce54da5050cf6d5c75248b023abad441c3cecde3976fbe9da4fe4" {
		t.Fatal(got)
	}
}

func FuzzParseCheckpoint(f *testing.F) {
	f.Add([]byte(specBody))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := tlog.ParseCheckpoint(b)
		if err != nil {
			return
		}
		if !bytes.Equal(c.Marshal(), b) {
			t.Fatalf("accepted body does not round-trip: %q", b)
		}
	})
}

func FuzzCosignatureVerifier(f *testing.F) {
	f.Add(specWitnessVKey, []byte(specBody), []byte("sig"))
	f.Fuzz(func(t *testing.T, vkey string, msg, sig []byte) {
		v, err := tlog.NewCosignatureVerifier(vkey)
		if err != nil {
			return
		}
		_ = v.Verify(msg, sig)
	})
}

// TestTrusted: a trusted key's lines are accepted unchecked, the note is
// still parsed strictly, and other keys' lines stay unknown.
func TestTrusted(t *testing.T) {
	logV, _ := note.NewVerifier(specLogVKey)
	witV, _ := tlog.NewCosignatureVerifier(specWitnessVKey)
	tampered := bytes.Replace([]byte(specCosigned), []byte("uhDyOm4"), []byte("uhDyOm5"), 1)
	c, n, err := tlog.VerifyCheckpoint(tampered, "example.com/log", tlog.Trusted(logV))
	if err != nil || c.Size != 7 || len(n.Sigs) != 1 || len(n.UnverifiedSigs) != 1 {
		t.Fatalf("trusted log key: size %d, %v, err %v", c.Size, n, err)
	}
	if _, _, err := tlog.VerifyCheckpoint(tampered, "example.com/log", []note.Verifier{logV}, tlog.Trusted(witV)...); !errors.Is(err, tlog.ErrBadSignature) {
		t.Fatalf("only the witness trusted: %v", err)
	}
	if _, _, err := tlog.VerifyCheckpoint([]byte("garbage"), "example.com/log", tlog.Trusted(logV)); !errors.Is(err, tlog.ErrMalformedNote) {
		t.Fatalf("garbage: %v", err)
	}
}
