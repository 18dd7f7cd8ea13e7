package witness

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"strconv"
)

// MaxProofLines is the most consistency-proof lines a request may carry.
// SPEC: clients MUST NOT send more than 63; witnesses answer 400.
const MaxProofLines = 63

// AddCheckpointRequest is a parsed C2SP tlog-witness add-checkpoint body.
type AddCheckpointRequest struct {
	// OldSize is the size of the checkpoint the client believes the witness
	// last cosigned (0 if none).
	OldSize uint64
	// Proof is the RFC 6962 consistency proof from OldSize to the new size.
	Proof [][]byte
	// Checkpoint is the signed note, with all its signature lines.
	Checkpoint []byte
}

// ParseAddCheckpointRequest parses an add-checkpoint body:
//
//	old <size>
//	<base64 hash>      (0..63 lines)
//	<empty line>
//	<signed checkpoint note>
//
// Errors wrap ErrMalformed.
func ParseAddCheckpointRequest(body []byte) (*AddCheckpointRequest, error) {
	// SPEC: split at the first "\n\n": head = old line + proof, tail = note.
	head, note, ok := bytes.Cut(body, []byte("\n\n"))
	if !ok {
		return nil, fmt.Errorf("%w: no empty line between the proof and the checkpoint", ErrMalformed)
	}
	lines := bytes.Split(head, []byte("\n"))
	oldLine, ok := bytes.CutPrefix(lines[0], []byte("old "))
	if !ok {
		return nil, fmt.Errorf("%w: first line is not \"old <size>\"", ErrMalformed)
	}
	old, err := strconv.ParseUint(string(oldLine), 10, 64)
	if err != nil || strconv.FormatUint(old, 10) != string(oldLine) {
		return nil, fmt.Errorf("%w: bad old size %q", ErrMalformed, oldLine)
	}
	proofLines := lines[1:]
	if len(proofLines) > MaxProofLines {
		return nil, fmt.Errorf("%w: %d proof lines, at most %d allowed", ErrMalformed, len(proofLines), MaxProofLines)
	}
	proof := make([][]byte, len(proofLines))
	for i, l := range proofLines {
		// The decoder skips '\r' and '\n'; require the canonical encoding so
		// that nothing but a base64 hash is accepted on a proof line.
		h, err := base64.StdEncoding.Strict().DecodeString(string(l))
		if err != nil || len(h) != 32 || base64.StdEncoding.EncodeToString(h) != string(l) {
			return nil, fmt.Errorf("%w: proof line %d is not a base64 SHA-256 hash", ErrMalformed, i+1)
		}
		proof[i] = h
	}
	if len(note) == 0 {
		return nil, fmt.Errorf("%w: no checkpoint after the empty line", ErrMalformed)
	}
	return &AddCheckpointRequest{OldSize: old, Proof: proof, Checkpoint: note}, nil
}

// Marshal encodes the request as an add-checkpoint body.
func (r *AddCheckpointRequest) Marshal() []byte {
	b := make([]byte, 0, 32+len(r.Proof)*45+len(r.Checkpoint))
	b = append(b, "old "...)
	b = strconv.AppendUint(b, r.OldSize, 10)
	b = append(b, '\n')
	for _, h := range r.Proof {
		b = base64.StdEncoding.AppendEncode(b, h)
		b = append(b, '\n')
	}
	b = append(b, '\n')
	return append(b, r.Checkpoint...)
}
