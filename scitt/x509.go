package scitt

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/veraison/go-cose"
)

// X.509 issuers (RFC 9360 in COSE, SCITT architecture §"Issuer identity"):
// a statement names its signing certificate with x5chain (33: the leaf
// first, then intermediates) or x5t (34: [hash alg, hash] of a certificate
// the policy registers), in the protected header. The chain must verify
// against the trust anchors the policy configures for the issuer.

// maxX5Chain bounds the certificates of one x5chain header.
const maxX5Chain = 8

// X5T is an RFC 9360 certificate thumbprint: COSE hash alg and digest.
type X5T struct {
	Alg  int64
	Hash []byte
}

// x5tHash returns the hash function of a COSE hash algorithm x5t may use.
func x5tHash(alg int64) (func([]byte) []byte, bool) {
	switch alg {
	case -16: // SHA-256
		return func(b []byte) []byte { s := sha256.Sum256(b); return s[:] }, true
	case -43: // SHA-384
		return func(b []byte) []byte { s := sha512.Sum384(b); return s[:] }, true
	case -44: // SHA-512
		return func(b []byte) []byte { s := sha512.Sum512(b); return s[:] }, true
	}
	return nil, false
}

// ParseX5Chain decodes the value of an x5chain header (the CBOR item): a
// single bstr certificate or an array of them, leaf first.
func ParseX5Chain(cborItem []byte) ([]*x509.Certificate, error) {
	var v any
	if err := strictDec.Unmarshal(cborItem, &v); err != nil {
		return nil, malformed("x5chain (33): %v", err)
	}
	return x5chainValue(v)
}

// x5chainValue checks a decoded x5chain header value.
func x5chainValue(v any) ([]*x509.Certificate, error) {
	var ders [][]byte
	switch v := v.(type) {
	case []byte:
		ders = [][]byte{v}
	case []any:
		if len(v) == 0 {
			return nil, malformed("x5chain (33) is an empty array")
		}
		for _, c := range v {
			b, ok := c.([]byte)
			if !ok {
				return nil, malformed("x5chain (33) holds a %T, want bstr certificates", c)
			}
			ders = append(ders, b)
		}
	default:
		return nil, malformed("x5chain (33) must be a bstr or an array of bstr")
	}
	if len(ders) > maxX5Chain {
		return nil, malformed("x5chain (33) has %d certificates, at most %d", len(ders), maxX5Chain)
	}
	certs := make([]*x509.Certificate, len(ders))
	for i, der := range ders {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, malformed("x5chain (33) certificate %d: %v", i, err)
		}
		certs[i] = c
	}
	return certs, nil
}

// x5tValue checks a decoded x5t header value: [alg, hash].
func x5tValue(v any) (*X5T, error) {
	a, ok := v.([]any)
	if !ok || len(a) != 2 {
		return nil, malformed("x5t (34) must be [hash alg, hash]")
	}
	alg, ok := a[0].(int64)
	h, ok2 := a[1].([]byte)
	if !ok || !ok2 {
		return nil, malformed("x5t (34) must be [int, bstr]")
	}
	f, ok := x5tHash(alg)
	if !ok {
		return nil, malformed("x5t (34) hash alg %d unsupported (SHA-256 -16, SHA-384 -43, SHA-512 -44)", alg)
	}
	if len(h) != len(f(nil)) {
		return nil, malformed("x5t (34) hash of %d bytes for alg %d", len(h), alg)
	}
	return &X5T{Alg: alg, Hash: h}, nil
}

// matches reports whether t is the thumbprint of c.
func (t *X5T) matches(c *x509.Certificate) bool {
	f, _ := x5tHash(t.Alg)
	return f != nil && bytes.Equal(f(c.Raw), t.Hash)
}

// checkX509Issuer enforces the architecture's rule for X.509 issuers.
// SPEC: with x5t or x5chain, iss MUST be a URI (StringOrURI), 1..8192 chars.
func checkX509Issuer(iss string) error {
	if len(iss) > 8192 {
		return malformed("CWT iss of %d characters, at most 8192", len(iss))
	}
	u, err := url.Parse(iss)
	if err != nil || u.Scheme == "" || (u.Opaque == "" && u.Host == "" && u.Path == "") {
		return malformed("CWT iss %q must be a URI for an X.509 issuer", iss)
	}
	return nil
}

// x509Issuer is the X.509 part of a policy issuer.
type x509Issuer struct {
	roots *x509.CertPool
	// registered are the certificates x5t may name; they also serve as
	// intermediates.
	registered []*x509.Certificate
}

// X509Config is the X.509 section of a policy issuer.
type X509Config struct {
	// TrustAnchors are PEM CERTIFICATE blocks: the roots a chain must end at.
	TrustAnchors string `yaml:"trust_anchors"`
	// Certificates are PEM certificates that statements may name by x5t
	// (and intermediates for any chain).
	Certificates string `yaml:"certificates"`
}

func parsePEMCerts(s, what string) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	rest := []byte(s)
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("%s: PEM block %q, want CERTIFICATE", what, b.Type)
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		out = append(out, c)
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, fmt.Errorf("%s: trailing data that is not PEM", what)
	}
	return out, nil
}

func (c *X509Config) compile() (*x509Issuer, error) {
	roots, err := parsePEMCerts(c.TrustAnchors, "trust_anchors")
	if err != nil {
		return nil, err
	}
	if len(roots) == 0 {
		return nil, errors.New("x509: trust_anchors holds no certificate")
	}
	xi := &x509Issuer{roots: x509.NewCertPool()}
	for _, r := range roots {
		xi.roots.AddCert(r)
	}
	if xi.registered, err = parsePEMCerts(c.Certificates, "certificates"); err != nil {
		return nil, err
	}
	return xi, nil
}

// verify checks an X.509 statement: leaf named by x5chain or x5t, chain
// to the issuer's anchors valid at now, digitalSignature key usage, alg
// matching the leaf key, and the COSE signature.
func (xi *x509Issuer) verify(s *Statement, now time.Time) error {
	var leaf *x509.Certificate
	inter := x509.NewCertPool()
	for _, c := range xi.registered {
		inter.AddCert(c)
	}
	if len(s.X5Chain) > 0 {
		leaf = s.X5Chain[0]
		for _, c := range s.X5Chain[1:] {
			inter.AddCert(c)
		}
		// SPEC: RFC 9360: with both, x5t must identify the x5chain leaf.
		if s.X5T != nil && !s.X5T.matches(leaf) {
			return fmt.Errorf("%w: x5t does not match the x5chain leaf certificate", ErrRejected)
		}
	} else {
		for _, c := range xi.registered {
			if s.X5T.matches(c) {
				leaf = c
				break
			}
		}
		if leaf == nil {
			return fmt.Errorf("%w: x5t names no certificate registered for issuer %q", ErrRejected, s.Issuer)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{
		Roots: xi.roots, Intermediates: inter, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	}); err != nil {
		return fmt.Errorf("%w: certificate of %q: %v", ErrRejected, leaf.Subject, err)
	}
	// An absent key usage extension places no restriction (RFC 5280 §4.2.1.3).
	if leaf.KeyUsage != 0 && leaf.KeyUsage&x509.KeyUsageDigitalSignature == 0 {
		return fmt.Errorf("%w: certificate of %q lacks the digitalSignature key usage", ErrRejected, leaf.Subject)
	}
	alg, pub, err := certAlg(leaf)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadAlgorithm, err)
	}
	if s.Alg != alg {
		return fmt.Errorf("%w: %v (the certificate key is %v)", ErrBadAlgorithm, s.Alg, alg)
	}
	v, err := cose.NewVerifier(alg, pub)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadAlgorithm, err)
	}
	if err := s.msg.Verify(nil, v); err != nil {
		return fmt.Errorf("%w: %v", ErrBadSignature, err)
	}
	return nil
}

// certAlg returns the COSE algorithm for a certificate's key.
func certAlg(c *x509.Certificate) (cose.Algorithm, crypto.PublicKey, error) {
	switch k := c.PublicKey.(type) {
	case ed25519.PublicKey:
		return cose.AlgorithmEdDSA, k, nil
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return cose.AlgorithmES256, k, nil
		case elliptic.P384():
			return cose.AlgorithmES384, k, nil
		}
	}
	return 0, nil, fmt.Errorf("certificate key %T is not Ed25519, P-256 or P-384", c.PublicKey)
}
