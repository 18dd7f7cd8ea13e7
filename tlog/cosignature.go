package tlog

import (
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"golang.org/x/mod/sumdb/note"
)

// Signature type bytes from c2sp.org/signed-note.
const (
	AlgEd25519            = 0x01
	AlgCosignatureV1      = 0x04
	cosigTimestampSize    = 8
	cosigSignatureSize    = cosigTimestampSize + ed25519.SignatureSize
	maxCosigTimestamp     = 1<<63 - 1
	cosignatureV1Header   = "cosignature/v1\ntime "
	privateKeyStringStart = "PRIVATE+KEY+"
)

// ErrBadKey is returned (wrapped) for a key string that cannot be used.
var ErrBadKey = errors.New("bad key")

// CosignatureSigner produces Ed25519 cosignature/v1 (type 0x04) signatures.
// It implements note.Signer; Sign expects a checkpoint body as its message.
type CosignatureSigner struct {
	name string
	hash uint32
	key  ed25519.PrivateKey
	now  func() time.Time
}

var _ note.Signer = (*CosignatureSigner)(nil)

// NewCosignatureSigner parses a cosigner private key string
// ("PRIVATE+KEY+<name>+<hex id>+<base64(0x04 || seed)>"). now supplies the
// timestamps; nil means time.Now.
func NewCosignatureSigner(skey string, now func() time.Time) (*CosignatureSigner, error) {
	name, hash, key, err := splitPrivateKey(skey)
	if err != nil {
		return nil, err
	}
	if len(key) != 1+ed25519.SeedSize || key[0] != AlgCosignatureV1 {
		return nil, fmt.Errorf("%w: signer key is not an Ed25519 cosignature/v1 seed", ErrBadKey)
	}
	priv := ed25519.NewKeyFromSeed(key[1:])
	if err := checkKeyID(name, AlgCosignatureV1, priv.Public().(ed25519.PublicKey), hash); err != nil {
		return nil, err
	}
	if now == nil {
		now = time.Now
	}
	return &CosignatureSigner{name: name, hash: hash, key: priv, now: now}, nil
}

// Name returns the cosigner name.
func (s *CosignatureSigner) Name() string { return s.name }

// KeyHash returns the cosignature/v1 key ID.
func (s *CosignatureSigner) KeyHash() uint32 { return s.hash }

// Sign returns timestamp || Ed25519 signature over the cosignature/v1 message
// for the checkpoint body msg.
func (s *CosignatureSigner) Sign(msg []byte) ([]byte, error) {
	t := s.now().Unix()
	if t < 0 {
		return nil, errors.New("cosigning: clock is before 1970")
	}
	sig := make([]byte, cosigTimestampSize, cosigSignatureSize)
	binary.BigEndian.PutUint64(sig, uint64(t))
	return append(sig, signEd25519(s.key, CosignatureMessage(uint64(t), msg))...), nil
}

// VerifierKey returns the signer's verifier key string (type 0x04).
func (s *CosignatureSigner) VerifierKey() string {
	return verifierKeyString(s.name, AlgCosignatureV1, s.key.Public().(ed25519.PublicKey))
}

// CosignatureMessage returns the exact bytes a cosignature/v1 signs.
// SPEC: "cosignature/v1\ntime <decimal>\n" followed by the checkpoint body.
func CosignatureMessage(timestamp uint64, body []byte) []byte {
	m := make([]byte, 0, len(cosignatureV1Header)+21+len(body))
	m = append(m, cosignatureV1Header...)
	m = strconv.AppendUint(m, timestamp, 10)
	m = append(m, '\n')
	return append(m, body...)
}

// CosignatureVerifier verifies Ed25519 cosignature/v1 signatures.
type CosignatureVerifier struct {
	name string
	hash uint32
	key  *ed25519Key
}

var _ note.Verifier = (*CosignatureVerifier)(nil)

// NewCosignatureVerifier parses a type 0x04 verifier key string.
func NewCosignatureVerifier(vkey string) (*CosignatureVerifier, error) {
	name, hash, key, err := splitKey(vkey)
	if err != nil {
		return nil, err
	}
	if len(key) != 1+ed25519.PublicKeySize || key[0] != AlgCosignatureV1 {
		return nil, fmt.Errorf("%w: %q is not an Ed25519 cosignature/v1 (type 0x04) key", ErrBadKey, name)
	}
	pub := ed25519.PublicKey(key[1:])
	if err := checkKeyID(name, AlgCosignatureV1, pub, hash); err != nil {
		return nil, err
	}
	k, err := newEd25519Key(pub)
	if err != nil {
		return nil, err
	}
	return &CosignatureVerifier{name: name, hash: hash, key: k}, nil
}

// Name returns the cosigner name.
func (v *CosignatureVerifier) Name() string { return v.name }

// KeyHash returns the key ID.
func (v *CosignatureVerifier) KeyHash() uint32 { return v.hash }

// Verify reports whether sig is a valid cosignature/v1 over the checkpoint body msg.
func (v *CosignatureVerifier) Verify(msg, sig []byte) bool {
	// SPEC: 8-byte big-endian timestamp, at most 2^63-1, then a 64-byte signature.
	if len(sig) != cosigSignatureSize {
		return false
	}
	t := binary.BigEndian.Uint64(sig)
	if t > maxCosigTimestamp {
		return false
	}
	return v.key.verify(CosignatureMessage(t, msg), sig[cosigTimestampSize:])
}

// GenerateCosignerKey creates an Ed25519 cosignature/v1 key pair for name and
// returns the private key string and the verifier key string.
func GenerateCosignerKey(rand io.Reader, name string) (skey, vkey string, err error) {
	if !validKeyName(name) {
		return "", "", fmt.Errorf("%w: invalid key name %q", ErrBadKey, name)
	}
	pub, priv, err := ed25519.GenerateKey(rand)
	if err != nil {
		return "", "", fmt.Errorf("generating key: %w", err)
	}
	return privateKeyString(name, AlgCosignatureV1, pub, priv.Seed()), verifierKeyString(name, AlgCosignatureV1, pub), nil
}
