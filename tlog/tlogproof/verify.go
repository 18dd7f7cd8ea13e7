package tlogproof

import (
	"errors"
	"fmt"
	"sort"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"

	"github.com/vigilnet/vigil/roster"
	"github.com/vigilnet/vigil/tlog"
)

// Verification errors, distinguishable with errors.Is. Signature failures
// also wrap the tlog package's errors (tlog.ErrUnsigned, tlog.ErrBadSignature).
var (
	// ErrUnknownLog means the policy lists no log with the checkpoint's origin.
	ErrUnknownLog = errors.New("checkpoint origin is not a log of the policy")
	// ErrLogSignature means the checkpoint is not validly signed by the log
	// or carries an invalid signature from a known key.
	ErrLogSignature = errors.New("checkpoint signature invalid")
	// ErrQuorum means the valid cosignatures do not satisfy the policy's quorum.
	ErrQuorum = errors.New("witness quorum not met")
	// ErrInclusion means the inclusion proof does not bind the leaf hash to
	// the checkpoint's root.
	ErrInclusion = errors.New("inclusion proof invalid")
)

// Result is what a verified proof establishes.
type Result struct {
	Checkpoint tlog.Checkpoint
	// Cosigners are the policy names of the witnesses whose cosignatures
	// verified, sorted.
	Cosigners []string
}

// LeafHash is the RFC 6962 leaf hash of an entry, SHA-256(0x00 || entry),
// for logs whose leaf is the entry itself.
func LeafHash(entry []byte) [32]byte {
	return [32]byte(rfc6962.DefaultHasher.HashLeaf(entry))
}

// Verify runs the spec's verification steps on p for the entry whose leaf
// hash is leafHash (step 1, application specific, is the caller's), with
// the logs, witnesses and quorum of policy. Cosignature timestamps are
// checked as part of each signature and otherwise ignored.
func Verify(p *Proof, leafHash [32]byte, policy *roster.Roster) (*Result, error) {
	// SPEC: step 2: the origin line is acceptable and the checkpoint is
	// signed by a log key configured for it.
	origin, ok := tlog.OriginOf(p.Checkpoint)
	if !ok {
		return nil, malformed("checkpoint has no origin line")
	}
	lg, ok := policy.Log(origin)
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownLog, origin)
	}
	// SPEC: step 3: every cosignature of a witness known to the verifier
	// is verified (a failing one rejects the proof), whatever its key type:
	// the roster builds each witness's note verifier.
	c, n, err := tlog.VerifyCheckpoint(p.Checkpoint, origin, []note.Verifier{lg.Verifier}, policy.WitnessVerifiers()...)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrLogSignature, err)
	}
	res := &Result{Checkpoint: c}
	var met bool
	res.Cosigners, met = Cosigners(n, policy)
	if !met {
		return nil, fmt.Errorf("%w: quorum %q, valid cosignatures from %v", ErrQuorum, policy.Quorum(), res.Cosigners)
	}
	// SPEC: step 4: the inclusion proof binds the leaf hash to the root of
	// the verified checkpoint, at the proof's index and the checkpoint's size.
	if p.Index >= c.Size {
		return nil, fmt.Errorf("%w: index %d is not below the checkpoint's size %d", ErrInclusion, p.Index, c.Size)
	}
	hashes := make([][]byte, len(p.Hashes))
	for i := range p.Hashes {
		hashes[i] = p.Hashes[i][:]
	}
	if err := proof.VerifyInclusion(rfc6962.DefaultHasher, p.Index, c.Size, leafHash[:], hashes, c.Root[:]); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInclusion, err)
	}
	return res, nil
}

// Cosigners returns the policy names of the witnesses whose cosignatures
// on the verified note n are valid, sorted, and whether they meet the
// policy's quorum.
func Cosigners(n *note.Note, policy *roster.Roster) (names []string, quorumMet bool) {
	cosigned := map[string]bool{}
	for _, w := range policy.Witnesses() {
		if tlog.SignedBy(n, w.Verifier) {
			cosigned[w.Name] = true
			names = append(names, w.Name)
		}
	}
	sort.Strings(names)
	return names, policy.QuorumMet(cosigned)
}
