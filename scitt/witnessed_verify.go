package scitt

import (
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"

	"github.com/vigilnet/vigil/roster"
	"github.com/vigilnet/vigil/tlog"
	"github.com/vigilnet/vigil/tlog/tlogproof"
)

// WitnessedReceiptContentType is the media type of an encoded WitnessedReceipt.
const WitnessedReceiptContentType = "application/vnd.vigil.witnessed-receipt+cbor"

// WitnessedReceipt binds a receipt to a checkpoint the witnesses cosigned:
//
//	{"receipt": bstr, "checkpoint": bstr, "consistency": [* bstr]}
//
// Receipt is a COSE receipt for the entry at tree size m; Checkpoint is the
// log's signed note at size n >= m with the witnesses' cosignatures;
// Consistency is the RFC 9162 consistency proof from m to n, empty when
// m == n.
type WitnessedReceipt struct {
	Receipt     []byte   `cbor:"receipt"`
	Checkpoint  []byte   `cbor:"checkpoint"`
	Consistency [][]byte `cbor:"consistency"`
}

// Marshal encodes w in deterministic CBOR.
func (w *WitnessedReceipt) Marshal() ([]byte, error) {
	if w.Consistency == nil {
		w.Consistency = [][]byte{}
	}
	return coreEnc.Marshal(w)
}

// maxConsistencyHashes bounds a consistency proof: at most 2*63 hashes for
// trees below 2^63 leaves.
const maxConsistencyHashes = 126

// ParseWitnessedReceipt decodes a witnessed receipt strictly: unknown or
// duplicate keys, missing fields and hashes that are not 32 bytes are
// refused; nothing cryptographic is checked.
func ParseWitnessedReceipt(b []byte) (*WitnessedReceipt, error) {
	var raw map[string]cborRaw
	if err := strictDec.Unmarshal(b, &raw); err != nil {
		return nil, invalid("witnessed receipt: %v", err)
	}
	for k := range raw {
		switch k {
		case "receipt", "checkpoint", "consistency":
		default:
			return nil, invalid("witnessed receipt: unknown field %q", k)
		}
	}
	w := &WitnessedReceipt{}
	if err := strictDec.Unmarshal(raw["receipt"], &w.Receipt); err != nil || len(w.Receipt) == 0 {
		return nil, invalid("witnessed receipt: receipt missing or not a bstr")
	}
	if err := strictDec.Unmarshal(raw["checkpoint"], &w.Checkpoint); err != nil || len(w.Checkpoint) == 0 {
		return nil, invalid("witnessed receipt: checkpoint missing or not a bstr")
	}
	if raw["consistency"] == nil {
		return nil, invalid("witnessed receipt: consistency missing")
	}
	if err := strictDec.Unmarshal(raw["consistency"], &w.Consistency); err != nil {
		return nil, invalid("witnessed receipt: consistency is not an array of bstr")
	}
	if len(w.Consistency) > maxConsistencyHashes {
		return nil, invalid("witnessed receipt: %d consistency hashes", len(w.Consistency))
	}
	for _, h := range w.Consistency {
		if len(h) != 32 {
			return nil, invalid("witnessed receipt: consistency hash of %d bytes", len(h))
		}
	}
	return w, nil
}

// cborRaw holds one undecoded CBOR item.
type cborRaw []byte

func (r *cborRaw) UnmarshalCBOR(b []byte) error {
	*r = append((*r)[:0], b...)
	return nil
}

// WitnessedResult is what a verified witnessed receipt establishes.
type WitnessedResult struct {
	Receipt *Receipt
	// Checkpoint is the witnessed checkpoint; Cosigners the policy names
	// of the witnesses whose cosignatures on it verified, sorted.
	Checkpoint tlog.Checkpoint
	Cosigners  []string
}

// VerifyWitnessedReceipt checks, offline, that w proves statement is in the
// service's log (the receipt verifies under key) and that the witnesses of
// policy vouch for that tree: the checkpoint is signed by a log of policy,
// its cosignatures satisfy the policy's quorum, and it is the receipt's
// tree or extends it (consistency proof).
func VerifyWitnessedReceipt(statement, witnessed []byte, key *PublicKey, policy *roster.Roster) (*WitnessedResult, error) {
	entry, err := EntryFor(statement)
	if err != nil {
		return nil, err
	}
	w, err := ParseWitnessedReceipt(witnessed)
	if err != nil {
		return nil, err
	}
	return w.Verify(entry, key, policy)
}

// Verify checks w for a log entry; see VerifyWitnessedReceipt.
func (w *WitnessedReceipt) Verify(entry []byte, key *PublicKey, policy *roster.Roster) (*WitnessedResult, error) {
	r, err := ParseReceipt(w.Receipt)
	if err != nil {
		return nil, err
	}
	if err := r.Verify(entry, key); err != nil {
		return nil, err
	}
	// The receipt verified, so this is the root its signature covers.
	rootM, err := proof.RootFromInclusionProof(rfc6962.DefaultHasher, r.Proof.Index, r.Proof.Size, LeafHash(entry), r.Proof.Path)
	if err != nil {
		return nil, invalid("inclusion proof: %v", err)
	}
	origin, ok := tlog.OriginOf(w.Checkpoint)
	if !ok {
		return nil, invalid("checkpoint has no origin line")
	}
	lg, ok := policy.Log(origin)
	if !ok {
		return nil, invalid("checkpoint origin %q is not a log of the policy", origin)
	}
	c, n, err := tlog.VerifyCheckpoint(w.Checkpoint, origin, []note.Verifier{lg.Verifier}, policy.WitnessVerifiers()...)
	if err != nil {
		return nil, invalid("checkpoint: %v", err)
	}
	res := &WitnessedResult{Receipt: r, Checkpoint: c}
	var met bool
	res.Cosigners, met = tlogproof.Cosigners(n, policy)
	if !met {
		return nil, invalid("witness quorum %q not met: valid cosignatures from %v", policy.Quorum(), res.Cosigners)
	}
	m := r.Proof.Size
	switch {
	case c.Size < m:
		return nil, invalid("checkpoint size %d is below the receipt's tree size %d", c.Size, m)
	case c.Size == m && len(w.Consistency) != 0:
		return nil, invalid("consistency proof given for equal tree sizes")
	}
	if err := proof.VerifyConsistency(rfc6962.DefaultHasher, m, c.Size, w.Consistency, rootM, c.Root[:]); err != nil {
		return nil, invalid("the checkpoint does not extend the receipt's tree: %v", err)
	}
	return res, nil
}
