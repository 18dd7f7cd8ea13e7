package scitt

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"gopkg.in/yaml.v3"
)

// MaxEntryBytes is the largest log entry tlog-tiles entry bundles can hold.
const MaxEntryBytes = 1<<16 - 1

// DefaultMaxStatementBytes is the statement size limit when a policy sets none.
const DefaultMaxStatementBytes = 32 << 10

// ErrRejected reports a statement refused by the registration policy.
var ErrRejected = errors.New("rejected by registration policy")

// ErrTooLarge reports a statement over the size limit.
var ErrTooLarge = errors.New("statement too large")

// ErrUnsupportedMediaType reports a request body that is not application/cose.
var ErrUnsupportedMediaType = errors.New("unsupported media type")

// PolicyFile is the YAML registration policy (docs/scitt.md).
type PolicyFile struct {
	// MaxStatementBytes bounds a submitted statement; 0 means
	// DefaultMaxStatementBytes; at most MaxEntryBytes.
	MaxStatementBytes int          `yaml:"max_statement_bytes"`
	Issuers           []IssuerFile `yaml:"issuers"`
}

// IssuerFile is one issuer of a policy file.
type IssuerFile struct {
	// Name is the issuer: the statements' CWT iss. For an X.509 issuer it
	// is a URI.
	Name string `yaml:"name"`
	// Keys are Ed25519 note verifier keys named like the issuer, or
	// es256:<base64 DER SubjectPublicKeyInfo> for P-256 keys; statements
	// name them by kid.
	Keys []string `yaml:"keys"`
	// X509 configures certificate-based identity (x5chain, x5t).
	X509 *X509Config `yaml:"x509"`
	// ContentTypes are the media types (patterns) the issuer may register,
	// each optionally with a payload schema.
	ContentTypes []ContentTypeRule `yaml:"content_types"`
	// Kinds are built-in kinds the issuer may register: "inventory" is
	// short for the content type application/vnd.vigil.inventory+json.
	Kinds []string `yaml:"kinds"`
	// HashEnvelopes allows hash-envelope statements (default true).
	HashEnvelopes *bool `yaml:"hash_envelopes"`
}

// ContentTypeRule is one accepted media type pattern, written in YAML as
// the pattern alone or as {type: PATTERN, schema: SCHEMA}.
type ContentTypeRule struct {
	Type   string  `yaml:"type"`
	Schema *Schema `yaml:"schema"`
}

// UnmarshalYAML accepts a bare pattern string or the mapping form.
func (r *ContentTypeRule) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		return n.Decode(&r.Type)
	}
	type plain ContentTypeRule
	var v plain
	if err := n.Decode(&v); err != nil {
		return err
	}
	*r = ContentTypeRule(v)
	return nil
}

// Policy is a compiled registration policy. The zero Policy rejects everything.
type Policy struct {
	MaxStatementBytes int
	issuers           map[string]*issuer
	// now is the clock certificates are checked against (time.Now).
	now func() time.Time
}

type issuer struct {
	name          string
	keys          map[string]*issuerKey // by hex kid
	x509          *x509Issuer
	rules         []contentRule
	hashEnvelopes bool
}

type contentRule struct {
	pattern MediaPattern
	schema  *Schema
}

// ContentTypes returns the media types and patterns some issuer may
// register, sorted and without repeats, as discovery lists them.
func (p *Policy) ContentTypes() []string {
	seen := map[string]bool{}
	var out []string
	for _, is := range p.issuers {
		for _, r := range is.rules {
			if t := r.pattern.String(); !seen[t] {
				seen[t] = true
				out = append(out, t)
			}
		}
	}
	slices.Sort(out)
	return out
}

// ParsePolicy parses a YAML policy.
func ParsePolicy(b []byte) (*Policy, error) {
	var f PolicyFile
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, errEOF) {
		return nil, fmt.Errorf("parsing policy: %w", err)
	}
	p := &Policy{MaxStatementBytes: f.MaxStatementBytes, issuers: map[string]*issuer{}, now: time.Now}
	if p.MaxStatementBytes == 0 {
		p.MaxStatementBytes = DefaultMaxStatementBytes
	}
	if p.MaxStatementBytes < 0 || p.MaxStatementBytes > MaxEntryBytes {
		return nil, fmt.Errorf("parsing policy: max_statement_bytes must be in 1..%d", MaxEntryBytes)
	}
	for _, fi := range f.Issuers {
		if fi.Name == "" {
			return nil, errors.New("parsing policy: issuer without name")
		}
		if _, dup := p.issuers[fi.Name]; dup {
			return nil, fmt.Errorf("parsing policy: issuer %q listed twice", fi.Name)
		}
		is, err := compileIssuer(&fi)
		if err != nil {
			return nil, fmt.Errorf("parsing policy: issuer %q: %w", fi.Name, err)
		}
		p.issuers[fi.Name] = is
	}
	return p, nil
}

func compileIssuer(fi *IssuerFile) (*issuer, error) {
	is := &issuer{name: fi.Name, keys: map[string]*issuerKey{}, hashEnvelopes: fi.HashEnvelopes == nil || *fi.HashEnvelopes}
	for _, ks := range fi.Keys {
		k, err := parseIssuerKey(fi.Name, ks)
		if err != nil {
			return nil, err
		}
		is.keys[hex.EncodeToString(k.kid)] = k
	}
	if fi.X509 != nil {
		// SPEC: an X.509 issuer's iss MUST be a URI (architecture §3).
		if err := checkX509Issuer(fi.Name); err != nil {
			return nil, errors.New("an issuer with x509 must be named by a URI (its statements' CWT iss)")
		}
		var err error
		if is.x509, err = fi.X509.compile(); err != nil {
			return nil, err
		}
	}
	if len(is.keys) == 0 && is.x509 == nil {
		return nil, errors.New("neither keys nor x509")
	}
	for _, ks := range fi.Kinds {
		k, err := ParseKind(ks)
		if err != nil {
			return nil, err
		}
		pat, _ := ParseMediaPattern(k.ContentType())
		is.rules = append(is.rules, contentRule{pattern: pat})
	}
	for _, r := range fi.ContentTypes {
		pat, err := ParseMediaPattern(r.Type)
		if err != nil {
			return nil, err
		}
		if r.Schema != nil {
			if err := r.Schema.check(); err != nil {
				return nil, fmt.Errorf("content type %s: %w", r.Type, err)
			}
		}
		is.rules = append(is.rules, contentRule{pattern: pat, schema: r.Schema})
	}
	return is, nil
}

// errEOF is what yaml.v3 returns for an empty document.
var errEOF = io.EOF

// LoadPolicy reads a YAML policy file.
func LoadPolicy(path string) (*Policy, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading policy: %w", err)
	}
	return ParsePolicy(b)
}

// Check applies the policy to a parsed statement of size bytes: issuer
// known, identity (kid bound to the issuer, or a certificate chaining to
// its trust anchors), signature valid, content type allowed, payload
// schema. It returns an error wrapping ErrRejected, ErrTooLarge,
// ErrBadAlgorithm or ErrBadSignature.
func (p *Policy) Check(s *Statement, size int) error {
	if p == nil || p.issuers == nil {
		return fmt.Errorf("%w: no issuers are configured", ErrRejected)
	}
	if size > p.MaxStatementBytes || len(s.Entry) > MaxEntryBytes {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, size, p.MaxStatementBytes)
	}
	is, ok := p.issuers[s.Issuer]
	if !ok {
		return fmt.Errorf("%w: unknown issuer %q", ErrRejected, s.Issuer)
	}
	if s.X509() {
		if is.x509 == nil {
			return fmt.Errorf("%w: issuer %q has no x509 trust anchors", ErrRejected, s.Issuer)
		}
		now := time.Now
		if p.now != nil {
			now = p.now
		}
		if err := is.x509.verify(s, now()); err != nil {
			return err
		}
	} else {
		key, ok := is.keys[hex.EncodeToString(s.KID)]
		if !ok {
			return fmt.Errorf("%w: kid %x is not a key of issuer %q", ErrRejected, s.KID, s.Issuer)
		}
		if err := key.verify(s); err != nil {
			return err
		}
	}
	i := slices.IndexFunc(is.rules, func(r contentRule) bool { return r.pattern.Match(s.ContentType) })
	if i < 0 {
		return fmt.Errorf("%w: issuer %q may not register %s statements", ErrRejected, s.Issuer, s.ContentType)
	}
	if s.HashEnvelope {
		if !is.hashEnvelopes {
			return fmt.Errorf("%w: issuer %q may not register hash envelopes", ErrRejected, s.Issuer)
		}
		return nil
	}
	// Built-in kinds always keep their schema, whatever pattern admitted them.
	if s.Kind != "" {
		if err := ValidatePayload(s.Kind, s.Payload); err != nil {
			return fmt.Errorf("%w: %v", ErrRejected, err)
		}
	}
	if sc := is.rules[i].schema; sc != nil {
		if err := sc.Validate(s.Payload); err != nil {
			return fmt.Errorf("%w: %s payload: %v", ErrRejected, s.ContentType, err)
		}
	}
	return nil
}
