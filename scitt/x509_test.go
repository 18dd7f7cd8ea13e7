package scitt_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/veraison/go-cose"
	"github.com/vigilnet/vigil/scitt"
)

// testCA is a certificate authority built in the test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

var serial int64

func newCert(t testing.TB, tmpl *x509.Certificate, parent *testCA, pub crypto.PublicKey) *x509.Certificate {
	t.Helper()
	serial++
	tmpl.SerialNumber = big.NewInt(serial)
	if tmpl.NotBefore.IsZero() {
		tmpl.NotBefore = time.Now().Add(-time.Hour)
	}
	if tmpl.NotAfter.IsZero() {
		tmpl.NotAfter = time.Now().Add(24 * time.Hour)
	}
	issuerCert, issuerKey := tmpl, crypto.Signer(nil)
	if parent != nil {
		issuerCert, issuerKey = parent.cert, parent.key
	}
	if issuerKey == nil {
		t.Fatal("self-signed certificates need their own key as parent")
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, issuerCert, pub, issuerKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func newCA(t testing.TB, name string, parent *testCA) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		Subject: pkix.Name{CommonName: name}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	ca := &testCA{key: key}
	if parent == nil {
		parent = &testCA{cert: tmpl, key: key}
	}
	ca.cert = newCert(t, tmpl, parent, &key.PublicKey)
	return ca
}

// leafOpts vary a leaf certificate.
type leafOpts struct {
	notAfter time.Time
	keyUsage x509.KeyUsage
}

func newLeaf(t testing.TB, ca *testCA, name string, o leafOpts) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if o.keyUsage == 0 {
		o.keyUsage = x509.KeyUsageDigitalSignature
	}
	tmpl := &x509.Certificate{Subject: pkix.Name{CommonName: name}, KeyUsage: o.keyUsage, NotAfter: o.notAfter}
	if !o.notAfter.IsZero() {
		tmpl.NotBefore = o.notAfter.Add(-48 * time.Hour)
	}
	return newCert(t, tmpl, ca, &key.PublicKey), key
}

func pemOf(certs ...*x509.Certificate) string {
	var b strings.Builder
	for _, c := range certs {
		_ = pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	return b.String()
}

// signCOSE signs a statement with the given protected header entries.
func signCOSE(t testing.TB, alg cose.Algorithm, key crypto.Signer, hdr map[any]any, payload []byte) []byte {
	t.Helper()
	msg := cose.NewSign1Message()
	msg.Headers.Protected.SetAlgorithm(alg)
	for k, v := range hdr {
		msg.Headers.Protected[k] = v
	}
	msg.Payload = payload
	s, err := cose.NewSigner(alg, key)
	if err != nil {
		t.Fatal(err)
	}
	if err := msg.Sign(rand.Reader, nil, s); err != nil {
		t.Fatal(err)
	}
	b, err := msg.MarshalCBOR()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func claims(iss, sub string) map[int64]any { return map[int64]any{1: iss, 2: sub} }

func chainOf(certs ...*x509.Certificate) []any {
	var out []any
	for _, c := range certs {
		out = append(out, c.Raw)
	}
	return out
}

func x5t(c *x509.Certificate) []any {
	sum := sha256.Sum256(c.Raw)
	return []any{int64(-16), sum[:]}
}

const sbomIssuer = "https://sbom.example.com/builder"

const cyclonedx = `{"bomFormat":"CycloneDX","specVersion":"1.6","version":1,"components":[{"type":"library","name":"left-pad","version":"1.3.0"}]}`

func x509Policy(t testing.TB, anchors, registered string) *scitt.Policy {
	t.Helper()
	pol := fmt.Sprintf(`
issuers:
  - name: %s
    x509:
      trust_anchors: |
%s
      certificates: |
%s
    content_types:
      - type: application/vnd.cyclonedx+json
        schema: {format: json, required: [bomFormat, specVersion], const: {bomFormat: CycloneDX}}
`, sbomIssuer, indent(anchors, 8), indent(registered, 8))
	p, err := scitt.ParsePolicy([]byte(pol))
	if err != nil {
		t.Fatalf("policy: %v\n%s", err, pol)
	}
	return p
}

func indent(s string, n int) string {
	if s == "" {
		return strings.Repeat(" ", n) + "# none"
	}
	pad := strings.Repeat(" ", n)
	return pad + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n"+pad)
}

// TestX509Issuers checks x5chain and x5t statements against the policy's
// trust anchors: chain, validity at registration time, key usage, alg, the
// URI rule for iss, and the x5t binding.
func TestX509Issuers(t *testing.T) {
	root := newCA(t, "Root CA", nil)
	inter := newCA(t, "Issuing CA", root)
	leaf, leafKey := newLeaf(t, inter, "builder", leafOpts{})
	expired, expiredKey := newLeaf(t, inter, "old builder", leafOpts{notAfter: time.Now().Add(-time.Hour)})
	noSig, noSigKey := newLeaf(t, inter, "encipher only", leafOpts{keyUsage: x509.KeyUsageKeyEncipherment})
	registered, registeredKey := newLeaf(t, inter, "registered", leafOpts{})
	inter2 := newCA(t, "Unregistered Issuing CA", root)
	leaf2, leaf2Key := newLeaf(t, inter2, "builder 2", leafOpts{})
	otherRoot := newCA(t, "Other Root", nil)
	stranger, strangerKey := newLeaf(t, otherRoot, "stranger", leafOpts{})
	pol := x509Policy(t, pemOf(root.cert), pemOf(registered, inter.cert))

	ct := "application/vnd.cyclonedx+json"
	stmt := func(key crypto.Signer, iss string, ident map[any]any, payload string) []byte {
		h := map[any]any{int64(15): claims(iss, "pkg:npm/left-pad@1.3.0"), int64(3): ct}
		for k, v := range ident {
			h[k] = v
		}
		return signCOSE(t, cose.AlgorithmES256, key, h, []byte(payload))
	}
	tests := []struct {
		name string
		b    []byte
		want error // nil: accepted
	}{
		{"x5chain leaf+intermediate", stmt(leafKey, sbomIssuer, map[any]any{int64(33): chainOf(leaf, inter.cert)}, cyclonedx), nil},
		{"x5t of a registered certificate", stmt(registeredKey, sbomIssuer, map[any]any{int64(34): x5t(registered)}, cyclonedx), nil},
		{"x5chain and matching x5t", stmt(leafKey, sbomIssuer, map[any]any{int64(33): chainOf(leaf, inter.cert), int64(34): x5t(leaf)}, cyclonedx), nil},
		{"x5chain with kid too", stmt(leafKey, sbomIssuer, map[any]any{int64(33): chainOf(leaf, inter.cert), int64(4): []byte("k")}, cyclonedx), nil},
		{"x5chain via an unregistered intermediate", stmt(leaf2Key, sbomIssuer, map[any]any{int64(33): chainOf(leaf2, inter2.cert)}, cyclonedx), nil},
		{"x5chain without the intermediate", stmt(leaf2Key, sbomIssuer, map[any]any{int64(33): leaf2.Raw}, cyclonedx), scitt.ErrRejected},
		{"expired leaf", stmt(expiredKey, sbomIssuer, map[any]any{int64(33): chainOf(expired, inter.cert)}, cyclonedx), scitt.ErrRejected},
		{"no digitalSignature key usage", stmt(noSigKey, sbomIssuer, map[any]any{int64(33): chainOf(noSig, inter.cert)}, cyclonedx), scitt.ErrRejected},
		{"other trust anchor", stmt(strangerKey, sbomIssuer, map[any]any{int64(33): chainOf(stranger, otherRoot.cert)}, cyclonedx), scitt.ErrRejected},
		{"x5t of an unregistered certificate", stmt(leafKey, sbomIssuer, map[any]any{int64(34): x5t(leaf)}, cyclonedx), scitt.ErrRejected},
		{"x5t not matching x5chain", stmt(leafKey, sbomIssuer, map[any]any{int64(33): chainOf(leaf, inter.cert), int64(34): x5t(registered)}, cyclonedx), scitt.ErrRejected},
		{"signed by another key", stmt(registeredKey, sbomIssuer, map[any]any{int64(33): chainOf(leaf, inter.cert)}, cyclonedx), scitt.ErrBadSignature},
		{"iss not a URI", stmt(leafKey, "sbom builder", map[any]any{int64(33): chainOf(leaf, inter.cert)}, cyclonedx), scitt.ErrMalformed},
		{"unknown issuer URI", stmt(leafKey, "https://other.example", map[any]any{int64(33): chainOf(leaf, inter.cert)}, cyclonedx), scitt.ErrRejected},
		{"schema: not CycloneDX", stmt(leafKey, sbomIssuer, map[any]any{int64(33): chainOf(leaf, inter.cert)}, `{"bomFormat":"SPDX","specVersion":"1"}`), scitt.ErrRejected},
		{"x5chain not certificates", stmt(leafKey, sbomIssuer, map[any]any{int64(33): []any{[]byte("junk")}}, cyclonedx), scitt.ErrMalformed},
		{"x5t with an unknown hash", stmt(leafKey, sbomIssuer, map[any]any{int64(34): []any{int64(-99), []byte("x")}}, cyclonedx), scitt.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := scitt.ParseStatement(tt.b)
			if err == nil {
				err = pol.Check(s, len(tt.b))
			}
			if (tt.want == nil) != (err == nil) || (tt.want != nil && !errors.Is(err, tt.want)) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
	// An EdDSA statement by kid is not accepted for an issuer with no keys.
	kidStmt := signCOSE(t, cose.AlgorithmES256, leafKey, map[any]any{int64(15): claims(sbomIssuer, "x"), int64(3): ct, int64(4): []byte("kid")}, []byte(cyclonedx))
	s, err := scitt.ParseStatement(kidStmt)
	if err != nil {
		t.Fatal(err)
	}
	if err := pol.Check(s, len(kidStmt)); !errors.Is(err, scitt.ErrRejected) {
		t.Fatalf("kid statement for an x509-only issuer: %v", err)
	}
}

func TestX509PolicyErrors(t *testing.T) {
	root := newCA(t, "Root CA", nil)
	for name, pol := range map[string]string{
		"name not a URI": fmt.Sprintf("issuers:\n  - name: plain\n    x509: {trust_anchors: %q}\n    content_types: [\"*/*\"]\n", pemOf(root.cert)),
		"no anchors":     "issuers:\n  - name: https://a.example\n    x509: {trust_anchors: \"\"}\n",
		"not PEM":        "issuers:\n  - name: https://a.example\n    x509: {trust_anchors: \"hello\"}\n",
		"no identity":    "issuers:\n  - name: https://a.example\n    content_types: [\"*/*\"]\n",
	} {
		if _, err := scitt.ParsePolicy([]byte(pol)); err == nil {
			t.Errorf("%s: policy accepted", name)
		}
	}
}

func FuzzParseX5Chain(f *testing.F) {
	root := newCA(f, "Root CA", nil)
	leaf, _ := newLeaf(f, root, "leaf", leafOpts{})
	for _, v := range []any{leaf.Raw, []any{leaf.Raw, root.cert.Raw}, []any{}, "text"} {
		b, err := cbor.Marshal(v)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		certs, err := scitt.ParseX5Chain(b)
		if err != nil {
			if !errors.Is(err, scitt.ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if len(certs) == 0 || len(certs) > 8 {
			t.Fatalf("%d certificates accepted", len(certs))
		}
	})
}
