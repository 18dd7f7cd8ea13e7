// Package evidence checks Vigil's split-view evidence offline: given only the
// roster (the logs' and witnesses' public keys), it decides whether an
// Evidence message proves that a log, or a witness, signed two incompatible
// histories, and says exactly what it proves. It is what `vigil verify` runs,
// and what every node runs before it stores or forwards evidence.
//
// It has no network, storage or clock dependencies. docs/evidence.md
// describes each kind and the file format (file.go).
package evidence

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"

	"golang.org/x/mod/sumdb/note"

	vpb "github.com/vigilnet/vigil/proto"
	"github.com/vigilnet/vigil/roster"
	"github.com/vigilnet/vigil/tlog"
)

// ErrInvalid is returned (wrapped, with the reason) for evidence that proves
// nothing.
var ErrInvalid = errors.New("invalid evidence")

// Finding is what a valid Evidence proves.
type Finding struct {
	Kind   vpb.Kind
	Origin string
	// A and B are the two checkpoints; A.Size <= B.Size.
	A, B tlog.Checkpoint
	// ProvenRootA is, for different sizes, the size-A root that B's tree
	// actually has according to the proof (≠ A.Root).
	ProvenRootA [32]byte
	// Witness is the roster name and WitnessKey the verifier key of the
	// witness that cosigned both (witness equivocation only).
	Witness    string
	WitnessKey string
}

// Statement says in one sentence exactly what the evidence proves.
func (f *Finding) Statement() string {
	var s string
	switch {
	case f.A.Size == f.B.Size:
		s = fmt.Sprintf("log %q signed two different roots for tree size %d (%x and %x)", f.Origin, f.A.Size, f.A.Root[:8], f.B.Root[:8])
	default:
		s = fmt.Sprintf("log %q signed size %d with root %x and size %d with root %x, whose first %d entries have root %x, so the two are inconsistent",
			f.Origin, f.A.Size, f.A.Root[:8], f.B.Size, f.B.Root[:8], f.A.Size, f.ProvenRootA[:8])
	}
	if f.Kind == vpb.Kind_KIND_WITNESS_EQUIVOCATION {
		s = fmt.Sprintf("witness %q (key %s) cosigned both checkpoints: %s", f.Witness, f.WitnessKey, s)
	}
	return s
}

// Verify checks e against the roster r and returns what it proves.
// Errors wrap ErrInvalid, except for malformed messages (proto.ErrMalformed).
//
// Checks: both notes are of one origin listed in r and carry a valid
// signature by that log's key, and every signature line whose name and key
// ID are the log's or a roster witness's verifies (a failing one
// invalidates the note, and the error names the line); then
//   - same size: the roots differ;
//   - different sizes m < n: the proof is a consistency proof from m to n
//     whose recomputed size-n root is B's root and whose recomputed size-m
//     root is not A's root;
//   - witness equivocation: one of the two above holds, witness_key is a
//     roster witness's key, and both notes carry its valid cosignature.
func Verify(e *vpb.Evidence, r *roster.Roster) (*Finding, error) {
	return VerifyWith(e, r, nil)
}

// Keys returns verifiers that behave exactly as the ones given, such as
// verifiers that consult a cache of signatures verified before.
type Keys func(vs ...note.Verifier) []note.Verifier

// VerifyWith is Verify with the roster's log and witness keys passed
// through keys (nil: used as they are). A node gives its cache of verified
// signatures: evidence is made of checkpoints whose signatures it has
// nearly always verified already in gossip, and every node checks every
// copy of it that is new to it.
func VerifyWith(e *vpb.Evidence, r *roster.Roster, keys Keys) (*Finding, error) {
	if keys == nil {
		keys = func(vs ...note.Verifier) []note.Verifier { return vs }
	}
	if err := vpb.CheckEvidence(e); err != nil {
		return nil, err
	}
	origin, ok := tlog.OriginOf(e.CheckpointA)
	if !ok {
		return nil, fmt.Errorf("%w: checkpoint A has no origin line", ErrInvalid)
	}
	if o, _ := tlog.OriginOf(e.CheckpointB); o != origin {
		return nil, fmt.Errorf("%w: checkpoints are of different logs", ErrInvalid)
	}
	lg, ok := r.Log(origin)
	if !ok {
		return nil, fmt.Errorf("%w: log %q is not in the roster", ErrInvalid, origin)
	}
	f := &Finding{Kind: e.Kind, Origin: origin}
	var wv note.Verifier
	if e.Kind == vpb.Kind_KIND_WITNESS_EQUIVOCATION {
		w := witnessByVKey(r, e.WitnessKey)
		if w == nil {
			return nil, fmt.Errorf("%w: witness key %q is not in the roster", ErrInvalid, e.WitnessKey)
		}
		wv, f.Witness, f.WitnessKey = w.Verifier, w.Name, w.VKey
	}
	// SPEC: c2sp.org/signed-note: every line whose (name, key ID) is a
	// known key must verify. Every roster witness key is known here, not
	// only the accused one: a failing cosignature by any of them
	// invalidates the note, as it would at a node.
	others := keys(r.WitnessVerifiers()...)
	logKeys := keys(lg.Verifier)
	var na, nb *note.Note
	var err error
	if f.A, na, err = tlog.VerifyCheckpoint(e.CheckpointA, origin, logKeys, others...); err != nil {
		return nil, fmt.Errorf("%w: checkpoint A: %v", ErrInvalid, err)
	}
	if f.B, nb, err = tlog.VerifyCheckpoint(e.CheckpointB, origin, logKeys, others...); err != nil {
		return nil, fmt.Errorf("%w: checkpoint B: %v", ErrInvalid, err)
	}
	switch {
	case f.A.Size > f.B.Size:
		return nil, fmt.Errorf("%w: checkpoint A is larger than B", ErrInvalid)
	case f.A.Size == f.B.Size:
		if e.Kind == vpb.Kind_KIND_LOG_EQUIVOCATION_DIFFERENT_SIZES {
			return nil, fmt.Errorf("%w: different-size evidence with equal sizes", ErrInvalid)
		}
		if len(e.ConsistencyProof) != 0 {
			return nil, fmt.Errorf("%w: same-size evidence carries a proof", ErrInvalid)
		}
		if f.A.Root == f.B.Root {
			return nil, fmt.Errorf("%w: same size and same root: the checkpoints agree", ErrInvalid)
		}
	default:
		if e.Kind == vpb.Kind_KIND_LOG_EQUIVOCATION_SAME_SIZE {
			return nil, fmt.Errorf("%w: same-size evidence with different sizes", ErrInvalid)
		}
		if f.A.Size == 0 {
			return nil, fmt.Errorf("%w: the empty tree is consistent with every tree", ErrInvalid)
		}
		rootA, rootB, err := RootsFromConsistency(f.A.Size, f.B.Size, e.ConsistencyProof)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
		}
		if rootB != f.B.Root {
			return nil, fmt.Errorf("%w: the proof does not reproduce checkpoint B's root, so it proves nothing about B", ErrInvalid)
		}
		if rootA == f.A.Root {
			return nil, fmt.Errorf("%w: the proof shows A and B are consistent", ErrInvalid)
		}
		f.ProvenRootA = rootA
	}
	if wv != nil && (!tlog.SignedBy(na, wv) || !tlog.SignedBy(nb, wv)) {
		return nil, fmt.Errorf("%w: witness %q did not cosign both checkpoints", ErrInvalid, f.Witness)
	}
	return f, nil
}

func witnessByVKey(r *roster.Roster, vkey string) *roster.Witness {
	for _, w := range r.Witnesses() {
		if w.VKey == vkey {
			return w
		}
	}
	return nil
}

// ID is the evidence's stable identifier: the lowercase hex SHA-256 of its
// kind, its witness key and the two checkpoint bodies (without signature
// lines; the two bodies in byte order when the sizes are equal). Two nodes
// that find the same split view independently get the same ID.
func ID(e *vpb.Evidence) string {
	a, b := body(e.CheckpointA), body(e.CheckpointB)
	if bytes.Compare(a, b) > 0 && sizeLine(a) == sizeLine(b) {
		a, b = b, a
	}
	h := sha256.New()
	h.Write([]byte("vigil evidence id v1\n"))
	for _, part := range [][]byte{{byte(e.Kind)}, []byte(e.WitnessKey), a, b} {
		h.Write(binary.BigEndian.AppendUint64(nil, uint64(len(part))))
		h.Write(part)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// body returns the text of a signed note: everything up to and including
// the newline before the blank line.
func body(n []byte) []byte {
	if i := bytes.Index(n, []byte("\n\n")); i >= 0 {
		return n[:i+1]
	}
	return n
}

func sizeLine(b []byte) string {
	lines := bytes.SplitN(b, []byte("\n"), 3)
	if len(lines) < 2 {
		return ""
	}
	return string(lines[1])
}
