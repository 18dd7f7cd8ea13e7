package scitt

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/veraison/go-cose"
)

// ES256 issuer keys. Issuers whose keys live in HSMs or cloud KMSs often
// have only P-256; the policy lists them as
//
//	es256:<base64 of the DER SubjectPublicKeyInfo>
//
// (the issuer name comes from the policy entry). Their kid is the RFC 9679
// thumbprint of the EC2 COSE_Key {1: 2, -1: 1, -2: x, -3: y}.

const es256Prefix = "es256:"

// issuerKey verifies statements for one policy key.
type issuerKey struct {
	alg cose.Algorithm
	pub crypto.PublicKey
	kid []byte
}

type ec2Key struct {
	Kty int64  `cbor:"1,keyasint"`
	Crv int64  `cbor:"-1,keyasint"`
	X   []byte `cbor:"-2,keyasint"`
	Y   []byte `cbor:"-3,keyasint"`
}

// ES256KID returns the RFC 9679 thumbprint of a P-256 key.
func ES256KID(pub *ecdsa.PublicKey) ([]byte, error) {
	raw, err := pub.Bytes() // 0x04 || x || y
	if err != nil || pub.Curve != elliptic.P256() {
		return nil, errors.New("not a P-256 key")
	}
	b, err := coreEnc.Marshal(ec2Key{Kty: 2, Crv: 1, X: raw[1:33], Y: raw[33:]})
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(b)
	return sum[:], nil
}

// parseIssuerKey reads a policy key: a note verifier key (Ed25519) named
// like the issuer, or es256:<base64 SPKI>.
func parseIssuerKey(issuer, s string) (*issuerKey, error) {
	s = strings.TrimSpace(s)
	if rest, ok := strings.CutPrefix(s, es256Prefix); ok {
		der, err := base64.StdEncoding.DecodeString(rest)
		if err != nil {
			return nil, fmt.Errorf("es256 key: %w", err)
		}
		pk, err := x509.ParsePKIXPublicKey(der)
		if err != nil {
			return nil, fmt.Errorf("es256 key: %w", err)
		}
		ec, ok := pk.(*ecdsa.PublicKey)
		if !ok {
			return nil, errors.New("es256 key: not an ECDSA key")
		}
		kid, err := ES256KID(ec)
		if err != nil {
			return nil, fmt.Errorf("es256 key: %w", err)
		}
		return &issuerKey{alg: cose.AlgorithmES256, pub: ec, kid: kid}, nil
	}
	k, err := ParsePublicKey(s)
	if err != nil {
		return nil, err
	}
	if k.EC != nil {
		return nil, errors.New("ES256 issuer keys are written es256:<base64 SPKI>")
	}
	if k.Name != issuer {
		return nil, fmt.Errorf("key is named %q", k.Name)
	}
	return &issuerKey{alg: cose.AlgorithmEdDSA, pub: k.Key, kid: k.KID()}, nil
}

// verify checks s's signature with k; the statement's alg must be k's.
func (k *issuerKey) verify(s *Statement) error {
	if s.Alg != k.alg {
		return fmt.Errorf("%w: %v (the key is %v)", ErrBadAlgorithm, s.Alg, k.alg)
	}
	v, err := cose.NewVerifier(k.alg, k.pub)
	if err != nil {
		return err
	}
	if err := s.msg.Verify(nil, v); err != nil {
		return fmt.Errorf("%w: %v", ErrBadSignature, err)
	}
	return nil
}

// ES256 receipt keys. A transparency service may sign receipts with a P-256
// key (for verifiers limited to ES256) instead of Ed25519. Its encodings
// follow the note keys' shape:
//
//	private: ES256+PRIVATE+KEY+<name>+<base64 PKCS #8 DER>
//	public:  <name>+es256+<base64 DER SubjectPublicKeyInfo>
//
// Its kid is the RFC 9679 thumbprint of its EC2 COSE_Key (ES256KID).

const (
	es256PrivatePrefix = "ES256+PRIVATE+KEY+"
	es256PublicTag     = "es256"
)

// GenerateES256Key creates a P-256 key named name and returns its private
// and public encodings.
func GenerateES256Key(rand io.Reader, name string) (skey, vkey string, err error) {
	if name == "" || strings.ContainsAny(name, "+ \t\n") {
		return "", "", fmt.Errorf("invalid key name %q", name)
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand)
	if err != nil {
		return "", "", err
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return "", "", err
	}
	pk := &PublicKey{Name: name, EC: &k.PublicKey}
	return es256PrivatePrefix + name + "+" + base64.StdEncoding.EncodeToString(der), pk.String(), nil
}

func parseES256PrivateKey(s string) (*PrivateKey, error) {
	name, b64, ok := strings.Cut(strings.TrimPrefix(s, es256PrivatePrefix), "+")
	if !ok || name == "" {
		return nil, errors.New("parsing private key: malformed ES256 key")
	}
	der, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, fmt.Errorf("parsing private key: %w", err)
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("parsing private key: %w", err)
	}
	ec, ok := k.(*ecdsa.PrivateKey)
	if !ok || ec.Curve != elliptic.P256() {
		return nil, errors.New("parsing private key: not a P-256 key")
	}
	return &PrivateKey{Name: name, EC: ec}, nil
}

// parseES256PublicKey decodes <name>+es256+<base64 SPKI>; ok is false when
// s does not have that form.
func parseES256PublicKey(s string) (k *PublicKey, ok bool, err error) {
	parts := strings.SplitN(s, "+", 3)
	if len(parts) != 3 || parts[1] != es256PublicTag {
		return nil, false, nil
	}
	if parts[0] == "" {
		return nil, true, errors.New("parsing public key: empty name")
	}
	der, err := base64.StdEncoding.DecodeString(parts[2])
	if err != nil {
		return nil, true, fmt.Errorf("parsing public key: %w", err)
	}
	pk, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, true, fmt.Errorf("parsing public key: %w", err)
	}
	ec, isEC := pk.(*ecdsa.PublicKey)
	if !isEC || ec.Curve != elliptic.P256() {
		return nil, true, errors.New("parsing public key: not a P-256 key")
	}
	return &PublicKey{Name: parts[0], EC: ec}, true, nil
}

func (k *PublicKey) es256String() string {
	der, err := x509.MarshalPKIXPublicKey(k.EC)
	if err != nil {
		panic(err) // P-256 keys always marshal
	}
	return k.Name + "+" + es256PublicTag + "+" + base64.StdEncoding.EncodeToString(der)
}

// ec2COSEKey is an EC2 COSE_Key (RFC 9053 §7.1) with kid and alg.
type ec2COSEKey struct {
	Kty int64  `cbor:"1,keyasint"`
	KID []byte `cbor:"2,keyasint,omitempty"`
	Alg int64  `cbor:"3,keyasint,omitempty"`
	Crv int64  `cbor:"-1,keyasint"`
	X   []byte `cbor:"-2,keyasint"`
	Y   []byte `cbor:"-3,keyasint,omitempty"`
}

func (k *PublicKey) es256COSEKey() []byte {
	raw, err := k.EC.Bytes()
	if err != nil {
		panic(err)
	}
	b, err := coreEnc.Marshal(ec2COSEKey{Kty: 2, KID: k.KID(), Alg: int64(cose.AlgorithmES256), Crv: 1, X: raw[1:33], Y: raw[33:]})
	if err != nil {
		panic(err)
	}
	return b
}

// parseEC2COSEKey decodes an EC2 P-256 COSE_Key; ok is false when b is a
// COSE_Key of another key type.
func parseEC2COSEKey(b []byte) (k *PublicKey, ok bool, err error) {
	var ck ec2COSEKey
	if err := strictDec.Unmarshal(b, &ck); err != nil || ck.Kty != 2 {
		return nil, false, nil
	}
	if ck.Crv != 1 || len(ck.X) != 32 || len(ck.Y) != 32 || (ck.Alg != 0 && ck.Alg != int64(cose.AlgorithmES256)) {
		return nil, true, errors.New("decoding COSE_Key: not an EC2 P-256 ES256 key")
	}
	ec, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, ck.X...), ck.Y...))
	if err != nil {
		return nil, true, fmt.Errorf("decoding COSE_Key: %w", err)
	}
	pk := &PublicKey{EC: ec}
	if ck.KID != nil && !bytes.Equal(ck.KID, pk.KID()) {
		return nil, true, errors.New("decoding COSE_Key: kid is not the key thumbprint")
	}
	return pk, true, nil
}

// Algorithm is the COSE algorithm k signs with: ES256 for P-256, else EdDSA.
func (k *PrivateKey) Algorithm() cose.Algorithm { return k.Public().Algorithm() }

// Algorithm is the COSE algorithm k verifies: ES256 for P-256, else EdDSA.
func (k *PublicKey) Algorithm() cose.Algorithm {
	if k.EC != nil {
		return cose.AlgorithmES256
	}
	return cose.AlgorithmEdDSA
}

func (k *PrivateKey) coseSigner() (cose.Signer, error) {
	if k.EC != nil {
		return cose.NewSigner(cose.AlgorithmES256, k.EC)
	}
	return cose.NewSigner(cose.AlgorithmEdDSA, k.Key)
}

func (k *PublicKey) coseVerifier() (cose.Verifier, error) {
	if k.EC != nil {
		return cose.NewVerifier(cose.AlgorithmES256, k.EC)
	}
	return cose.NewVerifier(cose.AlgorithmEdDSA, k.Key)
}

// statementAlgorithms are the algorithms of the signed statements the
// service verifies (issuer keys: Ed25519 note keys and es256: keys), by
// their IANA COSE names.
var statementAlgorithms = []string{cose.AlgorithmEdDSA.String(), cose.AlgorithmES256.String()}

// receiptAlgorithm reports whether receipts may be signed with a.
func receiptAlgorithm(a cose.Algorithm) bool {
	return a == cose.AlgorithmEdDSA || a == cose.AlgorithmES256
}
