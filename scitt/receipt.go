package scitt

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/veraison/go-cose"
)

// vdsRFC9162 is the verifiable data structure of Vigil receipts.
const vdsRFC9162 = int64(1)

// ErrInvalidReceipt reports a receipt that does not prove what it claims.
var ErrInvalidReceipt = errors.New("invalid receipt")

// InclusionProof is one RFC 9162 inclusion proof as carried in a receipt:
// bstr .cbor [tree_size, leaf_index, [path...]].
//
// Deviation: for a tree of size 1 the path is empty and is encoded as an
// empty array, although the draft's CDDL says [+ bstr].
type InclusionProof struct {
	_     struct{} `cbor:",toarray"`
	Size  uint64
	Index uint64
	Path  [][]byte
}

// Receipt is a parsed COSE receipt.
type Receipt struct {
	Issuer  string
	Subject string
	KID     []byte
	Proof   InclusionProof
	msg     *cose.Sign1Message
}

// LeafHash returns the RFC 9162 leaf hash of a log entry.
func LeafHash(entry []byte) []byte { return rfc6962.DefaultHasher.HashLeaf(entry) }

// BuildReceipt signs an inclusion receipt for the entry at index in a tree of
// size whose root is root. iss is the service identity, sub the statement's
// subject. The payload (the root) is detached.
func BuildReceipt(key *PrivateKey, sub string, p InclusionProof, root []byte) ([]byte, error) {
	pb, err := coreEnc.Marshal(p)
	if err != nil {
		return nil, err
	}
	msg := cose.NewSign1Message()
	h := msg.Headers.Protected
	h.SetAlgorithm(key.Algorithm())
	h[labelKID] = key.KID()
	h[labelVDS] = vdsRFC9162
	h[labelCWTClaims] = map[int64]any{claimIss: key.Name, claimSub: sub}
	msg.Headers.Unprotected[labelVDP] = map[int64]any{-1: [][]byte{pb}}
	msg.Payload = root
	signer, err := key.coseSigner()
	if err != nil {
		return nil, err
	}
	if err := msg.Sign(rand.Reader, nil, signer); err != nil {
		return nil, fmt.Errorf("signing receipt: %w", err)
	}
	msg.Payload = nil // SPEC: the profile detaches the root.
	return msg.MarshalCBOR()
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidReceipt, fmt.Sprintf(format, args...))
}

// ParseReceipt decodes a receipt and its inclusion proof without verifying
// anything cryptographic. A receipt with more than one proof, or with
// anything but inclusion proofs in its vdp, is invalid.
func ParseReceipt(b []byte) (*Receipt, error) {
	if err := strictDec.Wellformed(b); err != nil {
		return nil, invalid("%v", err)
	}
	var msg cose.Sign1Message
	if err := msg.UnmarshalCBOR(b); err != nil {
		return nil, invalid("%v", err)
	}
	if msg.Payload != nil {
		return nil, invalid("payload must be detached")
	}
	p := msg.Headers.Protected
	alg, err := p.Algorithm()
	if err != nil || !receiptAlgorithm(alg) {
		return nil, invalid("alg must be EdDSA or ES256")
	}
	if v, ok := p[labelVDS].(int64); !ok || v != vdsRFC9162 {
		return nil, invalid("vds (395) must be 1 (RFC9162_SHA256)")
	}
	r := &Receipt{msg: &msg}
	if r.KID, _ = p[labelKID].([]byte); len(r.KID) == 0 {
		return nil, invalid("kid (4) missing")
	}
	claims, ok := p[labelCWTClaims].(map[any]any)
	if !ok {
		return nil, invalid("CWT claims (15) missing")
	}
	r.Issuer, _ = claims[claimIss].(string)
	r.Subject, _ = claims[claimSub].(string)
	if r.Issuer == "" {
		return nil, invalid("CWT iss missing")
	}
	vdp, ok := msg.Headers.Unprotected[labelVDP].(map[any]any)
	if !ok {
		return nil, invalid("vdp (396) missing")
	}
	// A Vigil receipt carries exactly what the service issues: one
	// inclusion proof and nothing else, so no extra or malformed proof can
	// ride along unverified.
	for k := range vdp {
		if k != int64(-1) {
			return nil, invalid("vdp (396) holds %v; a Vigil receipt carries only inclusion proofs (-1)", k)
		}
	}
	proofs, ok := vdp[int64(-1)].([]any)
	if !ok || len(proofs) == 0 {
		return nil, invalid("no inclusion proof in vdp")
	}
	if len(proofs) != 1 {
		return nil, invalid("%d inclusion proofs in vdp; a Vigil receipt carries exactly one", len(proofs))
	}
	pb, ok := proofs[0].([]byte)
	if !ok {
		return nil, invalid("inclusion proof is not a bstr")
	}
	if err := strictDec.Unmarshal(pb, &r.Proof); err != nil {
		return nil, invalid("decoding inclusion proof: %v", err)
	}
	if r.Proof.Index >= r.Proof.Size {
		return nil, invalid("leaf index %d not below tree size %d", r.Proof.Index, r.Proof.Size)
	}
	for _, h := range r.Proof.Path {
		if len(h) != sha256.Size {
			return nil, invalid("inclusion path hash of %d bytes", len(h))
		}
	}
	return r, nil
}

// VerifyReceipt checks, offline, that receipt proves statement (a signed or
// transparent statement; its unprotected header is ignored) is in the log
// of the service whose receipt key is key. key.Name must equal the receipt's
// iss unless it is empty.
func VerifyReceipt(statement, receipt []byte, key *PublicKey) error {
	entry, err := EntryFor(statement)
	if err != nil {
		return err
	}
	r, err := ParseReceipt(receipt)
	if err != nil {
		return err
	}
	return r.Verify(entry, key)
}

// Verify checks r against a log entry and the service key.
func (r *Receipt) Verify(entry []byte, key *PublicKey) error {
	if !bytes.Equal(r.KID, key.KID()) {
		return invalid("receipt kid %x is not the given key's %x", r.KID, key.KID())
	}
	if key.Name != "" && r.Issuer != key.Name {
		return invalid("receipt issuer %q, want %q", r.Issuer, key.Name)
	}
	// SPEC: compute the root from the proof, never compare with a carried root.
	root, err := proof.RootFromInclusionProof(rfc6962.DefaultHasher, r.Proof.Index, r.Proof.Size, LeafHash(entry), r.Proof.Path)
	if err != nil {
		return invalid("inclusion proof: %v", err)
	}
	if alg, _ := r.msg.Headers.Protected.Algorithm(); alg != key.Algorithm() {
		return invalid("receipt alg %v, the key's is %v", alg, key.Algorithm())
	}
	v, err := key.coseVerifier()
	if err != nil {
		return err
	}
	msg := *r.msg
	msg.Payload = root
	if err := msg.Verify(nil, v); err != nil {
		return invalid("signature: %v", err)
	}
	return nil
}

// Transparent returns statement with receipt attached in its unprotected
// header (label 394), making a Transparent Statement.
func Transparent(statement, receipt []byte) ([]byte, error) {
	var msg cose.Sign1Message
	if err := msg.UnmarshalCBOR(statement); err != nil {
		return nil, malformed("%v", err)
	}
	var list [][]byte
	if old, ok := msg.Headers.Unprotected[labelReceipts].([]any); ok {
		for _, o := range old {
			if b, ok := o.([]byte); ok {
				list = append(list, b)
			}
		}
	}
	msg.Headers.Unprotected[labelReceipts] = append(list, receipt)
	return msg.MarshalCBOR()
}
