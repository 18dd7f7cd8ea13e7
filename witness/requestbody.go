package witness

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
)

// The body layout add-checkpoint and sign-subtree share: a first line
// naming the request, hash lines, an empty line, then a signed checkpoint
// note. Errors wrap ErrMalformed (400).

// MaxProofLines is the most consistency-proof lines a request may carry.
// SPEC: clients MUST NOT send more than 63; witnesses answer 400.
const MaxProofLines = 63

// cutRequestBody splits body at its first empty line into the lines before
// it and the checkpoint note after it.
func cutRequestBody(body []byte) (lines [][]byte, cp []byte, err error) {
	// SPEC: split at the first "\n\n": head = first line + hashes, tail = note.
	head, cp, ok := bytes.Cut(body, []byte("\n\n"))
	if !ok {
		return nil, nil, fmt.Errorf("%w: no empty line between the proof and the checkpoint", ErrMalformed)
	}
	return bytes.Split(head, []byte("\n")), cp, nil
}

// parseProofTail decodes the proof lines and checks that a checkpoint
// follows the empty line.
func parseProofTail(proofLines [][]byte, cp []byte) ([][]byte, error) {
	if len(proofLines) > MaxProofLines {
		return nil, fmt.Errorf("%w: %d proof lines, at most %d allowed", ErrMalformed, len(proofLines), MaxProofLines)
	}
	proof := make([][]byte, len(proofLines))
	hashes := make([]byte, 32*len(proofLines)) // one allocation for all
	for i, l := range proofLines {
		h, err := decodeHash(l)
		if err != nil {
			return nil, fmt.Errorf("%w: proof line %d is not a base64 SHA-256 hash", ErrMalformed, i+1)
		}
		proof[i] = hashes[32*i : 32*i+32 : 32*i+32]
		copy(proof[i], h[:])
	}
	if len(cp) == 0 {
		return nil, fmt.Errorf("%w: no checkpoint after the empty line", ErrMalformed)
	}
	return proof, nil
}

// appendProofTail appends the proof lines, the empty line and the
// checkpoint note.
func appendProofTail(b []byte, proof [][]byte, cp []byte) []byte {
	for _, h := range proof {
		b = base64.StdEncoding.AppendEncode(b, h)
		b = append(b, '\n')
	}
	b = append(b, '\n')
	return append(b, cp...)
}

// parseSize parses ASCII decimal without leading zeroes.
func parseSize(b []byte) (uint64, error) {
	n, err := strconv.ParseUint(string(b), 10, 64)
	if err != nil || strconv.FormatUint(n, 10) != string(b) {
		return 0, errors.New("not a decimal size")
	}
	return n, nil
}

// decodeHash decodes a canonical base64 SHA-256 hash. The decoder skips
// '\r' and '\n'; requiring the canonical encoding accepts nothing but a
// base64 hash on a line.
func decodeHash(l []byte) ([32]byte, error) {
	var h [32]byte
	var b [33]byte // 44 characters decode to at most 33 bytes
	if len(l) != 44 {
		return h, errors.New("not a base64 SHA-256 hash")
	}
	if n, err := strictBase64.Decode(b[:], l); err != nil || n != 32 {
		return h, errors.New("not a base64 SHA-256 hash")
	}
	copy(h[:], b[:32])
	var enc [44]byte
	if base64.StdEncoding.Encode(enc[:], h[:]); !bytes.Equal(enc[:], l) {
		return h, errors.New("not a base64 SHA-256 hash")
	}
	return h, nil
}

// strictBase64 is made once: Strict copies the encoding to the heap.
var strictBase64 = base64.StdEncoding.Strict()
