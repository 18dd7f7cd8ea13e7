package tlog

import (
	"crypto/mldsa"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"golang.org/x/mod/sumdb/note"
)

// ML-DSA-44 (type 0x06) cosignatures of c2sp.org/tlog-cosignature: the
// "subtree/v1" message, which names the cosigner, the origin and the range
// [start, end) of the tree it covers. A checkpoint cosignature covers
// [0, size) and carries a non-zero timestamp; a subtree cosignature has
// timestamp zero.
const (
	AlgCosignatureMLDSA = 0x06
	// mldsaSigSize is the decoded signature after the key ID: an 8-byte
	// timestamp and a 2420-byte ML-DSA-44 signature.
	mldsaSigSize = cosigTimestampSize + mldsa.MLDSA44SignatureSize
	// SPEC: the 12-byte label "subtree/v1\n\0".
	subtreeLabel = "subtree/v1\n\x00"
)

// ErrSubtreeMessage is returned (wrapped) for a cosigned_message that cannot
// be built: a name or origin outside 1..255 bytes, or start > end.
var ErrSubtreeMessage = errors.New("bad subtree/v1 message")

// SubtreeMessage returns the exact bytes an ML-DSA-44 cosignature signs.
//
// SPEC (tlog-cosignature, cosigned_message): label "subtree/v1\n\0",
// cosigner_name<1..255>, u64 timestamp, log_origin<1..255>, u64 start,
// u64 end, hash[32]; big-endian, one length byte before each string.
func SubtreeMessage(name string, timestamp uint64, origin string, start, end uint64, hash [32]byte) ([]byte, error) {
	switch {
	case len(name) < 1 || len(name) > 255:
		return nil, fmt.Errorf("%w: cosigner name of %d bytes", ErrSubtreeMessage, len(name))
	case len(origin) < 1 || len(origin) > 255:
		return nil, fmt.Errorf("%w: origin of %d bytes", ErrSubtreeMessage, len(origin))
	case start > end:
		return nil, fmt.Errorf("%w: start %d > end %d", ErrSubtreeMessage, start, end)
	case timestamp > maxCosigTimestamp:
		return nil, fmt.Errorf("%w: timestamp above 2^63-1", ErrSubtreeMessage)
	}
	m := make([]byte, 0, len(subtreeLabel)+1+len(name)+8+1+len(origin)+16+32)
	m = append(m, subtreeLabel...)
	m = append(m, byte(len(name)))
	m = append(m, name...)
	m = binary.BigEndian.AppendUint64(m, timestamp)
	m = append(m, byte(len(origin)))
	m = append(m, origin...)
	m = binary.BigEndian.AppendUint64(m, start)
	m = binary.BigEndian.AppendUint64(m, end)
	return append(m, hash[:]...), nil
}

// MLDSASigner produces ML-DSA-44 subtree/v1 (type 0x06) cosignatures. It
// implements note.Signer for checkpoints; SignSubtree signs subtrees.
type MLDSASigner struct {
	name string
	hash uint32
	key  *mldsa.PrivateKey
	now  func() time.Time
}

var _ note.Signer = (*MLDSASigner)(nil)

// NewMLDSASigner parses an ML-DSA-44 cosigner private key string
// ("PRIVATE+KEY+<name>+<hex id>+<base64(0x06 || 32-byte seed)>"). now
// supplies the timestamps; nil means time.Now.
func NewMLDSASigner(skey string, now func() time.Time) (*MLDSASigner, error) {
	name, hash, key, err := splitPrivateKey(skey)
	if err != nil {
		return nil, err
	}
	if len(key) != 1+mldsa.PrivateKeySize || key[0] != AlgCosignatureMLDSA {
		return nil, fmt.Errorf("%w: signer key is not an ML-DSA-44 (type 0x06) seed", ErrBadKey)
	}
	if len(name) > 255 {
		return nil, fmt.Errorf("%w: cosigner name longer than 255 bytes", ErrBadKey)
	}
	priv, err := mldsa.NewPrivateKey(mldsa.MLDSA44(), key[1:])
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadKey, err)
	}
	if err := checkKeyID(name, AlgCosignatureMLDSA, priv.PublicKey().Bytes(), hash); err != nil {
		return nil, err
	}
	if now == nil {
		now = time.Now
	}
	return &MLDSASigner{name: name, hash: hash, key: priv, now: now}, nil
}

// Name returns the cosigner name.
func (s *MLDSASigner) Name() string { return s.name }

// KeyHash returns the type 0x06 key ID.
func (s *MLDSASigner) KeyHash() uint32 { return s.hash }

// VerifierKey returns the signer's verifier key string (type 0x06).
func (s *MLDSASigner) VerifierKey() string { return mldsaVKey(s.name, s.key.PublicKey().Bytes()) }

// Sign returns timestamp || ML-DSA-44 signature over the subtree/v1 message
// for the checkpoint body msg: start 0, end its size, hash its root.
//
// SPEC: a checkpoint cosignature's timestamp MUST NOT be zero; extension
// lines are not part of the signed message.
func (s *MLDSASigner) Sign(msg []byte) ([]byte, error) {
	c, err := ParseCheckpoint(msg)
	if err != nil {
		return nil, fmt.Errorf("cosigning: %w", err)
	}
	t := s.now().Unix()
	if t <= 0 {
		return nil, errors.New("cosigning: clock is not after 1970")
	}
	return s.sign(uint64(t), c.Origin, 0, c.Size, c.Root)
}

// SignSubtree returns the signature-line payload (without key ID) of a
// subtree cosignature over [start, end) of origin with the given hash.
// SPEC: subtree cosignatures carry timestamp zero.
func (s *MLDSASigner) SignSubtree(origin string, start, end uint64, hash [32]byte) ([]byte, error) {
	return s.sign(0, origin, start, end, hash)
}

func (s *MLDSASigner) sign(t uint64, origin string, start, end uint64, hash [32]byte) ([]byte, error) {
	m, err := SubtreeMessage(s.name, t, origin, start, end, hash)
	if err != nil {
		return nil, fmt.Errorf("cosigning: %w", err)
	}
	// SPEC: pure ML-DSA-44 with the empty context string.
	sig, err := s.key.Sign(nil, m, nil)
	if err != nil {
		return nil, fmt.Errorf("cosigning: %w", err)
	}
	out := make([]byte, cosigTimestampSize, mldsaSigSize)
	binary.BigEndian.PutUint64(out, t)
	return append(out, sig...), nil
}

// SubtreeLine returns the note signature line ("— <name> <base64>\n") of
// a subtree cosignature.
func (s *MLDSASigner) SubtreeLine(origin string, start, end uint64, hash [32]byte) ([]byte, error) {
	sig, err := s.SignSubtree(origin, start, end, hash)
	if err != nil {
		return nil, err
	}
	b := binary.BigEndian.AppendUint32(nil, s.hash)
	return fmt.Appendf(nil, "— %s %s\n", s.name, base64.StdEncoding.EncodeToString(append(b, sig...))), nil
}

// MLDSAVerifier verifies ML-DSA-44 subtree/v1 (type 0x06) cosignatures.
type MLDSAVerifier struct {
	name string
	hash uint32
	key  *mldsa.PublicKey
}

var _ note.Verifier = (*MLDSAVerifier)(nil)

// NewMLDSAVerifier parses a type 0x06 verifier key string.
func NewMLDSAVerifier(vkey string) (*MLDSAVerifier, error) {
	name, hash, key, err := splitKey(vkey)
	if err != nil {
		return nil, err
	}
	if len(key) != 1+mldsa.MLDSA44PublicKeySize || key[0] != AlgCosignatureMLDSA {
		return nil, fmt.Errorf("%w: %q is not an ML-DSA-44 (type 0x06) cosigner key", ErrBadKey, name)
	}
	if len(name) > 255 {
		return nil, fmt.Errorf("%w: cosigner name longer than 255 bytes", ErrBadKey)
	}
	if err := checkKeyID(name, AlgCosignatureMLDSA, key[1:], hash); err != nil {
		return nil, err
	}
	pk, err := mldsa.NewPublicKey(mldsa.MLDSA44(), key[1:])
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadKey, err)
	}
	return &MLDSAVerifier{name: name, hash: hash, key: pk}, nil
}

// Name returns the cosigner name.
func (v *MLDSAVerifier) Name() string { return v.name }

// KeyHash returns the key ID.
func (v *MLDSAVerifier) KeyHash() uint32 { return v.hash }

// Verify reports whether sig is a valid ML-DSA-44 checkpoint cosignature
// over the checkpoint body msg.
//
// SPEC: the message is rebuilt from the verified body (start 0, end size,
// hash root); a checkpoint cosignature's timestamp MUST NOT be zero and is at
// most 2^63-1; the signature is exactly 8 + 2420 bytes.
func (v *MLDSAVerifier) Verify(msg, sig []byte) bool {
	if len(sig) != mldsaSigSize {
		return false
	}
	t := binary.BigEndian.Uint64(sig)
	if t == 0 || t > maxCosigTimestamp {
		return false
	}
	c, err := ParseCheckpoint(msg)
	if err != nil {
		return false
	}
	return v.verify(t, c.Origin, 0, c.Size, c.Root, sig[cosigTimestampSize:])
}

// VerifySubtree reports whether sig (the signature-line payload after the
// key ID) is a valid subtree cosignature over [start, end) of origin.
// SPEC: subtree cosignatures carry timestamp zero.
func (v *MLDSAVerifier) VerifySubtree(origin string, start, end uint64, hash [32]byte, sig []byte) bool {
	if len(sig) != mldsaSigSize || binary.BigEndian.Uint64(sig) != 0 {
		return false
	}
	return v.verify(0, origin, start, end, hash, sig[cosigTimestampSize:])
}

func (v *MLDSAVerifier) verify(t uint64, origin string, start, end uint64, hash [32]byte, sig []byte) bool {
	m, err := SubtreeMessage(v.name, t, origin, start, end, hash)
	if err != nil {
		return false
	}
	return mldsa.Verify(v.key, m, sig, nil) == nil
}

// GenerateMLDSACosignerKey creates an ML-DSA-44 cosigner key pair for name
// and returns the private key string and the verifier key string.
func GenerateMLDSACosignerKey(name string) (skey, vkey string, err error) {
	if !validKeyName(name) || len(name) > 255 {
		return "", "", fmt.Errorf("%w: invalid key name %q", ErrBadKey, name)
	}
	priv, err := mldsa.GenerateKey(mldsa.MLDSA44())
	if err != nil {
		return "", "", fmt.Errorf("generating key: %w", err)
	}
	return mldsaSKey(name, priv), mldsaVKey(name, priv.PublicKey().Bytes()), nil
}

// MLDSACosignerKeyFromSeed returns the key strings of the ML-DSA-44 cosigner
// key with the given 32-byte seed (deterministic; for tests and tools).
func MLDSACosignerKeyFromSeed(name string, seed []byte) (skey, vkey string, err error) {
	if !validKeyName(name) || len(name) > 255 {
		return "", "", fmt.Errorf("%w: invalid key name %q", ErrBadKey, name)
	}
	priv, err := mldsa.NewPrivateKey(mldsa.MLDSA44(), seed)
	if err != nil {
		return "", "", fmt.Errorf("%w: %v", ErrBadKey, err)
	}
	return mldsaSKey(name, priv), mldsaVKey(name, priv.PublicKey().Bytes()), nil
}

func mldsaSKey(name string, priv *mldsa.PrivateKey) string {
	return privateKeyString(name, AlgCosignatureMLDSA, priv.PublicKey().Bytes(), priv.Bytes())
}

func mldsaVKey(name string, pub []byte) string {
	return verifierKeyString(name, AlgCosignatureMLDSA, pub)
}
