package scitt

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"

	"github.com/fxamacker/cbor/v2"
	"github.com/veraison/go-cose"
)

// Kind is a built-in statement kind. Each kind has a payload schema
// (docs/scitt.md) and a media type carried in the protected header: label 3
// (content type) for a plain statement, label 259 (preimage content type) for
// a hash envelope.
type Kind string

// The statement kinds.
const (
	KindInventory     Kind = "inventory"
	KindConfiguration Kind = "configuration"
	KindEndorsement   Kind = "endorsement"
	// KindEvidence is a Vigil evidence file (vigil-evidence/v1, package
	// gossip/evidence): a node's record of a split view it found.
	KindEvidence Kind = "evidence"
)

// Kinds lists every statement kind.
var Kinds = []Kind{KindInventory, KindConfiguration, KindEndorsement, KindEvidence}

// ContentType returns the media type of k's payload.
func (k Kind) ContentType() string {
	if k == KindEvidence {
		return "application/vnd.vigil.evidence"
	}
	return "application/vnd.vigil." + string(k) + "+json"
}

// KindFromContentType maps a media type back to a Kind.
func KindFromContentType(ct string) (Kind, bool) {
	for _, k := range Kinds {
		if strings.EqualFold(ct, k.ContentType()) {
			return k, true
		}
	}
	return "", false
}

// ParseKind parses a kind name.
func ParseKind(s string) (Kind, error) {
	for _, k := range Kinds {
		if string(k) == s {
			return k, nil
		}
	}
	return "", fmt.Errorf("unknown statement kind %q", s)
}

// COSE header labels used by statements and receipts.
const (
	labelAlg                 = int64(1)
	labelCrit                = int64(2)
	labelContentType         = int64(3)
	labelKID                 = int64(4)
	labelCWTClaims           = int64(15)
	labelX5Chain             = int64(33)
	labelX5T                 = int64(34)
	labelPayloadHashAlg      = int64(258)
	labelPreimageContentType = int64(259)
	labelPayloadLocation     = int64(260)
	labelReceipts            = int64(394)
	labelVDS                 = int64(395)
	labelVDP                 = int64(396)

	claimIss = int64(1)
	claimSub = int64(2)

	algSHA256 = int64(-16)
)

// ErrMalformed reports input that is not a well-formed signed statement.
var ErrMalformed = errors.New("malformed signed statement")

// Statement is a parsed, not yet verified, Signed Statement.
type Statement struct {
	Issuer  string
	Subject string
	// ContentType is the payload's bare media type (lower case, without
	// parameters): label 3, or label 259 for a hash envelope.
	ContentType string
	// Kind is the built-in kind ContentType names, or "" for other types.
	Kind Kind
	Alg  cose.Algorithm
	// KID identifies a policy key; it is required unless the statement
	// names an X.509 certificate (X5Chain or X5T).
	KID     []byte
	X5Chain []*x509.Certificate
	X5T     *X5T
	// HashEnvelope is set when the payload is the digest of the real
	// artifact (COSE hash envelope); Payload is then that digest.
	HashEnvelope    bool
	PayloadLocation string
	Payload         []byte

	// Entry is what the log stores: the statement re-encoded with its
	// unprotected header reset to {} (a tagged COSE_Sign1).
	Entry []byte

	msg *cose.Sign1Message
}

// X509 reports whether the statement's issuer is identified by a certificate.
func (s *Statement) X509() bool { return len(s.X5Chain) > 0 || s.X5T != nil }

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// hashAlgs are the COSE hash envelope payload hash algorithms accepted, by
// digest size.
var hashAlgs = map[int64]int{-16: 32, -43: 48, -44: 64} // SHA-256, SHA-384, SHA-512

// ParseStatement decodes a tagged COSE_Sign1 signed statement and checks the
// header parameters SCITT requires. It does not verify the signature.
func ParseStatement(b []byte) (*Statement, error) {
	if err := strictDec.Wellformed(b); err != nil {
		return nil, malformed("%v", err)
	}
	var msg cose.Sign1Message
	if err := msg.UnmarshalCBOR(b); err != nil {
		return nil, malformed("%v", err)
	}
	p := msg.Headers.Protected
	if err := checkCrit(p); err != nil {
		return nil, err
	}
	if msg.Payload == nil {
		return nil, fmt.Errorf("%w: detached payloads are not accepted", ErrPayloadMissing)
	}
	s := &Statement{Payload: msg.Payload, msg: &msg}
	alg, err := p.Algorithm()
	if err != nil {
		return nil, malformed("protected header alg: %v", err)
	}
	s.Alg = alg
	if v, ok := p[labelX5Chain]; ok {
		if s.X5Chain, err = x5chainValue(v); err != nil {
			return nil, err
		}
	}
	if v, ok := p[labelX5T]; ok {
		if s.X5T, err = x5tValue(v); err != nil {
			return nil, err
		}
	}
	if v, ok := p[labelKID]; ok {
		if s.KID, ok = v.([]byte); !ok || len(s.KID) == 0 {
			return nil, malformed("protected header kid (4) must be a non-empty bstr")
		}
	}
	// SPEC: kid MUST be present when neither x5t nor x5chain is in the
	// protected header (architecture §3).
	if s.KID == nil && !s.X509() {
		return nil, malformed("protected header has no kid (4), x5chain (33) or x5t (34)")
	}
	// SPEC: CWT claims (15) with iss and sub MUST be in the protected header.
	claims, ok := p[labelCWTClaims].(map[any]any)
	if !ok {
		return nil, malformed("protected header CWT claims (15) missing")
	}
	iss, _ := claims[claimIss].(string)
	sub, _ := claims[claimSub].(string)
	if iss == "" || sub == "" {
		return nil, malformed("CWT claims need iss (1) and sub (2) text strings")
	}
	s.Issuer, s.Subject = iss, sub
	if s.X509() {
		if err := checkX509Issuer(iss); err != nil {
			return nil, err
		}
	}
	var ct string
	if hashAlg, ok := p[labelPayloadHashAlg]; ok {
		// SPEC: COSE hash envelope: 258 payload hash alg, 259 preimage content
		// type, 260 payload location; label 3 MUST NOT be present.
		v, ok := hashAlg.(int64)
		size, known := hashAlgs[v]
		if !ok || !known {
			return nil, malformed("payload hash alg (258) must be SHA-256 (-16), SHA-384 (-43) or SHA-512 (-44)")
		}
		if _, ok := p[labelContentType]; ok {
			return nil, malformed("hash envelope must not carry content type (3)")
		}
		if len(s.Payload) != size {
			return nil, malformed("hash envelope payload of %d bytes, the digest of alg %d has %d", len(s.Payload), v, size)
		}
		if ct, ok = p[labelPreimageContentType].(string); !ok {
			return nil, malformed("hash envelope needs a preimage content type (259) media type string")
		}
		s.HashEnvelope = true
		if loc, ok := p[labelPayloadLocation]; ok {
			if s.PayloadLocation, ok = loc.(string); !ok {
				return nil, malformed("payload location (260) must be a text string")
			}
		}
	} else if ct, ok = p[labelContentType].(string); !ok {
		return nil, malformed("content type (3) must be a media type string")
	}
	if s.ContentType, err = NormalizeMediaType(ct); err != nil {
		return nil, malformed("content type: %v", err)
	}
	s.Kind, _ = KindFromContentType(s.ContentType)
	s.Entry, err = entryBytes(&msg)
	if err != nil {
		return nil, malformed("%v", err)
	}
	return s, nil
}

// entryBytes encodes msg as a tagged COSE_Sign1 with unprotected header {}.
// SPEC: the unprotected header MUST be reset to {} before the statement
// enters the log (architecture §3); the protected bytes are kept verbatim.
// The encoding is written by hand (definite lengths, shortest form heads):
// d2 84 <bstr protected> a0 <bstr payload> <bstr signature>.
func entryBytes(msg *cose.Sign1Message) ([]byte, error) {
	raw := msg.Headers.RawProtected
	if raw == nil {
		var err error
		if raw, err = msg.Headers.MarshalProtected(); err != nil {
			return nil, err
		}
	}
	var prot []byte
	if err := cbor.Unmarshal(raw, &prot); err != nil {
		return nil, err
	}
	b := make([]byte, 0, 2+9+len(prot)+1+9+len(msg.Payload)+9+len(msg.Signature))
	b = append(b, 0xd2, 0x84)
	b = appendBstr(b, prot)
	b = append(b, 0xa0)
	b = appendBstr(b, msg.Payload)
	b = appendBstr(b, msg.Signature)
	return b, nil
}

// appendBstr appends a CBOR byte string (major type 2) with a shortest head.
func appendBstr(b, v []byte) []byte {
	n := uint64(len(v))
	switch {
	case n < 24:
		b = append(b, 0x40|byte(n))
	case n <= 0xff:
		b = append(b, 0x58, byte(n))
	case n <= 0xffff:
		b = append(b, 0x59, byte(n>>8), byte(n))
	case n <= 0xffffffff:
		b = append(b, 0x5a, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	default:
		b = append(b, 0x5b, byte(n>>56), byte(n>>48), byte(n>>40), byte(n>>32), byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	return append(b, v...)
}

// EntryFor returns the log entry for a signed or transparent statement:
// its bytes with the unprotected header reset to {}.
func EntryFor(statement []byte) ([]byte, error) {
	var msg cose.Sign1Message
	if err := msg.UnmarshalCBOR(statement); err != nil {
		return nil, malformed("%v", err)
	}
	return entryBytes(&msg)
}

// Verify checks the statement's signature with key. Only EdDSA is accepted.
func (s *Statement) Verify(key ed25519.PublicKey) error {
	if s.Alg != cose.AlgorithmEdDSA {
		return fmt.Errorf("%w: %v", ErrBadAlgorithm, s.Alg)
	}
	v, err := cose.NewVerifier(cose.AlgorithmEdDSA, key)
	if err != nil {
		return err
	}
	if err := s.msg.Verify(nil, v); err != nil {
		return fmt.Errorf("%w: %v", ErrBadSignature, err)
	}
	return nil
}

// Errors from statement checks.
var (
	ErrBadSignature   = errors.New("bad signature")
	ErrBadAlgorithm   = errors.New("unsupported signature algorithm")
	ErrPayloadMissing = errors.New("payload missing")
)

// SignOptions choose how SignStatement encodes the statement.
type SignOptions struct {
	// HashEnvelope signs SHA-256(payload) instead of payload and records
	// Location (may be empty) as where the content is kept.
	HashEnvelope bool
	Location     string
}

// SignStatement creates a tagged COSE_Sign1 signed statement of kind about
// subject, issued by key.Name. The payload is checked against the kind's
// schema first (also for hash envelopes, whose content the issuer holds).
func SignStatement(key *PrivateKey, subject string, kind Kind, payload []byte, opts SignOptions) ([]byte, error) {
	if err := ValidatePayload(kind, payload); err != nil {
		return nil, err
	}
	msg := cose.NewSign1Message()
	p := msg.Headers.Protected
	p.SetAlgorithm(cose.AlgorithmEdDSA)
	p[labelKID] = key.KID()
	p[labelCWTClaims] = map[int64]any{claimIss: key.Name, claimSub: subject}
	if opts.HashEnvelope {
		sum := sha256.Sum256(payload)
		msg.Payload = sum[:]
		p[labelPayloadHashAlg] = algSHA256
		p[labelPreimageContentType] = kind.ContentType()
		if opts.Location != "" {
			p[labelPayloadLocation] = opts.Location
		}
	} else {
		msg.Payload = payload
		p[labelContentType] = kind.ContentType()
	}
	signer, err := cose.NewSigner(cose.AlgorithmEdDSA, key.Key)
	if err != nil {
		return nil, err
	}
	if err := msg.Sign(rand.Reader, nil, signer); err != nil {
		return nil, fmt.Errorf("signing statement: %w", err)
	}
	return msg.MarshalCBOR()
}
