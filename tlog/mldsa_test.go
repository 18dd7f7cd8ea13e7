package tlog_test

import (
	"bufio"
	"bytes"
	"crypto/mldsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/vigilnet/vigil/tlog"
)

// subtreeVector is tlog/testdata/subtree-v1-vector.txt, the
// c2sp.org/tlog-cosignature ML-DSA-44 cosigned_message vector.
type subtreeVector struct {
	body      string
	name      string
	timestamp uint64
	message   []byte
}

func readSubtreeVector(t *testing.T) subtreeVector {
	t.Helper()
	f, err := os.Open("testdata/subtree-v1-vector.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var v subtreeVector
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<16)
	for sc.Scan() {
		k, val, _ := strings.Cut(sc.Text(), " ")
		switch k {
		case "checkpoint":
			v.body += val + "\n"
		case "name":
			v.name = val
		case "timestamp":
			if v.timestamp, err = strconv.ParseUint(val, 10, 64); err != nil {
				t.Fatal(err)
			}
		case "message":
			if v.message, err = hex.DecodeString(val); err != nil {
				t.Fatal(err)
			}
		}
	}
	if v.body == "" || v.name == "" || len(v.message) == 0 {
		t.Fatal("incomplete vector file")
	}
	return v
}

// mldsaTestKey is a deterministic ML-DSA-44 key (seed 0x40..0x5f) named like
// the spec's witness, so its messages are the spec vector's.
func mldsaTestKey(t testing.TB, name string, now time.Time) (*tlog.MLDSASigner, string) {
	t.Helper()
	skey, vkey, err := tlog.MLDSACosignerKeyFromSeed(name, seed(0x40))
	if err != nil {
		t.Fatal(err)
	}
	s, err := tlog.NewMLDSASigner(skey, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	return s, vkey
}

func TestSubtreeMessageSpecVector(t *testing.T) {
	v := readSubtreeVector(t)
	c, err := tlog.ParseCheckpoint([]byte(v.body))
	if err != nil {
		t.Fatal(err)
	}
	got, err := tlog.SubtreeMessage(v.name, v.timestamp, c.Origin, 0, c.Size, c.Root)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, v.message) {
		t.Fatalf("cosigned_message:\n got %x\nwant %x", got, v.message)
	}
}

// TestMLDSACosignatureStdlib checks a cosignature from MLDSASigner with
// crypto/mldsa directly, over the spec vector's message bytes: the key ID
// layout, the timestamp and the signature are all checked without this
// package's verifier.
func TestMLDSACosignatureStdlib(t *testing.T) {
	v := readSubtreeVector(t)
	signer, vkey := mldsaTestKey(t, v.name, time.Unix(int64(v.timestamp), 0))
	sig, err := signer.Sign([]byte(v.body))
	if err != nil {
		t.Fatal(err)
	}
	if len(sig) != 8+mldsa.MLDSA44SignatureSize {
		t.Fatalf("signature is %d bytes, want 2428", len(sig))
	}
	if ts := binary.BigEndian.Uint64(sig); ts != v.timestamp {
		t.Fatalf("timestamp %d, want %d", ts, v.timestamp)
	}
	// vkey = name+hex(keyID)+base64(0x06 || pk); keyID from SHA-256 by hand.
	f := strings.SplitN(vkey, "+", 3)
	key, err := base64.StdEncoding.DecodeString(f[2])
	if err != nil || len(key) != 1+mldsa.MLDSA44PublicKeySize || key[0] != 0x06 {
		t.Fatalf("vkey key material: %d bytes, type %x", len(key), key[0])
	}
	h := sha256.Sum256(append([]byte(v.name+"\n"), key...))
	if f[0] != v.name || f[1] != hex.EncodeToString(h[:4]) {
		t.Fatalf("vkey %s+%s, want %s+%x", f[0], f[1], v.name, h[:4])
	}
	if signer.KeyHash() != binary.BigEndian.Uint32(h[:4]) {
		t.Fatalf("KeyHash %08x, want %x", signer.KeyHash(), h[:4])
	}
	pk, err := mldsa.NewPublicKey(mldsa.MLDSA44(), key[1:])
	if err != nil {
		t.Fatal(err)
	}
	if err := mldsa.Verify(pk, v.message, sig[8:], nil); err != nil {
		t.Fatalf("crypto/mldsa rejects the cosignature over the spec message: %v", err)
	}
	// The reverse: a signature made with crypto/mldsa over the spec bytes
	// verifies with this package's verifier.
	priv, err := mldsa.NewPrivateKey(mldsa.MLDSA44(), seed(0x40))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := priv.Sign(nil, v.message, nil)
	if err != nil {
		t.Fatal(err)
	}
	ours, err := tlog.NewWitnessVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	theirs := append(binary.BigEndian.AppendUint64(nil, v.timestamp), raw...)
	if !ours.Verify([]byte(v.body), theirs) {
		t.Fatal("verifier rejects crypto/mldsa's signature of the spec message")
	}
	// Extension lines are not signed: the same signature verifies over the
	// body with an extension line added.
	if !ours.Verify([]byte(v.body+"ext line\n"), theirs) {
		t.Fatal("extension line changed the signed message")
	}
}

func TestMLDSAVerifierRejects(t *testing.T) {
	v := readSubtreeVector(t)
	signer, vkey := mldsaTestKey(t, v.name, time.Unix(int64(v.timestamp), 0))
	ver, err := tlog.NewMLDSAVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	good, err := signer.Sign([]byte(v.body))
	if err != nil {
		t.Fatal(err)
	}
	zero, err := signer.SignSubtree("example.com/log", 0, 7, mustCheckpoint(t, v.body).Root)
	if err != nil {
		t.Fatal(err)
	}
	otherSize := strings.Replace(v.body, "\n7\n", "\n8\n", 1)
	otherOrigin := strings.Replace(v.body, "example.com/log", "example.com/other", 1)
	for _, tc := range []struct {
		name string
		body string
		sig  []byte
	}{
		{"flipped signature bit", v.body, flip(good, 100)},
		{"flipped timestamp", v.body, flip(good, 7)},
		{"other size", otherSize, good},
		{"other origin", otherOrigin, good},
		{"short", v.body, good[:len(good)-1]},
		{"long", v.body, append(bytes.Clone(good), 0)},
		// SPEC: a checkpoint cosignature's timestamp MUST NOT be zero.
		{"timestamp zero on a checkpoint", v.body, zero},
		{"body not a checkpoint", "not a checkpoint\n", good},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if ver.Verify([]byte(tc.body), tc.sig) {
				t.Fatal("accepted")
			}
		})
	}
	if !ver.Verify([]byte(v.body), good) {
		t.Fatal("good signature rejected")
	}
}

func TestMLDSASubtree(t *testing.T) {
	signer, vkey := mldsaTestKey(t, "witness.test/m", time.Unix(1700000000, 0))
	ver, err := tlog.NewMLDSAVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256([]byte("subtree"))
	sig, err := signer.SignSubtree("example.com/log", 8, 16, h)
	if err != nil {
		t.Fatal(err)
	}
	if ts := binary.BigEndian.Uint64(sig); ts != 0 {
		t.Fatalf("subtree timestamp %d, want 0", ts)
	}
	if !ver.VerifySubtree("example.com/log", 8, 16, h, sig) {
		t.Fatal("subtree cosignature rejected")
	}
	for _, bad := range []struct{ start, end uint64 }{{0, 16}, {8, 15}, {9, 16}} {
		if ver.VerifySubtree("example.com/log", bad.start, bad.end, h, sig) {
			t.Fatalf("accepted for [%d, %d)", bad.start, bad.end)
		}
	}
	// A checkpoint cosignature (non-zero timestamp) is not a subtree one.
	cp, err := signer.Sign([]byte("example.com/log\n16\n" + base64.StdEncoding.EncodeToString(h[:]) + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	if ver.VerifySubtree("example.com/log", 0, 16, h, cp) {
		t.Fatal("timestamped signature accepted as a subtree cosignature")
	}
	line, err := signer.SubtreeLine("example.com/log", 8, 16, h)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(line, []byte("— witness.test/m ")) || !bytes.HasSuffix(line, []byte("\n")) {
		t.Fatalf("line %q", line[:40])
	}
	if _, err := tlog.SubtreeMessage("n", 0, "o", 9, 8, h); !errors.Is(err, tlog.ErrSubtreeMessage) {
		t.Fatalf("start > end: %v", err)
	}
	if _, err := tlog.SubtreeMessage(strings.Repeat("n", 256), 0, "o", 0, 8, h); !errors.Is(err, tlog.ErrSubtreeMessage) {
		t.Fatalf("256-byte name: %v", err)
	}
}

// TestVerifyCheckpointBothTypes opens a note carrying a log signature, an
// Ed25519 and an ML-DSA-44 cosignature with verifiers from the one generic
// constructor.
func TestVerifyCheckpointBothTypes(t *testing.T) {
	now := time.Unix(1700000000, 0)
	mSigner, mVKey := mldsaTestKey(t, "witness.example/w1", now)
	eSigner, err := tlog.NewCosignatureSigner(specWitnessSKey(t), func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	logV, err := tlog.NewNoteVerifier(specLogVKey)
	if err != nil {
		t.Fatal(err)
	}
	n, err := note.Open([]byte(specCosigned), note.VerifierList(logV))
	if err != nil {
		t.Fatal(err)
	}
	n.UnverifiedSigs = nil
	both, err := note.Sign(n, eSigner, mSigner)
	if err != nil {
		t.Fatal(err)
	}
	var ws []note.Verifier
	for _, vk := range []string{specWitnessVKey, mVKey} {
		v, err := tlog.NewWitnessVerifier(vk)
		if err != nil {
			t.Fatal(err)
		}
		ws = append(ws, v)
	}
	_, out, err := tlog.VerifyCheckpoint(both, "example.com/log", []note.Verifier{logV}, ws...)
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Sigs) != 3 {
		t.Fatalf("%d verified signatures, want 3", len(out.Sigs))
	}
	for _, s := range out.Sigs[1:] {
		if ts, err := tlog.CosignatureTimestamp(s); err != nil || ts != 1700000000 {
			t.Fatalf("%s: timestamp %d, %v", s.Name, ts, err)
		}
	}
	// A corrupted ML-DSA line from the known key rejects the note.
	i := bytes.LastIndex(both, []byte("— witness.example/w1 "))
	bad := bytes.Clone(both)
	// A different base64 letter: still base64, another signature.
	if bad[i+200] == 'A' {
		bad[i+200] = 'B'
	} else {
		bad[i+200] = 'A'
	}
	if _, _, err := tlog.VerifyCheckpoint(bad, "example.com/log", []note.Verifier{logV}, ws...); !errors.Is(err, tlog.ErrBadSignature) {
		t.Fatalf("corrupted ML-DSA cosignature: %v, want ErrBadSignature", err)
	}
}

func TestWitnessVerifierKeys(t *testing.T) {
	_, mVKey := mldsaTestKey(t, "witness.test/k", time.Now())
	f := strings.SplitN(mVKey, "+", 3)
	key, _ := base64.StdEncoding.DecodeString(f[2])
	retype := func(b byte) string {
		k := append([]byte{b}, key[1:]...)
		return f[0] + "+" + f[1] + "+" + base64.StdEncoding.EncodeToString(k)
	}
	for _, tc := range []struct {
		name, vkey string
		ok         bool
	}{
		{"ml-dsa", mVKey, true},
		{"ed25519 cosignature", specWitnessVKey, true},
		{"log key type 0x01", specLogVKey, false},
		{"ml-dsa key ID wrong", f[0] + "+00000000+" + f[2], false},
		{"ml-dsa key under type 0x04", retype(0x04), false},
		{"ml-dsa type, truncated key", f[0] + "+" + f[1] + "+" + base64.StdEncoding.EncodeToString(key[:100]), false},
		{"unknown type", retype(0x07), false},
		{"garbage", "not a key", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tlog.NewWitnessVerifier(tc.vkey)
			if (err == nil) != tc.ok {
				t.Fatalf("err = %v, want ok=%v", err, tc.ok)
			}
			if err != nil && !errors.Is(err, tlog.ErrBadKey) {
				t.Fatalf("error %v does not wrap ErrBadKey", err)
			}
		})
	}
}

func mustCheckpoint(t *testing.T, body string) tlog.Checkpoint {
	t.Helper()
	c, err := tlog.ParseCheckpoint([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func flip(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 1
	return c
}
