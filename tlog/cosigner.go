package tlog

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"

	"golang.org/x/mod/sumdb/note"
)

// Size budget for signed notes. An ML-DSA-44 cosignature line is
// "— " + name + " " + base64(4+8+2420 bytes) + "\n": 3,244 bytes of base64,
// about 3.3 KB with a typical name and at most MaxMLDSALineBytes with a
// 255-byte one. An Ed25519 line is about 150 bytes.
const (
	// MaxMLDSALineBytes is the longest ML-DSA-44 cosignature line.
	MaxMLDSALineBytes = len("— ") + 255 + 1 + (4+mldsaSigSize+2)/3*4 + 1
	// MaxNoteBytes bounds a signed checkpoint note everywhere Vigil reads
	// one (gossip, add-checkpoint, evidence, the feed). 128 KiB holds a
	// log's signature and 32 ML-DSA-44 plus 32 Ed25519 cosignature lines
	// with typical (under 40-byte) names, and 16 of each with 255-byte
	// names: c2sp.org/signed-note asks verifiers to accept at least 16
	// signatures and to budget for post-quantum sizes.
	MaxNoteBytes = 128 << 10
)

// CosignerSigner is one of a witness's cosigning keys: an Ed25519
// cosignature/v1 or an ML-DSA-44 subtree/v1 signer.
type CosignerSigner interface {
	note.Signer
	VerifierKey() string
}

var (
	_ CosignerSigner = (*CosignatureSigner)(nil)
	_ CosignerSigner = (*MLDSASigner)(nil)
)

// CosignatureKeyType returns the signature type byte of a verifier key
// string, without checking the rest of the key.
func CosignatureKeyType(vkey string) (byte, error) {
	_, _, key, err := splitKey(vkey)
	if err != nil {
		return 0, err
	}
	return key[0], nil
}

// NewWitnessVerifier parses a witness's cosignature verifier key of either
// type: 0x04 (Ed25519 cosignature/v1) or 0x06 (ML-DSA-44 subtree/v1). Every
// place that verifies witness cosignatures builds its verifiers here.
func NewWitnessVerifier(vkey string) (note.Verifier, error) {
	t, err := CosignatureKeyType(vkey)
	if err != nil {
		return nil, err
	}
	switch t {
	case AlgCosignatureV1:
		return NewCosignatureVerifier(vkey)
	case AlgCosignatureMLDSA:
		return NewMLDSAVerifier(vkey)
	default:
		return nil, fmt.Errorf("%w: key type 0x%02x is not a cosignature type (0x04 Ed25519 or 0x06 ML-DSA-44)", ErrBadKey, t)
	}
}

// NewWitnessSigner parses a cosigner private key string of either type.
func NewWitnessSigner(skey string) (CosignerSigner, error) {
	rest, err := cutPrivateKey(skey)
	if err != nil {
		return nil, err
	}
	t, err := CosignatureKeyType(rest)
	if err != nil {
		return nil, err
	}
	switch t {
	case AlgCosignatureV1:
		return NewCosignatureSigner(skey, nil)
	case AlgCosignatureMLDSA:
		return NewMLDSASigner(skey, nil)
	default:
		return nil, fmt.Errorf("%w: key type 0x%02x is not a cosignature type", ErrBadKey, t)
	}
}

// ErrNotCosignature is returned by CosignatureTimestamp for a signature line
// that is neither an Ed25519 nor an ML-DSA-44 cosignature.
var ErrNotCosignature = errors.New("not a cosignature line")

// CosignatureTimestamp returns the timestamp embedded in a cosignature line
// of either type, told apart by length: 4+72 bytes (Ed25519) or 4+2428
// bytes (ML-DSA-44).
func CosignatureTimestamp(s note.Signature) (uint64, error) {
	b, err := base64.StdEncoding.DecodeString(s.Base64)
	if err != nil || (len(b) != 4+cosigSignatureSize && len(b) != 4+mldsaSigSize) {
		return 0, ErrNotCosignature
	}
	return binary.BigEndian.Uint64(b[4:]), nil
}
