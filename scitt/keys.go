package scitt

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/fxamacker/cbor/v2"
	"golang.org/x/mod/sumdb/note"
)

// Keys are written in the golang.org/x/mod/sumdb/note text encodings so that
// every Vigil key file looks alike:
//
//	private: PRIVATE+KEY+<name>+<hash>+<base64(0x01 || 32-byte Ed25519 seed)>
//	public:  <name>+<hash>+<base64(0x01 || 32-byte Ed25519 public key)>
//
// For an issuer key, <name> is the issuer (CWT iss). For a receipt key, <name>
// is the transparency service's identity, which receipts carry as CWT iss.
// The COSE kid of a key is its RFC 9679 COSE Key Thumbprint (SHA-256).

const algEd25519 = 0x01

// GenerateKey creates an Ed25519 key named name and returns its private and
// public encodings (note.GenerateKey's format).
func GenerateKey(rand io.Reader, name string) (skey, vkey string, err error) {
	return note.GenerateKey(rand, name)
}

// PrivateKey is a signing key with a name (issuer or service identity):
// Ed25519 (Key), or for receipt keys P-256 (EC, see GenerateES256Key).
type PrivateKey struct {
	Name string
	Key  ed25519.PrivateKey
	// EC, if set, makes this a P-256 key signing with ES256; Key is then nil.
	EC *ecdsa.PrivateKey
}

// PublicKey is a verification key with a name: Ed25519 (Key) or P-256 (EC).
type PublicKey struct {
	Name string
	Key  ed25519.PublicKey
	// EC, if set, makes this a P-256 key verifying ES256; Key is then nil.
	EC *ecdsa.PublicKey
}

// ParsePrivateKey decodes a PRIVATE+KEY+... string (Ed25519) or an
// ES256+PRIVATE+KEY+... string (P-256, GenerateES256Key).
func ParsePrivateKey(s string) (*PrivateKey, error) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, es256PrivatePrefix) {
		return parseES256PrivateKey(s)
	}
	if _, err := note.NewSigner(s); err != nil {
		return nil, fmt.Errorf("parsing private key: %w", err)
	}
	parts := strings.SplitN(s, "+", 5)
	if len(parts) != 5 {
		return nil, errors.New("parsing private key: malformed")
	}
	raw, err := base64.StdEncoding.DecodeString(parts[4])
	if err != nil || len(raw) != 1+ed25519.SeedSize || raw[0] != algEd25519 {
		return nil, errors.New("parsing private key: not an Ed25519 key")
	}
	return &PrivateKey{Name: parts[2], Key: ed25519.NewKeyFromSeed(raw[1:])}, nil
}

// ParsePublicKey decodes a <name>+<hash>+<base64> verifier key string
// (Ed25519) or a <name>+es256+<base64 SPKI> one (P-256).
func ParsePublicKey(s string) (*PublicKey, error) {
	s = strings.TrimSpace(s)
	if k, ok, err := parseES256PublicKey(s); ok {
		return k, err
	}
	if _, err := note.NewVerifier(s); err != nil {
		return nil, fmt.Errorf("parsing public key: %w", err)
	}
	parts := strings.SplitN(s, "+", 3)
	if len(parts) != 3 {
		return nil, errors.New("parsing public key: malformed")
	}
	raw, err := base64.StdEncoding.DecodeString(parts[2])
	if err != nil || len(raw) != 1+ed25519.PublicKeySize || raw[0] != algEd25519 {
		return nil, errors.New("parsing public key: not an Ed25519 key")
	}
	return &PublicKey{Name: parts[0], Key: ed25519.PublicKey(raw[1:])}, nil
}

// Public returns the public half of k.
func (k *PrivateKey) Public() *PublicKey {
	if k.EC != nil {
		return &PublicKey{Name: k.Name, EC: &k.EC.PublicKey}
	}
	return &PublicKey{Name: k.Name, Key: k.Key.Public().(ed25519.PublicKey)}
}

// KID returns the key's COSE kid.
func (k *PrivateKey) KID() []byte { return k.Public().KID() }

// String returns the verifier-key encoding of k.
func (k *PublicKey) String() string {
	if k.EC != nil {
		return k.es256String()
	}
	h := sha256.New()
	h.Write([]byte(k.Name))
	h.Write([]byte{'\n', algEd25519})
	h.Write(k.Key)
	id := binary.BigEndian.Uint32(h.Sum(nil))
	return fmt.Sprintf("%s+%08x+%s", k.Name, id, base64.StdEncoding.EncodeToString(append([]byte{algEd25519}, k.Key...)))
}

// coseKey is an OKP COSE_Key (RFC 9053 §7.2) with core deterministic
// encoding, so that its encoding is the RFC 9679 thumbprint input when KID
// and Alg are left empty.
type coseKey struct {
	Kty int64  `cbor:"1,keyasint"`
	KID []byte `cbor:"2,keyasint,omitempty"`
	Alg int64  `cbor:"3,keyasint,omitempty"`
	Crv int64  `cbor:"-1,keyasint"`
	X   []byte `cbor:"-2,keyasint"`
}

var (
	coreEnc, _   = cbor.CoreDetEncOptions().EncMode()
	strictDec, _ = cbor.DecOptions{
		DupMapKey:        cbor.DupMapKeyEnforcedAPF,
		IndefLength:      cbor.IndefLengthForbidden,
		MaxNestedLevels:  16,
		MaxArrayElements: 1 << 16,
		MaxMapPairs:      1 << 10,
	}.DecMode()
)

// KID returns the RFC 9679 COSE Key Thumbprint (SHA-256) of k.
func (k *PublicKey) KID() []byte {
	if k.EC != nil {
		kid, err := ES256KID(k.EC)
		if err != nil {
			panic(err) // EC keys are P-256 by construction
		}
		return kid
	}
	b, err := coreEnc.Marshal(coseKey{Kty: 1, Crv: 6, X: k.Key})
	if err != nil {
		panic(err) // cannot happen for fixed types
	}
	sum := sha256.Sum256(b)
	return sum[:]
}

// COSEKey returns k as a CBOR-encoded COSE_Key with kid and alg (EdDSA,
// or ES256 for a P-256 key).
func (k *PublicKey) COSEKey() []byte {
	if k.EC != nil {
		return k.es256COSEKey()
	}
	b, err := coreEnc.Marshal(coseKey{Kty: 1, KID: k.KID(), Alg: -8, Crv: 6, X: k.Key})
	if err != nil {
		panic(err)
	}
	return b
}

// ParseCOSEKey decodes an OKP Ed25519 or EC2 P-256 COSE_Key. The returned
// key has no name.
func ParseCOSEKey(b []byte) (*PublicKey, error) {
	if k, ok, err := parseEC2COSEKey(b); ok {
		return k, err
	}
	var ck coseKey
	if err := strictDec.Unmarshal(b, &ck); err != nil {
		return nil, fmt.Errorf("decoding COSE_Key: %w", err)
	}
	if ck.Kty != 1 || ck.Crv != 6 || len(ck.X) != ed25519.PublicKeySize {
		return nil, errors.New("decoding COSE_Key: not an OKP Ed25519 key")
	}
	pk := &PublicKey{Key: ed25519.PublicKey(ck.X)}
	if ck.KID != nil && !bytes.Equal(ck.KID, pk.KID()) {
		return nil, errors.New("decoding COSE_Key: kid is not the key thumbprint")
	}
	return pk, nil
}
