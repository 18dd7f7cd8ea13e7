package witness

import (
	"bytes"
	"fmt"
	"strconv"
)

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
	lines, note, err := cutRequestBody(body)
	if err != nil {
		return nil, err
	}
	oldLine, ok := bytes.CutPrefix(lines[0], []byte("old "))
	if !ok {
		return nil, fmt.Errorf("%w: first line is not \"old <size>\"", ErrMalformed)
	}
	old, err := parseSize(oldLine)
	if err != nil {
		return nil, fmt.Errorf("%w: bad old size %q", ErrMalformed, oldLine)
	}
	proof, err := parseProofTail(lines[1:], note)
	if err != nil {
		return nil, err
	}
	return &AddCheckpointRequest{OldSize: old, Proof: proof, Checkpoint: note}, nil
}

// Marshal encodes the request as an add-checkpoint body.
func (r *AddCheckpointRequest) Marshal() []byte {
	b := make([]byte, 0, 32+len(r.Proof)*45+len(r.Checkpoint))
	b = append(b, "old "...)
	b = strconv.AppendUint(b, r.OldSize, 10)
	b = append(b, '\n')
	return appendProofTail(b, r.Proof, r.Checkpoint)
}
