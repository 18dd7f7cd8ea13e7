package scitt_test

import (
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/veraison/go-cose"
	"github.com/vigilnet/vigil/scitt"
)

func TestMediaPattern(t *testing.T) {
	tests := []struct {
		pattern string
		match   []string
		miss    []string
	}{
		{"application/vnd.cyclonedx+json", []string{"application/vnd.cyclonedx+json"}, []string{"application/vnd.cyclonedx+xml", "text/vnd.cyclonedx+json"}},
		{"Application/*", []string{"application/json", "application/vnd.in-toto+json"}, []string{"text/plain"}},
		{"application/*+json", []string{"application/vnd.in-toto+json", "application/spdx+json"}, []string{"application/json", "application/+json", "text/x+json"}},
		{"*/*", []string{"text/plain", "application/cbor"}, nil},
	}
	for _, tt := range tests {
		p, err := scitt.ParseMediaPattern(tt.pattern)
		if err != nil {
			t.Fatalf("%s: %v", tt.pattern, err)
		}
		for _, m := range tt.match {
			if !p.Match(m) {
				t.Errorf("%s does not match %s", tt.pattern, m)
			}
		}
		for _, m := range tt.miss {
			if p.Match(m) {
				t.Errorf("%s matches %s", tt.pattern, m)
			}
		}
	}
	for _, bad := range []string{"", "json", "*/json", "application/", "application/js on", "application/a*b", "application/*+", "app lication/x", "application/*+*"} {
		if _, err := scitt.ParseMediaPattern(bad); err == nil {
			t.Errorf("pattern %q accepted", bad)
		}
	}
}

func FuzzMediaPattern(f *testing.F) {
	for _, s := range []string{"application/*", "application/vnd.cyclonedx+json", "*/*", "application/*+json", "text/plain; charset=utf-8", "a/b/c"} {
		f.Add(s, "application/vnd.cyclonedx+json")
	}
	f.Fuzz(func(t *testing.T, pattern, mt string) {
		p, err := scitt.ParseMediaPattern(pattern)
		if err != nil {
			return
		}
		// The canonical form parses back to the same pattern.
		q, err := scitt.ParseMediaPattern(p.String())
		if err != nil || q != p {
			t.Fatalf("%q -> %q does not round-trip: %v", pattern, p, err)
		}
		n, err := scitt.NormalizeMediaType(mt)
		if err != nil {
			return
		}
		if n != strings.ToLower(n) || strings.Contains(n, "*") {
			t.Fatalf("normalized %q to %q", mt, n)
		}
		_ = p.Match(n)
		if all, _ := scitt.ParseMediaPattern("*/*"); !all.Match(n) {
			t.Fatalf("*/* does not match %q", n)
		}
	})
}

const inToto = `{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"app","digest":{"sha256":"` +
	"0000000000000000000000000000000000000000000000000000000000000000" + `"}}],"predicateType":"https://slsa.dev/provenance/v1","predicate":{}}`

// generalPolicy lets provider.example register in-toto statements and any
// application/* type by kid, and keeps a legacy "kinds" issuer.
func generalPolicy(t testing.TB, e *testEnv) *scitt.Policy {
	t.Helper()
	pol := fmt.Sprintf(`
issuers:
  - name: provider.example
    keys: [%q]
    kinds: [inventory]
    content_types:
      - type: application/vnd.in-toto+json
        schema:
          format: json
          required: [_type, subject, predicateType]
          const: {_type: "https://in-toto.io/Statement/v1"}
      - application/*
  - name: auditor.example
    keys: [%q]
    kinds: [endorsement]
    hash_envelopes: false
`, e.issuer.Public().String(), e.auditor.Public().String())
	p, err := scitt.ParsePolicy([]byte(pol))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func kidStatement(t testing.TB, key *scitt.PrivateKey, hdr map[any]any, payload []byte) []byte {
	t.Helper()
	h := map[any]any{int64(4): key.KID(), int64(15): claims(key.Name, "urn:test")}
	for k, v := range hdr {
		h[k] = v
	}
	return signCOSE(t, cose.AlgorithmEdDSA, ed25519.PrivateKey(key.Key), h, payload)
}

func TestContentTypePolicy(t *testing.T) {
	e := newEnv(t)
	pol := generalPolicy(t, e)
	digest := sha256.Sum256([]byte("any artifact"))
	tests := []struct {
		name string
		b    []byte
		want error
	}{
		{"in-toto statement", kidStatement(t, e.issuer, map[any]any{int64(3): "application/vnd.in-toto+json"}, []byte(inToto)), nil},
		{"in-toto with parameters", kidStatement(t, e.issuer, map[any]any{int64(3): "application/vnd.in-toto+json; charset=utf-8"}, []byte(inToto)), nil},
		{"in-toto failing its schema", kidStatement(t, e.issuer, map[any]any{int64(3): "application/vnd.in-toto+json"}, []byte(`{"_type":"x","subject":[],"predicateType":"p"}`)), scitt.ErrRejected},
		{"in-toto not JSON", kidStatement(t, e.issuer, map[any]any{int64(3): "application/vnd.in-toto+json"}, []byte(`{"_type"`)), scitt.ErrRejected},
		{"any application/* type, no schema", kidStatement(t, e.issuer, map[any]any{int64(3): "application/octet-stream"}, []byte{0, 1, 2}), nil},
		{"text/* not allowed", kidStatement(t, e.issuer, map[any]any{int64(3): "text/plain"}, []byte("hi")), scitt.ErrRejected},
		{"built-in kind keeps its schema under application/*", kidStatement(t, e.issuer, map[any]any{int64(3): scitt.KindConfiguration.ContentType()}, []byte(`{"resource":"x"}`)), scitt.ErrRejected},
		{"built-in kind by legacy kinds", kidStatement(t, e.issuer, map[any]any{int64(3): scitt.KindInventory.ContentType()}, payload(scitt.KindInventory, 1)), nil},
		{"hash envelope of any type", kidStatement(t, e.issuer, map[any]any{int64(258): int64(-16), int64(259): "application/spdx+json", int64(260): "https://x.example/sbom"}, digest[:]), nil},
		{"hash envelope, wrong digest size", kidStatement(t, e.issuer, map[any]any{int64(258): int64(-43), int64(259): "application/spdx+json"}, digest[:]), scitt.ErrMalformed},
		{"hash envelope without 259", kidStatement(t, e.issuer, map[any]any{int64(258): int64(-16)}, digest[:]), scitt.ErrMalformed},
		{"legacy issuer: kind", kidStatement(t, e.auditor, map[any]any{int64(3): scitt.KindEndorsement.ContentType()}, payload(scitt.KindEndorsement, 1)), nil},
		{"legacy issuer: other type", kidStatement(t, e.auditor, map[any]any{int64(3): "application/json"}, []byte(`{}`)), scitt.ErrRejected},
		{"content type a CoAP number", kidStatement(t, e.issuer, map[any]any{int64(3): int64(50)}, []byte(`{}`)), scitt.ErrMalformed},
		{"content type not a media type", kidStatement(t, e.issuer, map[any]any{int64(3): "a/b c"}, []byte(`{}`)), scitt.ErrMalformed},
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
}

// TestLegacyPolicyFile checks that a policy written for kinds only (the
// format before content types) parses and means the same.
func TestLegacyPolicyFile(t *testing.T) {
	e := newEnv(t) // its policy uses kinds only
	for _, tt := range []struct {
		key  *scitt.PrivateKey
		kind scitt.Kind
		ok   bool
	}{
		{e.issuer, scitt.KindInventory, true},
		{e.issuer, scitt.KindConfiguration, true},
		{e.issuer, scitt.KindEndorsement, false},
		{e.auditor, scitt.KindEndorsement, true},
	} {
		b := sign(t, tt.key, tt.kind, 1, scitt.SignOptions{})
		s, err := scitt.ParseStatement(b)
		if err != nil {
			t.Fatal(err)
		}
		if err := e.policy.Check(s, len(b)); (err == nil) != tt.ok {
			t.Errorf("%s %s: %v", tt.key.Name, tt.kind, err)
		}
		if s.Kind != tt.kind || s.ContentType != tt.kind.ContentType() {
			t.Errorf("parsed kind %q content type %q", s.Kind, s.ContentType)
		}
	}
	if _, err := scitt.ParsePolicy([]byte("issuers:\n  - name: a\n    keys: []\n    content_types: [\"application/*\"]\n    schema: x\n")); err == nil {
		t.Error("unknown field accepted")
	}
	if _, err := scitt.ParsePolicy([]byte(fmt.Sprintf("issuers:\n  - name: provider.example\n    keys: [%q]\n    content_types: [{type: application/json, schema: {format: xml}}]\n", e.issuer.Public()))); err == nil {
		t.Error("unknown schema format accepted")
	}
}
