package testnet

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/vigilnet/vigil/scitt"
	"github.com/vigilnet/vigil/tlog/tlogproof"
)

// WitnessedCheck is what checking one registration's witnessed receipt and
// tlog-proof established.
type WitnessedCheck struct {
	Index uint64
	// ReceiptSize is the receipt's tree size, CheckpointSize the witnessed
	// checkpoint's (the latest), Consistency the proof's length between them.
	ReceiptSize, CheckpointSize uint64
	Consistency                 int
	Cosigners                   []string
	// ProofSize is the size of the checkpoint the tlog-proof is against.
	ProofSize uint64
}

// CheckWitnessed fetches reg's witnessed receipt against the service's
// latest witnessed checkpoint and its tlog-proof, over HTTP as any client
// would, and verifies both offline with nothing but the roster and the
// receipt key.
func (ts *TransparencyService) CheckWitnessed(ctx context.Context, reg Registration) (WitnessedCheck, error) {
	if ts.svc == nil {
		return WitnessedCheck{}, errors.New("transparency service not started")
	}
	body, err := ts.get(ctx, reg.Location+"/witnessed-receipt?checkpoint=latest")
	if err != nil {
		return WitnessedCheck{}, err
	}
	res, err := scitt.VerifyWitnessedReceipt(reg.Statement, body, ts.rkey, ts.roster)
	if err != nil {
		return WitnessedCheck{}, fmt.Errorf("witnessed receipt of entry %d: %w", reg.Index, err)
	}
	w, err := scitt.ParseWitnessedReceipt(body)
	if err != nil {
		return WitnessedCheck{}, err
	}
	c := WitnessedCheck{Index: reg.Index, ReceiptSize: res.Receipt.Proof.Size, CheckpointSize: res.Checkpoint.Size,
		Consistency: len(w.Consistency), Cosigners: res.Cosigners}
	raw, err := ts.get(ctx, reg.Location+"/tlog-proof")
	if err != nil {
		return WitnessedCheck{}, err
	}
	p, err := tlogproof.Parse(raw)
	if err != nil {
		return WitnessedCheck{}, fmt.Errorf("tlog-proof of entry %d: %w", reg.Index, err)
	}
	entry, err := scitt.EntryFor(reg.Statement)
	if err != nil {
		return WitnessedCheck{}, err
	}
	pr, err := tlogproof.Verify(p, tlogproof.LeafHash(entry), ts.roster)
	if err != nil {
		return WitnessedCheck{}, fmt.Errorf("tlog-proof of entry %d: %w", reg.Index, err)
	}
	c.ProofSize = pr.Checkpoint.Size
	return c, nil
}

// get reads the body (at most 1 MiB) of a 200 response to GET path on the
// transparency service.
func (ts *TransparencyService) get(ctx context.Context, path string) ([]byte, error) {
	return getLimited(ctx, ts.URL+path, 1<<20)
}

// witnessedReceipts checks the witnessed receipt of the first statement
// registered in the run against the latest witnessed checkpoint: however
// much the log grew since, the roster's witnesses vouch for it.
func (s *Scenario) witnessedReceipts(ctx context.Context) error {
	if s.ts == nil {
		return ErrNoTransparencyService
	}
	regs := s.ts.Registered()
	if len(regs) == 0 {
		return errors.New("no statement registered yet")
	}
	first := regs[0]
	for _, r := range regs {
		if r.Index < first.Index {
			first = r
		}
	}
	c, err := s.ts.CheckWitnessed(ctx, first)
	if err != nil {
		return err
	}
	fmt.Fprintf(s.out, "         ts: %s\n", c)
	return nil
}

// String says what a witnessed check established, for the script output.
func (c WitnessedCheck) String() string {
	return fmt.Sprintf("entry %d: witnessed receipt (receipt at size %d, checkpoint size %d cosigned by %s, %d consistency hashes) and tlog-proof (size %d) verified offline with the roster",
		c.Index, c.ReceiptSize, c.CheckpointSize, strings.Join(c.Cosigners, " "), c.Consistency, c.ProofSize)
}
