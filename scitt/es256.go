package scitt

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
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
