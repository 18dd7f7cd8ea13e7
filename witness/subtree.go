package witness

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"math/bits"

	"golang.org/x/mod/sumdb/note"

	"github.com/vigilnet/vigil/tlog"
)

// sign-subtree (c2sp.org/tlog-witness, optional): a client asks the witness
// to cosign a subtree [start, end) of a log, proving it consistent with a
// checkpoint the witness cosigned before (the reference checkpoint, which
// carries the witness's own cosignature). The witness's state does not
// change: the subtree is consistent with a tree it already vouched for.

// SubtreeSigner is a cosigning key that can sign subtrees: an ML-DSA-44
// subtree/v1 key (*tlog.MLDSASigner). Ed25519 cosignature/v1 cannot.
type SubtreeSigner interface {
	note.Signer
	VerifierKey() string
	SubtreeLine(origin string, start, end uint64, hash [32]byte) ([]byte, error)
}

var _ SubtreeSigner = (*tlog.MLDSASigner)(nil)

// SignSubtreeRequest is a parsed sign-subtree body.
type SignSubtreeRequest struct {
	// Start and End bound the subtree [Start, End).
	Start, End uint64
	// Hash is the subtree's Merkle hash.
	Hash [32]byte
	// Proof is the subtree consistency proof to the reference checkpoint.
	Proof [][]byte
	// Checkpoint is the reference checkpoint, a signed note.
	Checkpoint []byte
}

// ParseSignSubtreeRequest parses a sign-subtree body:
//
//	subtree <start> <end>
//	<base64 subtree hash>
//	<base64 hash>      (0..63 proof lines)
//	<empty line>
//	<reference checkpoint note>
//
// Errors wrap ErrMalformed (400).
func ParseSignSubtreeRequest(body []byte) (*SignSubtreeRequest, error) {
	lines, cp, err := cutRequestBody(body)
	if err != nil {
		return nil, err
	}
	rng, ok := bytes.CutPrefix(lines[0], []byte("subtree "))
	if !ok {
		return nil, fmt.Errorf("%w: first line is not \"subtree <start> <end>\"", ErrMalformed)
	}
	s, e, ok := bytes.Cut(rng, []byte(" "))
	if !ok {
		return nil, fmt.Errorf("%w: first line is not \"subtree <start> <end>\"", ErrMalformed)
	}
	start, err1 := parseSize(s)
	end, err2 := parseSize(e)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("%w: bad subtree range %q", ErrMalformed, rng)
	}
	if len(lines) < 2 {
		return nil, fmt.Errorf("%w: no subtree hash line", ErrMalformed)
	}
	h, err := decodeHash(lines[1])
	if err != nil {
		return nil, fmt.Errorf("%w: subtree hash line is not a base64 SHA-256 hash", ErrMalformed)
	}
	// SPEC: at most 63 proof lines, as for add-checkpoint.
	proof, err := parseProofTail(lines[2:], cp)
	if err != nil {
		return nil, err
	}
	r := &SignSubtreeRequest{Start: start, End: end, Proof: proof, Checkpoint: cp}
	r.Hash = h
	return r, nil
}

// Marshal encodes the request as a sign-subtree body.
func (r *SignSubtreeRequest) Marshal() []byte {
	b := fmt.Appendf(nil, "subtree %d %d\n", r.Start, r.End)
	b = base64.StdEncoding.AppendEncode(b, r.Hash[:])
	b = append(b, '\n')
	return appendProofTail(b, r.Proof, r.Checkpoint)
}

// SignSubtree checks req and returns the subtree cosignature lines, one per
// subtree-capable key, each with timestamp zero. Errors: ErrMalformed (400)
// for an invalid subtree or one past the checkpoint, ErrUnknownLog (404),
// ErrUnauthenticated (403) when the reference checkpoint carries no valid
// cosignature by this witness, ErrInconsistent (422) for a failing proof.
// The witness's state is read and written by nothing here.
func (w *Witness) SignSubtree(ctx context.Context, req *SignSubtreeRequest) ([]byte, error) {
	if len(w.subtreeSigners) == 0 {
		return nil, fmt.Errorf("%w: this witness has no subtree-capable (ML-DSA-44) key", ErrUnknownLog)
	}
	origin, ok := tlog.OriginOf(req.Checkpoint)
	if !ok {
		return nil, fmt.Errorf("%w: checkpoint has no origin line", ErrMalformed)
	}
	// SPEC: unknown origin → 404.
	if _, ok := w.cfg.Logs.Log(origin); !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownLog, origin)
	}
	// SPEC: the reference checkpoint must carry a valid cosignature by one
	// of this witness's own keys, else 403. The log's signature is not
	// needed: the witness checked it before it cosigned.
	cp, _, err := tlog.VerifyCheckpoint(req.Checkpoint, origin, w.own)
	switch {
	case errors.Is(err, tlog.ErrUnsigned), errors.Is(err, tlog.ErrBadSignature):
		return nil, fmt.Errorf("%w: reference checkpoint: %v", ErrUnauthenticated, err)
	case err != nil:
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	// SPEC: [start, end) must be a valid subtree and end ≤ checkpoint
	// size, else 400.
	if !ValidSubtree(req.Start, req.End) {
		return nil, fmt.Errorf("%w: [%d, %d) is not a valid subtree", ErrMalformed, req.Start, req.End)
	}
	if req.End > cp.Size {
		return nil, fmt.Errorf("%w: subtree end %d is past the checkpoint size %d", ErrMalformed, req.End, cp.Size)
	}
	// SPEC: a failing subtree consistency proof → 422.
	if err := VerifySubtreeConsistency(req.Start, req.End, cp.Size, req.Hash, cp.Root, req.Proof); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInconsistent, err)
	}
	var out []byte
	for _, s := range w.subtreeSigners {
		line, err := s.SubtreeLine(origin, req.Start, req.End, req.Hash)
		if err != nil {
			return nil, fmt.Errorf("cosigning subtree: %w", err)
		}
		out = append(out, line...)
	}
	return out, nil
}

// ValidSubtree reports whether [start, end) is a subtree in the sense of
// draft-ietf-plants-merkle-tree-certs-03 §4.1: non-empty, and start a
// multiple of the smallest power of two at least end − start.
func ValidSubtree(start, end uint64) bool {
	if start >= end {
		return false
	}
	n := end - start
	if n > 1<<63 {
		return false
	}
	ceil := uint64(1) << (64 - bits.LeadingZeros64(n-1))
	return start%ceil == 0
}

// ErrSubtreeProof is returned (wrapped) by VerifySubtreeConsistency.
var ErrSubtreeProof = errors.New("subtree consistency proof does not verify")

// VerifySubtreeConsistency checks a subtree consistency proof
// (draft-ietf-plants-merkle-tree-certs-03 §4.4): that the subtree
// [start, end) with hash node is part of the tree of size n with the given
// root. The walk goes up from the subtree's right edge: fn, sn and tn are
// the paths to the subtree's first and last leaves and to the tree's last
// leaf, losing a bit per level.
func VerifySubtreeConsistency(start, end, n uint64, node, root [32]byte, proof [][]byte) error {
	if !ValidSubtree(start, end) || end > n {
		return fmt.Errorf("%w: [%d, %d) is not a subtree of a tree of size %d", ErrSubtreeProof, start, end, n)
	}
	fn, sn, tn := start, end-1, n-1
	if sn == tn {
		// The subtree's right edge is the tree's: start where the
		// subtree's root is.
		for fn != sn {
			fn, sn, tn = fn>>1, sn>>1, tn>>1
		}
	} else {
		// Skip the levels where the right edge is a complete node of both.
		for fn != sn && sn&1 == 1 {
			fn, sn, tn = fn>>1, sn>>1, tn>>1
		}
	}
	var fr, sr [32]byte
	if fn == sn {
		// The subtree's root is a node of the tree: the proof omits it.
		fr, sr = node, node
	} else {
		if len(proof) == 0 || len(proof[0]) != 32 {
			return fmt.Errorf("%w: proof too short", ErrSubtreeProof)
		}
		fr, sr = hash32(proof[0]), hash32(proof[0])
		proof = proof[1:]
	}
	for _, p := range proof {
		if len(p) != 32 {
			return fmt.Errorf("%w: proof hash of %d bytes", ErrSubtreeProof, len(p))
		}
		if tn == 0 {
			return fmt.Errorf("%w: proof longer than the tree is high", ErrSubtreeProof)
		}
		if sn&1 == 1 || sn == tn {
			if fn < sn {
				fr = hashChildren(p, fr[:])
			}
			sr = hashChildren(p, sr[:])
			for sn&1 == 0 {
				fn, sn, tn = fn>>1, sn>>1, tn>>1
			}
		} else {
			sr = hashChildren(sr[:], p)
		}
		fn, sn, tn = fn>>1, sn>>1, tn>>1
	}
	if tn != 0 {
		return fmt.Errorf("%w: proof shorter than the tree is high", ErrSubtreeProof)
	}
	if fr != node {
		return fmt.Errorf("%w: subtree hash does not match", ErrSubtreeProof)
	}
	if sr != root {
		return fmt.Errorf("%w: root hash does not match", ErrSubtreeProof)
	}
	return nil
}

func hash32(b []byte) (h [32]byte) {
	copy(h[:], b)
	return h
}

// hashChildren is the RFC 6962 interior node hash SHA-256(0x01 || l || r).
func hashChildren(l, r []byte) [32]byte {
	h := sha256.New()
	h.Write([]byte{1})
	h.Write(l)
	h.Write(r)
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// ownKeys returns verifiers for the signers that publish a verifier key,
// and the signers that sign subtrees.
func ownKeys(signers []note.Signer) ([]note.Verifier, []SubtreeSigner, error) {
	var own []note.Verifier
	var subtree []SubtreeSigner
	for _, s := range signers {
		if vk, ok := s.(interface{ VerifierKey() string }); ok {
			v, err := tlog.NewWitnessVerifier(vk.VerifierKey())
			if err != nil {
				return nil, nil, fmt.Errorf("witness: own key: %w", err)
			}
			own = append(own, v)
		}
		if st, ok := s.(SubtreeSigner); ok {
			subtree = append(subtree, st)
		}
	}
	return own, subtree, nil
}
