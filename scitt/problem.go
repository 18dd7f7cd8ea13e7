package scitt

import (
	"errors"
	"fmt"
)

// Problem is an RFC 9290 Concise Problem Details object.
type Problem struct {
	Title  string `cbor:"-1,keyasint,omitempty"`
	Detail string `cbor:"-2,keyasint,omitempty"`
}

// ProblemContentType is the media type of concise problem details.
const ProblemContentType = "application/concise-problem-details+cbor"

func (p *Problem) Error() string {
	if p.Detail == "" {
		return p.Title
	}
	return p.Title + ": " + p.Detail
}

// MarshalCBOR encodes p with core deterministic encoding.
func (p *Problem) encode() []byte {
	b, err := coreEnc.Marshal(p)
	if err != nil {
		panic(err) // two strings always encode
	}
	return b
}

// ParseProblem decodes concise problem details. Entries other than title and
// detail are ignored, as RFC 9290 allows; title and detail must be text.
func ParseProblem(b []byte) (*Problem, error) {
	var m map[any]any
	if err := strictDec.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("decoding problem details: %w", err)
	}
	p := &Problem{}
	for k, v := range m {
		var dst *string
		switch k {
		case int64(-1):
			dst = &p.Title
		case int64(-2):
			dst = &p.Detail
		default:
			continue
		}
		s, ok := v.(string)
		if !ok {
			return nil, errors.New("decoding problem details: title and detail must be text")
		}
		*dst = s
	}
	return p, nil
}
