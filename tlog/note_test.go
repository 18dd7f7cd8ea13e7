package tlog_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/vigilnet/vigil/tlog"
)

// sigs returns n well-formed signature lines of distinct witness names.
func sigs(n int) []note.Signature {
	out := make([]note.Signature, n)
	for i := range out {
		raw := make([]byte, 4+72) // key hash, timestamp and Ed25519 signature, as a cosignature
		binary.BigEndian.PutUint32(raw, uint32(0x1000+i))
		raw[10] = byte(i)
		out[i] = note.Signature{Name: fmt.Sprintf("witness.example/w%d", i), Hash: uint32(0x1000 + i), Base64: base64.StdEncoding.EncodeToString(raw)}
	}
	return out
}

// TestFormatNote: the same bytes as note.Sign without signers, for the
// log's signature and any number of cosignatures, and the same error for a
// text without its final newline.
func TestFormatNote(t *testing.T) {
	for _, n := range []int{0, 1, 2, 25, 50} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			ss := sigs(n)
			got, err := tlog.FormatNote([]byte(specBody), ss)
			if err != nil {
				t.Fatal(err)
			}
			want, err := note.Sign(&note.Note{Text: specBody, Sigs: ss})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("FormatNote:\n%s\nnote.Sign:\n%s", got, want)
			}
			if cap(got) != len(got) {
				t.Errorf("capacity %d for %d bytes: not sized exactly", cap(got), len(got))
			}
		})
	}
	// The spec's cosigned note, re-encoded from what note.Open returns.
	logV, err := note.NewVerifier(specLogVKey)
	if err != nil {
		t.Fatal(err)
	}
	wV, err := tlog.NewCosignatureVerifier(specWitnessVKey)
	if err != nil {
		t.Fatal(err)
	}
	opened, err := note.Open([]byte(specCosigned), note.VerifierList(logV, wV))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := tlog.FormatNote([]byte(opened.Text), opened.Sigs); err != nil || string(got) != specCosigned {
		t.Errorf("re-encoding the spec's cosigned note: %v\n%s", err, got)
	}
	if _, err := tlog.FormatNote([]byte(specBody[:len(specBody)-1]), nil); !errors.Is(err, tlog.ErrMalformedNote) {
		t.Errorf("text without its final newline: %v, want ErrMalformedNote", err)
	}
}

// BenchmarkFormatNote re-encodes a checkpoint with 50 cosignatures, against
// note.Sign doing the same.
func BenchmarkFormatNote(b *testing.B) {
	ss := sigs(50)
	b.Run("FormatNote", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := tlog.FormatNote([]byte(specBody), ss); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("note.Sign", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := note.Sign(&note.Note{Text: specBody, Sigs: ss}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestSignNote: the same bytes as note.Sign for one or two signers (a
// cosignature/v1 key and a plain note key), over notes with no other
// signature, several, and one by a signer's own key, which the new line
// replaces; the same refusal of a text without its final newline.
func TestSignNote(t *testing.T) {
	skey, vkey, err := tlog.GenerateCosignerKey(rand.Reader, "witness.example/own")
	if err != nil {
		t.Fatal(err)
	}
	own, err := tlog.NewCosignatureVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	cosigner, err := tlog.NewCosignatureSigner(skey, func() time.Time { return time.Unix(1_700_000_000, 0) })
	if err != nil {
		t.Fatal(err)
	}
	nkey, _, err := note.GenerateKey(rand.Reader, "log.example/plain")
	if err != nil {
		t.Fatal(err)
	}
	plain, err := note.NewSigner(nkey)
	if err != nil {
		t.Fatal(err)
	}
	text := []byte("log.example/plain\n42\nWmH8K1T5z6cXdPJDIUPdQMbLKxGUf69lp9PaXLZRmcg=\n")
	ownOld, err := note.Sign(&note.Note{Text: string(text)}, cosigner)
	if err != nil {
		t.Fatal(err)
	}
	opened, err := note.Open(ownOld, note.VerifierList(own))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		sigs    []note.Signature
		signers []note.Signer
	}{
		{"no signatures", nil, []note.Signer{cosigner}},
		{"three others", sigs(3), []note.Signer{cosigner}},
		{"two signers", sigs(2), []note.Signer{cosigner, plain}},
		{"replaces own", append(sigs(1), opened.Sigs...), []note.Signer{cosigner}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want, err := note.Sign(&note.Note{Text: string(text), Sigs: tc.sigs}, tc.signers...)
			if err != nil {
				t.Fatal(err)
			}
			got, err := tlog.SignNote(text, tc.sigs, tc.signers...)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("SignNote:\n%s\nnote.Sign:\n%s", got, want)
			}
		})
	}
	if _, err := tlog.SignNote(text[:len(text)-1], nil, cosigner); !errors.Is(err, tlog.ErrMalformedNote) {
		t.Errorf("text without final newline: err = %v, want ErrMalformedNote", err)
	}
}

func BenchmarkSignNote(b *testing.B) {
	skey, _, err := tlog.GenerateCosignerKey(rand.Reader, "witness.example/own")
	if err != nil {
		b.Fatal(err)
	}
	cosigner, err := tlog.NewCosignatureSigner(skey, nil)
	if err != nil {
		b.Fatal(err)
	}
	text := []byte("log.example/plain\n42\nWmH8K1T5z6cXdPJDIUPdQMbLKxGUf69lp9PaXLZRmcg=\n")
	logSig := sigs(1)
	b.Run("SignNote", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := tlog.SignNote(text, logSig, cosigner); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("note.Sign", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := note.Sign(&note.Note{Text: string(text), Sigs: logSig}, cosigner); err != nil {
				b.Fatal(err)
			}
		}
	})
}
