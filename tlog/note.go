package tlog

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"fmt"

	"golang.org/x/mod/sumdb/note"
)

// FormatNote encodes a signed note: text, which must end in a newline, a
// blank line, and a line per signature in the order given. For signatures
// already checked (the Sigs of a note that note.Open returned) it writes
// what note.Sign writes without signers, in one allocation: note.Sign checks
// every line again, decoding each signature's base64, and grows its buffer
// as it goes. Nodes re-encode notes each time they merge cosignatures, with
// up to one line per roster witness.
func FormatNote(text []byte, sigs []note.Signature) ([]byte, error) {
	if !bytes.HasSuffix(text, []byte("\n")) {
		return nil, ErrMalformedNote
	}
	const dash = "— "
	n := len(text) + 1
	for _, s := range sigs {
		n += len(dash) + len(s.Name) + 1 + len(s.Base64) + 1
	}
	b := make([]byte, 0, n)
	b = append(b, text...)
	b = append(b, '\n')
	for _, s := range sigs {
		b = append(b, dash...)
		b = append(b, s.Name...)
		b = append(b, ' ')
		b = append(b, s.Base64...)
		b = append(b, '\n')
	}
	return b, nil
}

// SignNote is note.Sign(&note.Note{Text: string(text), Sigs: sigs},
// signers...) for sigs already checked (the Sigs of a note that note.Open
// returned), byte for byte (tested): text, a blank line, the signatures of
// sigs whose key is not one of the signers', then one line per signer. It
// signs text in place and writes the note in one allocation, where
// note.Sign copies the text and grows two buffers line by line: the
// witness signs one note per add-checkpoint.
func SignNote(text []byte, sigs []note.Signature, signers ...note.Signer) ([]byte, error) {
	if !bytes.HasSuffix(text, []byte("\n")) {
		return nil, ErrMalformedNote
	}
	const dash = "— "
	type line struct {
		name string
		sig  []byte // key hash, then the signature
	}
	lines := make([]line, len(signers))
	n := len(text) + 1
	for i, s := range signers {
		name := s.Name()
		if !validKeyName(name) {
			return nil, fmt.Errorf("%w: invalid signer name %q", ErrBadKey, name)
		}
		sig, err := s.Sign(text)
		if err != nil {
			return nil, err
		}
		lines[i] = line{name, binary.BigEndian.AppendUint32(make([]byte, 0, 4+len(sig)), s.KeyHash())}
		lines[i].sig = append(lines[i].sig, sig...)
		n += len(dash) + len(name) + 1 + base64.StdEncoding.EncodedLen(len(lines[i].sig)) + 1
	}
	replaced := func(s note.Signature) bool {
		for _, k := range signers {
			if s.Name == k.Name() && s.Hash == k.KeyHash() {
				return true
			}
		}
		return false
	}
	for _, s := range sigs {
		if !replaced(s) {
			n += len(dash) + len(s.Name) + 1 + len(s.Base64) + 1
		}
	}
	b := make([]byte, 0, n)
	b = append(b, text...)
	b = append(b, '\n')
	for _, s := range sigs {
		if replaced(s) {
			continue
		}
		b = append(b, dash...)
		b = append(b, s.Name...)
		b = append(b, ' ')
		b = append(b, s.Base64...)
		b = append(b, '\n')
	}
	for _, l := range lines {
		b = append(b, dash...)
		b = append(b, l.name...)
		b = append(b, ' ')
		b = base64.StdEncoding.AppendEncode(b, l.sig)
		b = append(b, '\n')
	}
	return b, nil
}
