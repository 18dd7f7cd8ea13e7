package tlog

import (
	"bytes"

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
