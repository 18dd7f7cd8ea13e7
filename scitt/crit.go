package scitt

import (
	"errors"
	"fmt"

	"github.com/veraison/go-cose"
)

// ErrUnknownCritical reports a statement whose crit header (label 2) lists a
// label the service does not understand.
var ErrUnknownCritical = errors.New("unknown critical header")

// understoodLabels are the protected header labels the service processes
// when it registers a statement; only these may be listed as critical. typ
// (16) is not among them: the service does not act on it.
var understoodLabels = map[int64]string{
	labelAlg:                 "alg",
	labelCrit:                "crit",
	labelContentType:         "content type",
	labelKID:                 "kid",
	labelCWTClaims:           "CWT claims",
	labelX5Chain:             "x5chain",
	labelX5T:                 "x5t",
	labelPayloadHashAlg:      "payload hash alg",
	labelPreimageContentType: "preimage content type",
	labelPayloadLocation:     "payload location",
}

// checkCrit enforces RFC 9052 §3.1 on a protected header.
//
// SPEC: crit is a non-empty array of labels (int or tstr), each present in
// the protected header; a receiver MUST reject a message whose crit lists a
// label it does not understand.
func checkCrit(p cose.ProtectedHeader) error {
	v, ok := p[labelCrit]
	if !ok {
		return nil
	}
	labels, ok := v.([]any)
	if !ok || len(labels) == 0 {
		return malformed("crit (2) must be a non-empty array of labels")
	}
	for _, l := range labels {
		var key any
		switch l := l.(type) {
		case int64:
			key = l
		case uint64:
			key = l
		case string:
			key = l
		default:
			return malformed("crit (2) holds a %T, want int or tstr labels", l)
		}
		if _, present := p[key]; !present {
			return malformed("crit (2) lists label %v, which is absent from the protected header", l)
		}
		n, isInt := key.(int64)
		if _, known := understoodLabels[n]; !isInt || !known {
			return fmt.Errorf("%w: label %v is critical but not understood by this service (RFC 9052 §3.1)", ErrUnknownCritical, labelString(l))
		}
	}
	return nil
}

func labelString(l any) string {
	if s, ok := l.(string); ok {
		return fmt.Sprintf("%q", s)
	}
	return fmt.Sprint(l)
}
