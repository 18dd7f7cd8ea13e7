package tlog_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/vigilnet/vigil/tlog"
)

// Signature lines of the spec vectors, and corrupted twins: the same name
// and key ID, the signature bytes changed.
var (
	specLogLine     = strings.SplitAfter(specCosigned, "\n")[4]
	specWitnessLine = strings.SplitAfter(specCosigned, "\n")[5]
)

func corrupt(t *testing.T, line string) string {
	t.Helper()
	name, b64, _ := strings.Cut(strings.TrimSuffix(strings.TrimPrefix(line, "— "), "\n"), " ")
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		t.Fatal(err)
	}
	raw[len(raw)-1] ^= 1 // keeps the key ID in raw[:4]
	return "— " + name + " " + base64.StdEncoding.EncodeToString(raw) + "\n"
}

// TestVerifyCheckpointEveryKnownLine: every signature line whose name and
// key ID match a known key must verify, not only the first of each key
// (x/mod's note.Open passes over the later ones).
func TestVerifyCheckpointEveryKnownLine(t *testing.T) {
	logV, _ := note.NewVerifier(specLogVKey)
	witV, _ := tlog.NewCosignatureVerifier(specWitnessVKey)
	// A second valid cosignature by the spec witness, with another timestamp.
	signer, err := tlog.NewCosignatureSigner(specWitnessSKey(t), func() time.Time { return time.Unix(1700000600, 0) })
	if err != nil {
		t.Fatal(err)
	}
	sig, err := signer.Sign([]byte(specBody))
	if err != nil {
		t.Fatal(err)
	}
	witnessLine2 := "— witness.example/w1 " + base64.StdEncoding.EncodeToString(append(binaryKeyID(signer.KeyHash()), sig...)) + "\n"
	// Same name, another key ID: an unknown key, ignored.
	otherID := "— example.com/log " + base64.StdEncoding.EncodeToString(append([]byte{0, 0, 0, 1}, make([]byte, 64)...)) + "\n"
	signed := func(lines ...string) []byte { return []byte(specBody + "\n" + strings.Join(lines, "")) }
	withWitness := []note.Verifier{witV}
	for _, tc := range []struct {
		name    string
		msg     []byte
		others  []note.Verifier // known besides the log's key
		wantErr error
		sigs    int
	}{
		{"log then corrupted log line", signed(specLogLine, corrupt(t, specLogLine)), nil, tlog.ErrBadSignature, 0},
		{"corrupted log line then log", signed(corrupt(t, specLogLine), specLogLine), nil, tlog.ErrBadSignature, 0},
		{"log line twice", signed(specLogLine, specLogLine), nil, nil, 1},
		{"log, unknown lines, corrupted log line", signed(specLogLine, otherID, otherID, corrupt(t, specLogLine)), nil, tlog.ErrBadSignature, 0},
		{"corrupted cosignature after a valid one", signed(specLogLine, specWitnessLine, corrupt(t, specWitnessLine)), withWitness, tlog.ErrBadSignature, 0},
		{"corrupted cosignature of an unknown witness", signed(specLogLine, specWitnessLine, corrupt(t, specWitnessLine)), nil, nil, 1},
		{"two valid cosignatures of one witness", signed(specLogLine, specWitnessLine, witnessLine2), withWitness, nil, 2},
		{"same name, other key ID", signed(specLogLine, otherID), nil, nil, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, n, err := tlog.VerifyCheckpoint(tc.msg, "example.com/log", []note.Verifier{logV}, tc.others...)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if err == nil && len(n.Sigs) != tc.sigs {
				t.Fatalf("%d verified signatures, want %d", len(n.Sigs), tc.sigs)
			}
		})
	}
	// The error names the failing line by its position and its key.
	_, _, err = tlog.VerifyCheckpoint(signed(specLogLine, specWitnessLine, corrupt(t, specWitnessLine)), "example.com/log", []note.Verifier{logV}, witV)
	if want := "signature line 3 (witness.example/w1, key ID 20324abe)"; err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("err = %v, want it to name %s", err, want)
	}
	_, _, err = tlog.VerifyCheckpoint(signed(specWitnessLine, corrupt(t, specLogLine)), "example.com/log", []note.Verifier{logV}, witV)
	if want := "signature line 2 (example.com/log, key ID d455c521)"; err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("err = %v, want it to name %s", err, want)
	}
	// Trusted keys' lines stay unchecked, repeated or not.
	msg := signed(specLogLine, corrupt(t, specLogLine))
	if _, _, err := tlog.VerifyCheckpoint(msg, "example.com/log", tlog.Trusted(logV)); err != nil {
		t.Fatalf("trusted log key: %v", err)
	}
}

func binaryKeyID(h uint32) []byte { return []byte{byte(h >> 24), byte(h >> 16), byte(h >> 8), byte(h)} }

// FuzzVerifyCheckpoint: whatever the bytes, a note VerifyCheckpoint accepts
// has every line of a known key verifying.
func FuzzVerifyCheckpoint(f *testing.F) {
	f.Add([]byte(specCosigned))
	logV, _ := note.NewVerifier(specLogVKey)
	witV, _ := tlog.NewCosignatureVerifier(specWitnessVKey)
	known := map[string]note.Verifier{logV.Name(): logV, witV.Name(): witV}
	f.Fuzz(func(t *testing.T, msg []byte) {
		_, _, err := tlog.VerifyCheckpoint(msg, "example.com/log", []note.Verifier{logV}, witV)
		if err != nil {
			return
		}
		i := bytes.LastIndex(msg, []byte("\n\n"))
		text := msg[:i+1]
		for line := range bytes.Lines(msg[i+2:]) {
			name, b64, _ := strings.Cut(strings.TrimSuffix(strings.TrimPrefix(string(line), "— "), "\n"), " ")
			raw, _ := base64.StdEncoding.DecodeString(b64)
			v, ok := known[name]
			if !ok || len(raw) < 5 || v.KeyHash() != uint32(raw[0])<<24|uint32(raw[1])<<16|uint32(raw[2])<<8|uint32(raw[3]) {
				continue
			}
			if !v.Verify(text, raw[4:]) {
				t.Fatalf("accepted a note whose line %q does not verify", line)
			}
		}
	})
}
