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
	lines := bytes.SplitN(text, []byte("\n"), 4)
	if len(lines) < 4 {
		return c, fmt.Errorf("%w: fewer than three lines", ErrMalformedCheckpoint)
	}
	if len(lines[0]) == 0 {
		return c, fmt.Errorf("%w: empty origin line", ErrMalformedCheckpoint)
	}
	c.Origin = string(lines[0])
	// SPEC: size is ASCII decimal with no leading zeroes; it must round-trip.
	size, err := strconv.ParseUint(string(lines[1]), 10, 64)
	if err != nil || strconv.FormatUint(size, 10) != string(lines[1]) || size > 1<<63-1 {
		return c, fmt.Errorf("%w: bad tree size %q", ErrMalformedCheckpoint, lines[1])
	}
	c.Size = size
	root, err := base64.StdEncoding.Strict().DecodeString(string(lines[2]))
	if err != nil || len(root) != 32 {
		return c, fmt.Errorf("%w: root hash is not base64 of 32 bytes", ErrMalformedCheckpoint)
	}
	copy(c.Root[:], root)
	if base64.StdEncoding.EncodeToString(root) != string(lines[2]) {
		return c, fmt.Errorf("%w: root hash is not canonical base64", ErrMalformedCheckpoint)
	}
	// SPEC: every extension line is non-empty.
	rest := lines[3]
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
