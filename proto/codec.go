// Package proto holds Vigil's wire formats: the protobuf schemas of the gossip
// messages (vigil.proto), their generated Go code, and codecs that bound sizes
// before and after decoding. Regenerate with `make proto`.
//
// The codecs check shape only (sizes, counts, required fields); signatures are
// checked by the gossip validators and by package gossip/evidence.
package proto

import (
	"errors"
	"fmt"

	gproto "google.golang.org/protobuf/proto"
)

// Size bounds. A checkpoint note with a few dozen Ed25519 cosignatures is a
// few KiB; an ML-DSA-44 cosignature line is ~3.3 KB of base64, and a witness
// may send both kinds.
const (
	// MaxNoteSize bounds one signed checkpoint note: tlog.MaxNoteBytes
	// (128 KiB), room for 32 ML-DSA-44 and 32 Ed25519 cosignatures beside
	// the log's signature (c2sp.org/signed-note: verifiers accept at least
	// 16 signatures and budget for post-quantum sizes).
	MaxNoteSize = 128 << 10
	// MaxObserverLen bounds the observer name.
	MaxObserverLen = 256
	// MaxSightingSize bounds an encoded Sighting.
	MaxSightingSize = MaxNoteSize + 1<<10
	// MaxProofHashes bounds a consistency proof (a proof between two trees of
	// at most 2^63 leaves has at most 126 hashes; add one for the explicit
	// subtree root).
	MaxProofHashes = 127
	// MaxEvidenceSize bounds an encoded Evidence.
	MaxEvidenceSize = 2*MaxNoteSize + MaxProofHashes*34 + 4<<10
	// MaxWitnessKeyLen bounds a witness verifier key string.
	MaxWitnessKeyLen = 4 << 10
)

// ErrMalformed is returned (wrapped) by the decoders for input that is not a
// well-formed message within the bounds.
var ErrMalformed = errors.New("malformed message")

// MarshalSighting encodes s after checking it against the bounds.
func MarshalSighting(s *Sighting) ([]byte, error) {
	if err := CheckSighting(s); err != nil {
		return nil, err
	}
	return gproto.MarshalOptions{Deterministic: true}.Marshal(s)
}

// UnmarshalSighting decodes and bounds-checks a Sighting.
func UnmarshalSighting(b []byte) (*Sighting, error) {
	if len(b) > MaxSightingSize {
		return nil, fmt.Errorf("%w: sighting is %d bytes, limit %d", ErrMalformed, len(b), MaxSightingSize)
	}
	s := new(Sighting)
	if err := (gproto.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(b, s); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if err := CheckSighting(s); err != nil {
		return nil, err
	}
	return s, nil
}

// CheckSighting checks a Sighting's shape.
func CheckSighting(s *Sighting) error {
	switch {
	case s == nil:
		return fmt.Errorf("%w: nil sighting", ErrMalformed)
	case len(s.Checkpoint) == 0:
		return fmt.Errorf("%w: sighting without a checkpoint", ErrMalformed)
	case len(s.Checkpoint) > MaxNoteSize:
		return fmt.Errorf("%w: checkpoint is %d bytes, limit %d", ErrMalformed, len(s.Checkpoint), MaxNoteSize)
	case len(s.Observer) > MaxObserverLen:
		return fmt.Errorf("%w: observer name longer than %d bytes", ErrMalformed, MaxObserverLen)
	case s.Source < Source_SOURCE_UNSPECIFIED || s.Source > Source_SOURCE_COSIGN:
		return fmt.Errorf("%w: unknown source %d", ErrMalformed, s.Source)
	}
	return nil
}

// MarshalEvidence encodes e after checking it against the bounds.
func MarshalEvidence(e *Evidence) ([]byte, error) {
	if err := CheckEvidence(e); err != nil {
		return nil, err
	}
	return gproto.MarshalOptions{Deterministic: true}.Marshal(e)
}

// UnmarshalEvidence decodes and bounds-checks an Evidence.
func UnmarshalEvidence(b []byte) (*Evidence, error) {
	if len(b) > MaxEvidenceSize {
		return nil, fmt.Errorf("%w: evidence is %d bytes, limit %d", ErrMalformed, len(b), MaxEvidenceSize)
	}
	e := new(Evidence)
	if err := (gproto.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(b, e); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if err := CheckEvidence(e); err != nil {
		return nil, err
	}
	return e, nil
}

// CheckEvidence checks an Evidence's shape: a known kind, two notes within
// bounds, a bounded proof of 32-byte hashes, and a witness key exactly for
// witness equivocation.
func CheckEvidence(e *Evidence) error {
	switch {
	case e == nil:
		return fmt.Errorf("%w: nil evidence", ErrMalformed)
	case e.Kind <= Kind_KIND_UNSPECIFIED || e.Kind > Kind_KIND_WITNESS_EQUIVOCATION:
		return fmt.Errorf("%w: unknown evidence kind %d", ErrMalformed, e.Kind)
	case len(e.CheckpointA) == 0 || len(e.CheckpointB) == 0:
		return fmt.Errorf("%w: evidence needs two checkpoints", ErrMalformed)
	case len(e.CheckpointA) > MaxNoteSize || len(e.CheckpointB) > MaxNoteSize:
		return fmt.Errorf("%w: checkpoint larger than %d bytes", ErrMalformed, MaxNoteSize)
	case len(e.ConsistencyProof) > MaxProofHashes:
		return fmt.Errorf("%w: %d proof hashes, limit %d", ErrMalformed, len(e.ConsistencyProof), MaxProofHashes)
	case len(e.Observer) > MaxObserverLen:
		return fmt.Errorf("%w: observer name longer than %d bytes", ErrMalformed, MaxObserverLen)
	case len(e.WitnessKey) > MaxWitnessKeyLen:
		return fmt.Errorf("%w: witness key longer than %d bytes", ErrMalformed, MaxWitnessKeyLen)
	case (e.Kind == Kind_KIND_WITNESS_EQUIVOCATION) != (e.WitnessKey != ""):
		return fmt.Errorf("%w: a witness key belongs to witness equivocation and only there", ErrMalformed)
	case e.Kind == Kind_KIND_LOG_EQUIVOCATION_SAME_SIZE && len(e.ConsistencyProof) > 0:
		return fmt.Errorf("%w: same-size evidence carries no proof", ErrMalformed)
	case e.Kind == Kind_KIND_LOG_EQUIVOCATION_DIFFERENT_SIZES && len(e.ConsistencyProof) == 0:
		return fmt.Errorf("%w: different-size evidence needs a consistency proof", ErrMalformed)
	}
	for i, h := range e.ConsistencyProof {
		if len(h) != 32 {
			return fmt.Errorf("%w: proof hash %d is %d bytes, want 32", ErrMalformed, i, len(h))
		}
	}
	return nil
}

// KindName returns the stable textual name of an evidence kind, as used in
// evidence files and the API.
func KindName(k Kind) string {
	switch k {
	case Kind_KIND_LOG_EQUIVOCATION_SAME_SIZE:
		return "log-equivocation-same-size"
	case Kind_KIND_LOG_EQUIVOCATION_DIFFERENT_SIZES:
		return "log-equivocation-different-sizes"
	case Kind_KIND_WITNESS_EQUIVOCATION:
		return "witness-equivocation"
	}
	return "unknown"
}

// ParseKindName is the inverse of KindName.
func ParseKindName(s string) (Kind, bool) {
	for _, k := range []Kind{Kind_KIND_LOG_EQUIVOCATION_SAME_SIZE, Kind_KIND_LOG_EQUIVOCATION_DIFFERENT_SIZES, Kind_KIND_WITNESS_EQUIVOCATION} {
		if KindName(k) == s {
			return k, true
		}
	}
	return Kind_KIND_UNSPECIFIED, false
}
