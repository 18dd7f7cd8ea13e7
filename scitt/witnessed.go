package scitt

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/tessera/client"

	"github.com/vigilnet/vigil/tlog/tlogproof"
)

// ErrNotWitnessed reports that no stored checkpoint covering an entry
// carries the witness quorum (yet).
var ErrNotWitnessed = errors.New("no witnessed checkpoint covers the entry")

// recordCheckpoints wraps the checkpoint reader so that every checkpoint
// the service reads back after publishing it is kept in the store.
func (s *Service) recordCheckpoints(read func(context.Context) ([]byte, error)) func(context.Context) ([]byte, error) {
	return func(ctx context.Context) ([]byte, error) {
		cp, err := read(ctx)
		if err == nil && len(cp) > 0 {
			if err := s.checkpoints.record(cp); err != nil {
				s.log.WarnContext(ctx, "keeping published checkpoint", "err", err)
			}
		}
		return cp, err
	}
}

// witnessedFunc returns the test a stored checkpoint must pass to be served
// as witnessed: the quorum of the configured witnesses, as Tessera applies
// it before publishing. Without witnesses every checkpoint passes (it
// carries the log's signature only).
func (s *Service) witnessedFunc() (func([]byte) bool, error) {
	s.witnessOnce.Do(func() {
		if s.cfg.Witnesses == nil {
			return
		}
		g, err := s.cfg.Witnesses.group()
		if err != nil {
			s.witnessErr = err
			return
		}
		s.witnessOK = g.Satisfied
	})
	return s.witnessOK, s.witnessErr
}

// lookupWitnessed finds entry id (see lookup) and returns its leaf hash and
// the test its witnessed checkpoints must pass (see witnessedFunc).
func (s *Service) lookupWitnessed(id string) (index uint64, subject string, leafHash []byte, witnessed func([]byte) bool, err error) {
	index, subject, err = s.lookup(id)
	if err != nil {
		return 0, "", nil, nil, err
	}
	leafHash, _ = hex.DecodeString(id)
	witnessed, err = s.witnessedFunc()
	if err != nil {
		return 0, "", nil, nil, err
	}
	return index, subject, leafHash, witnessed, nil
}

// WitnessedReceiptOptions choose the checkpoint of a witnessed receipt.
type WitnessedReceiptOptions struct {
	// Latest selects the latest witnessed checkpoint instead of the first
	// one at or after the receipt's tree size.
	Latest bool
}

// WitnessedReceipt returns, for entry id, a receipt at the first stored
// checkpoint that includes the entry, a checkpoint at or after it carrying
// the log's signature and the witness quorum, and the consistency proof
// between the two trees when their sizes differ.
func (s *Service) WitnessedReceipt(ctx context.Context, id string, opts WitnessedReceiptOptions) (*WitnessedReceipt, error) {
	index, sub, lh, ok, err := s.lookupWitnessed(id)
	if err != nil {
		return nil, err
	}
	first, err := s.checkpoints.first(index+1, nil)
	if errors.Is(err, errNoCheckpoint) {
		return nil, ErrPending
	}
	if err != nil {
		return nil, err
	}
	m, rootM, err := parseCheckpoint(first, s.origin)
	if err != nil {
		return nil, err
	}
	var cp []byte
	if opts.Latest {
		cp, err = s.checkpoints.latest(m, ok)
	} else {
		cp, err = s.checkpoints.first(m, ok)
	}
	if errors.Is(err, errNoCheckpoint) {
		return nil, fmt.Errorf("%w (entry %d)", ErrNotWitnessed, index)
	}
	if err != nil {
		return nil, err
	}
	n, rootN, err := parseCheckpoint(cp, s.origin)
	if err != nil {
		return nil, err
	}
	rcpt, err := s.receiptAt(ctx, lh, index, sub, first)
	if err != nil {
		return nil, err
	}
	w := &WitnessedReceipt{Receipt: rcpt, Checkpoint: cp, Consistency: [][]byte{}}
	if n != m {
		pb, err := client.NewProofBuilder(ctx, n, s.reader.ReadTile)
		if err != nil {
			return nil, fmt.Errorf("building consistency proof: %w", err)
		}
		if w.Consistency, err = pb.ConsistencyProof(ctx, m, n); err != nil {
			return nil, fmt.Errorf("building consistency proof: %w", err)
		}
		if err := proof.VerifyConsistency(rfc6962.DefaultHasher, m, n, w.Consistency, rootM, rootN); err != nil {
			return nil, fmt.Errorf("self-check of consistency proof: %w", err)
		}
	}
	return w, nil
}

// TLogProof returns the C2SP tlog-proof of entry id: its inclusion proof in
// the first stored checkpoint that includes it and carries the witness
// quorum, with that checkpoint and its cosignatures.
func (s *Service) TLogProof(ctx context.Context, id string) ([]byte, error) {
	index, _, lh, ok, err := s.lookupWitnessed(id)
	if err != nil {
		return nil, err
	}
	cp, err := s.checkpoints.first(index+1, ok)
	if errors.Is(err, errNoCheckpoint) {
		if _, err := s.checkpoints.first(index+1, nil); errors.Is(err, errNoCheckpoint) {
			return nil, ErrPending
		}
		return nil, fmt.Errorf("%w (entry %d)", ErrNotWitnessed, index)
	}
	if err != nil {
		return nil, err
	}
	size, root, err := parseCheckpoint(cp, s.origin)
	if err != nil {
		return nil, err
	}
	path, err := s.inclusionProof(ctx, index, size)
	if err != nil {
		return nil, err
	}
	if err := proof.VerifyInclusion(rfc6962.DefaultHasher, index, size, lh, path, root); err != nil {
		return nil, fmt.Errorf("self-check of inclusion proof: %w", err)
	}
	p := &tlogproof.Proof{Index: index, Hashes: make([][32]byte, len(path)), Checkpoint: cp}
	for i, h := range path {
		p.Hashes[i] = [32]byte(h)
	}
	return p.Marshal(), nil
}

// witnessState caches the witness quorum test (see witnessedFunc).
type witnessState struct {
	witnessOnce sync.Once
	witnessOK   func([]byte) bool
	witnessErr  error
}
