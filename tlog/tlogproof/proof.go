// Package tlogproof reads, writes and verifies C2SP tlog-proof@v1 files
// (c2sp.org/tlog-proof): an entry's index and inclusion proof with the
// checkpoint, log signature and witness cosignatures it is proved against,
// which anyone can check offline against a witness policy. Files are stored
// with the extension FileExt.
package tlogproof

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
)

// Header is the first line of every proof, without its newline.
const Header = "c2sp.org/tlog-proof@v1"

// FileExt is the extension proofs are stored with.
// SPEC: "Proofs SHOULD be stored with file extension .tlog-proof".
const FileExt = ".tlog-proof"

// MaxProofHashes bounds the inclusion proof: an RFC 6962 proof for a tree
// of fewer than 2^63 leaves has at most 63 hashes.
const MaxProofHashes = 63

// MaxSize bounds a proof file. The spec sets no limit; this one leaves room
// for the extra data and a checkpoint with dozens of post-quantum
// cosignature lines (about 3.3 KB each).
const MaxSize = 1 << 20

// ErrMalformed reports bytes that are not a tlog-proof@v1.
var ErrMalformed = errors.New("malformed tlog-proof")

// Proof is a parsed tlog-proof.
type Proof struct {
	// Extra is the optional opaque extra data; nil when the line is absent.
	// It is not authenticated: never trust it implicitly.
	Extra []byte
	// Index is the zero-based index of the entry in the log.
	Index uint64
	// Hashes is the RFC 6962 inclusion proof, the leaf's sibling first.
	Hashes [][32]byte
	// Checkpoint is the signed checkpoint note, verbatim, with its
	// signatures and cosignatures.
	Checkpoint []byte
}

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// Parse reads a proof strictly: Marshal of the result reproduces b byte for
// byte. It checks the layout only; Verify checks what it proves.
func Parse(b []byte) (*Proof, error) {
	if len(b) > MaxSize {
		return nil, malformed("%d bytes, limit %d", len(b), MaxSize)
	}
	rest := b
	line := func() ([]byte, bool) {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			return nil, false
		}
		l := rest[:i]
		rest = rest[i+1:]
		return l, true
	}
	// SPEC: "The first line MUST be the string c2sp.org/tlog-proof@v1."
	l, ok := line()
	if !ok || string(l) != Header {
		return nil, malformed("first line is not %q", Header)
	}
	p := &Proof{}
	if l, ok = line(); !ok {
		return nil, malformed("missing index line")
	}
	// SPEC: the second line MAY be "extra" SP base64(extra data).
	if data, isExtra := bytes.CutPrefix(l, []byte("extra ")); isExtra {
		if len(data) == 0 {
			return nil, malformed("empty extra line")
		}
		x, err := decodeCanonical(data)
		if err != nil {
			return nil, malformed("extra data: %v", err)
		}
		p.Extra = x
		if l, ok = line(); !ok {
			return nil, malformed("missing index line")
		}
	}
	// SPEC: the next line MUST be "index" SP decimal, no leading zeroes.
	n, isIndex := bytes.CutPrefix(l, []byte("index "))
	if !isIndex {
		return nil, malformed("line %q is not an index line", trunc(l))
	}
	idx, err := strconv.ParseUint(string(n), 10, 64)
	if err != nil || strconv.FormatUint(idx, 10) != string(n) {
		return nil, malformed("index %q is not a decimal without leading zeroes", trunc(n))
	}
	p.Index = idx
	// SPEC: zero or more non-empty lines, each a base64 SHA-256 hash, then
	// an empty line. The proof ends at the first empty line; the note
	// after it has an empty line of its own.
	for {
		l, ok = line()
		if !ok {
			return nil, malformed("no empty line before the checkpoint")
		}
		if len(l) == 0 {
			break
		}
		if len(p.Hashes) == MaxProofHashes {
			return nil, malformed("more than %d inclusion proof hashes", MaxProofHashes)
		}
		h, err := decodeCanonical(l)
		if err != nil || len(h) != 32 {
			return nil, malformed("inclusion proof line %d is not base64 of 32 bytes", len(p.Hashes)+1)
		}
		p.Hashes = append(p.Hashes, [32]byte(h))
	}
	// SPEC: the checkpoint follows verbatim (tlog-checkpoint): a signed
	// note, which ends in a newline.
	if len(rest) == 0 {
		return nil, malformed("no checkpoint")
	}
	if rest[len(rest)-1] != '\n' {
		return nil, malformed("checkpoint does not end with a newline")
	}
	if !bytes.Contains(rest, []byte("\n\n")) {
		return nil, malformed("checkpoint has no signature block")
	}
	p.Checkpoint = bytes.Clone(rest)
	return p, nil
}

// decodeCanonical decodes standard padded base64 (RFC 4648 §4) and rejects
// any other spelling of the same bytes: the decoder skips '\r' and '\n',
// which a line-based format must not let through.
func decodeCanonical(s []byte) ([]byte, error) {
	b, err := base64.StdEncoding.Strict().DecodeString(string(s))
	if err != nil {
		return nil, err
	}
	if base64.StdEncoding.EncodeToString(b) != string(s) {
		return nil, errors.New("not canonical base64")
	}
	return b, nil
}

func trunc(b []byte) string {
	if len(b) > 40 {
		return string(b[:40]) + "..."
	}
	return string(b)
}

// Marshal encodes p. The extra line is written when Extra is not empty.
func (p *Proof) Marshal() []byte {
	var b bytes.Buffer
	b.Grow(len(Header) + 32 + len(p.Extra)*4/3 + 45*len(p.Hashes) + len(p.Checkpoint) + 16)
	b.WriteString(Header + "\n")
	if len(p.Extra) > 0 {
		b.WriteString("extra ")
		b.WriteString(base64.StdEncoding.EncodeToString(p.Extra))
		b.WriteByte('\n')
	}
	b.WriteString("index ")
	b.WriteString(strconv.FormatUint(p.Index, 10))
	b.WriteByte('\n')
	for _, h := range p.Hashes {
		b.WriteString(base64.StdEncoding.EncodeToString(h[:]))
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	b.Write(p.Checkpoint)
	return b.Bytes()
}
