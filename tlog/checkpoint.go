package tlog

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
)

// MaxCheckpointBody caps the checkpoint text a parser accepts (as torchwood does).
const MaxCheckpointBody = 1 << 20

// ErrMalformedCheckpoint is returned (wrapped) for a checkpoint body that does
// not follow c2sp.org/tlog-checkpoint.
var ErrMalformedCheckpoint = errors.New("malformed checkpoint")

// EmptyRoot is the RFC 6962 root of the empty tree, SHA-256("").
var EmptyRoot = sha256.Sum256(nil)

// Checkpoint is a parsed checkpoint body (the signed note's text).
type Checkpoint struct {
	Origin string
	Size   uint64
	Root   [32]byte
	// Extensions holds any extension lines verbatim, each ending in "\n".
	Extensions string
}

// ParseCheckpoint parses a checkpoint body strictly: re-serialising the result
// reproduces text byte for byte.
func ParseCheckpoint(text []byte) (Checkpoint, error) {
	var c Checkpoint
	if len(text) > MaxCheckpointBody {
		return c, fmt.Errorf("%w: body is %d bytes, limit %d", ErrMalformedCheckpoint, len(text), MaxCheckpointBody)
	}
	// SPEC: the body has at least three lines and always ends with "\n".
	if len(text) == 0 || text[len(text)-1] != '\n' {
		return c, fmt.Errorf("%w: body does not end with a newline", ErrMalformedCheckpoint)
	}
	var lines [3][]byte
	rest := text
	for i := range lines {
		j := bytes.IndexByte(rest, '\n')
		if j < 0 {
			return c, fmt.Errorf("%w: fewer than three lines", ErrMalformedCheckpoint)
		}
		lines[i], rest = rest[:j], rest[j+1:]
	}
	if len(lines[0]) == 0 {
		return c, fmt.Errorf("%w: empty origin line", ErrMalformedCheckpoint)
	}
	c.Origin = string(lines[0])
	// SPEC: size is ASCII decimal with no leading zeroes; it must round-trip.
	size, ok := parseSize(lines[1])
	if !ok {
		return c, fmt.Errorf("%w: bad tree size %q", ErrMalformedCheckpoint, lines[1])
	}
	c.Size = size
	var root [33]byte // 44 base64 characters decode to at most 33 bytes
	if len(lines[2]) != 44 {
		return c, fmt.Errorf("%w: root hash is not base64 of 32 bytes", ErrMalformedCheckpoint)
	}
	if n, err := strictBase64.Decode(root[:], lines[2]); err != nil || n != 32 {
		return c, fmt.Errorf("%w: root hash is not base64 of 32 bytes", ErrMalformedCheckpoint)
	}
	copy(c.Root[:], root[:32])
	var enc [44]byte
	if base64.StdEncoding.Encode(enc[:], c.Root[:]); !bytes.Equal(enc[:], lines[2]) {
		return c, fmt.Errorf("%w: root hash is not canonical base64", ErrMalformedCheckpoint)
	}
	// SPEC: every extension line is non-empty.
	for r := rest; len(r) > 0; {
		i := bytes.IndexByte(r, '\n')
		if i <= 0 {
			return c, fmt.Errorf("%w: empty extension line", ErrMalformedCheckpoint)
		}
		r = r[i+1:]
	}
	c.Extensions = string(rest)
	return c, nil
}

// strictBase64 is made once: Strict copies the encoding to the heap.
var strictBase64 = base64.StdEncoding.Strict()

// parseSize parses a tree size: ASCII decimal, no sign, no leading zero,
// at most 2^63-1 (what strconv.ParseUint with a round-trip check accepts,
// without its allocations).
func parseSize(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 19 || b[0] == '0' && len(b) > 1 {
		return 0, false
	}
	var n uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	return n, n <= 1<<63-1
}

// Marshal returns the canonical checkpoint body.
func (c Checkpoint) Marshal() []byte {
	b := make([]byte, 0, len(c.Origin)+24+45+len(c.Extensions))
	b = append(b, c.Origin...)
	b = append(b, '\n')
	b = strconv.AppendUint(b, c.Size, 10)
	b = append(b, '\n')
	b = base64.StdEncoding.AppendEncode(b, c.Root[:])
	b = append(b, '\n')
	return append(b, c.Extensions...)
}

// LogID is the lowercase hex SHA-256 of an origin line: the log's identifier
// in Vigil's API and the C2SP tlog-witness monitoring path element.
func LogID(origin string) string {
	h := sha256.Sum256([]byte(origin))
	return hex.EncodeToString(h[:])
}

// OriginOf returns the first line of a signed note without parsing or
// verifying anything else, so a caller can pick the keys to verify it with.
func OriginOf(msg []byte) (string, bool) {
	i := bytes.IndexByte(msg, '\n')
	if i <= 0 {
		return "", false
	}
	return string(msg[:i]), true
}
