// Package witness is Vigil's co-signing core: C2SP tlog-witness semantics
// (c2sp.org/tlog-witness) over a durable state store. It knows nothing of
// transport; http.go maps its errors to HTTP.
package witness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/transparency-dev/merkle/proof"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/time/rate"

	"github.com/vigilnet/vigil/roster"
	"github.com/vigilnet/vigil/store"
	"github.com/vigilnet/vigil/tlog"
)

// Errors of the add-checkpoint contract. The HTTP handler maps each to the
// status C2SP tlog-witness names.
var (
	// ErrMalformed: the request does not parse (400).
	ErrMalformed = errors.New("malformed request")
	// ErrUnknownLog: the origin is not in the roster (404).
	ErrUnknownLog = errors.New("unknown log")
	// ErrUnauthenticated: no valid log signature, or a known key's signature
	// fails (403).
	ErrUnauthenticated = errors.New("checkpoint is not signed by the log")
	// ErrOldSizeTooLarge: old size is larger than the checkpoint's (400).
	ErrOldSizeTooLarge = errors.New("old size is larger than the checkpoint size")
	// ErrConflict: old size is not the size the witness last cosigned (409);
	// the error is a *ConflictError carrying that size.
	ErrConflict = errors.New("old size does not match the witness's latest cosigned size")
	// ErrInconsistent: the checkpoint is not consistent with what the witness
	// cosigned before, or the proof is wrong (422).
	ErrInconsistent = errors.New("checkpoint is not consistent with the witness's view")
	// ErrRateLimited: the log exceeded its request budget (429); the error is
	// a *RateLimitError carrying when to retry.
	ErrRateLimited = errors.New("rate limit exceeded")
	// ErrUnavailable: the witness cannot cosign for this log right now
	// (503 with Retry-After): its disk is full or failing, or its state for
	// the log is not reconciled with what it cosigned before. The error is
	// an *UnavailableError carrying the reason and when to retry.
	ErrUnavailable = errors.New("witness unavailable")
)

// ConflictError reports the size of the latest checkpoint cosigned for a log.
type ConflictError struct{ Size uint64 }

func (e *ConflictError) Error() string {
	return fmt.Sprintf("%v: latest cosigned size is %d", ErrConflict, e.Size)
}

// Is makes errors.Is(err, ErrConflict) true.
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }

// RateLimitError says when a rate-limited client may retry.
type RateLimitError struct{ RetryAfter time.Duration }

func (e *RateLimitError) Error() string {
	return fmt.Sprintf("%v: retry after %s", ErrRateLimited, e.RetryAfter)
}

// Is makes errors.Is(err, ErrRateLimited) true.
func (e *RateLimitError) Is(target error) bool { return target == ErrRateLimited }

// UnavailableError says why the witness cannot cosign now and when a client
// may retry.
type UnavailableError struct {
	Reason     string
	RetryAfter time.Duration
}

func (e *UnavailableError) Error() string {
	return fmt.Sprintf("%v: %s", ErrUnavailable, e.Reason)
}

// Is makes errors.Is(err, ErrUnavailable) true.
func (e *UnavailableError) Is(target error) bool { return target == ErrUnavailable }

// StateStore is the durable per-log state the witness needs. UpdateWitnessState
// must be an atomic compare-and-swap that is durable before it returns.
type StateStore interface {
	WitnessState(ctx context.Context, origin string) (store.WitnessState, error)
	UpdateWitnessState(ctx context.Context, origin string, fn func(old store.WitnessState, exists bool) (store.WitnessState, error)) error
}

// LogDirectory finds the logs the witness may cosign. *roster.Roster is one;
// a node passes a view that follows roster reloads.
type LogDirectory interface {
	Log(origin string) (*roster.Log, bool)
}

// Cosigned describes a checkpoint the witness has just cosigned and stored.
type Cosigned struct {
	// Log is the roster entry whose key verified the log's signature.
	Log        *roster.Log
	Checkpoint tlog.Checkpoint
	// Note is the checkpoint with the log's verified signatures and the
	// witness's cosignature.
	Note []byte
}

// Config configures a Witness. Signer or Signers, Logs and Store are
// required.
type Config struct {
	// Signer produces the witness's cosignatures (cosignature/v1).
	Signer note.Signer
	// Signers are further cosigning keys under the same cosigner name (an
	// ML-DSA-44 key beside the Ed25519 one): add-checkpoint returns one
	// line per key, Signer's first. SPEC (tlog-witness): a witness may
	// return several cosignature lines.
	Signers []note.Signer
	Logs    LogDirectory
	Store   StateStore
	// History, if set, is what the node knows this witness's key cosigned
	// from any source (history.go); nil means the witness's own state only.
	History OwnHistory
	// Limits bounds add-checkpoint requests per log; the zero value means
	// no limit.
	Limits RateLimits
	// AfterCosign, if set, is called after each cosigned checkpoint is
	// durable. It must not block (gossip enqueues).
	AfterCosign func(Cosigned)
	// AfterRefuse, if set, is called with a checkpoint the witness refused
	// as not consistent with its state (ErrConflict or ErrInconsistent)
	// after its log signature verified: exactly what split-view detection
	// needs (the node gossips it). It must not block.
	AfterRefuse func(signedCheckpoint []byte, err error)
	Logger      *slog.Logger
	// Now is the clock of the qpd budgets; nil means time.Now.
	Now func() time.Time
}

// Witness co-signs checkpoints consistent with everything it cosigned before.
type Witness struct {
	cfg     Config
	signers []note.Signer
	// own verifies this witness's cosignatures (sign-subtree's reference
	// checkpoint); subtreeSigners are the signers that sign subtrees.
	own            []note.Verifier
	subtreeSigners []SubtreeSigner
	log            *slog.Logger
	limits         *limiters
	qpd            *qpdBudgets
	metrics        *Metrics

	rejectLimiter *rate.Limiter
	suppressed    atomic.Int64
}

// New returns a Witness.
func New(cfg Config) (*Witness, error) {
	var signers []note.Signer
	if cfg.Signer != nil {
		signers = append(signers, cfg.Signer)
	}
	signers = append(signers, cfg.Signers...)
	if len(signers) == 0 || cfg.Logs == nil || cfg.Store == nil {
		return nil, errors.New("witness: Signer, Logs and Store are required")
	}
	lg := cfg.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	own, subtree, err := ownKeys(signers)
	if err != nil {
		return nil, err
	}
	return &Witness{
		cfg:            cfg,
		signers:        signers,
		own:            own,
		subtreeSigners: subtree,
		log:            lg,
		limits:         newLimiters(cfg.Limits),
		qpd:            newQPDBudgets(cfg.Now),
		metrics:        newMetrics(),
		rejectLimiter:  rate.NewLimiter(5, 10),
	}, nil
}

// AddCheckpoint checks req against the witness's state and, if it is
// consistent, stores it and returns the cosignature lines
// ("— <name> <base64>\n") to send back.
//
// SPEC: the witness never cosigns two checkpoints of one origin that are not
// consistent with each other; comparing the old size and storing the new
// checkpoint is one atomic step, durable before the reply.
func (w *Witness) AddCheckpoint(ctx context.Context, req *AddCheckpointRequest) ([]byte, error) {
	cosig, err := w.add(ctx, req)
	// Both refusals come after the log's signature verified.
	if err != nil && w.cfg.AfterRefuse != nil && (errors.Is(err, ErrConflict) || errors.Is(err, ErrInconsistent)) {
		w.cfg.AfterRefuse(req.Checkpoint, err)
	}
	return cosig, err
}

func (w *Witness) add(ctx context.Context, req *AddCheckpointRequest) ([]byte, error) {
	origin, ok := tlog.OriginOf(req.Checkpoint)
	if !ok {
		return nil, fmt.Errorf("%w: checkpoint has no origin line", ErrMalformed)
	}
	lg, ok := w.cfg.Logs.Log(origin)
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownLog, origin)
	}
	cp, n, err := tlog.VerifyCheckpoint(req.Checkpoint, origin, []note.Verifier{lg.Verifier})
	switch {
	case errors.Is(err, tlog.ErrUnsigned), errors.Is(err, tlog.ErrBadSignature):
		return nil, fmt.Errorf("%w: %v", ErrUnauthenticated, err)
	case err != nil:
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if req.OldSize > cp.Size {
		return nil, fmt.Errorf("%w: old %d > size %d", ErrOldSizeTooLarge, req.OldSize, cp.Size)
	}
	// SPEC (main): a size-0 checkpoint must carry the empty-tree root.
	if cp.Size == 0 && cp.Root != tlog.EmptyRoot {
		return nil, fmt.Errorf("%w: empty tree with a non-empty root", ErrInconsistent)
	}
	// SPEC (main): old size 0 requires an empty proof.
	if req.OldSize == 0 && len(req.Proof) > 0 {
		return nil, fmt.Errorf("%w: old size 0 needs an empty proof", ErrInconsistent)
	}
	if err := w.limits.allow(lg); err != nil {
		return nil, err
	}
	// The qpd budget is charged only after the log's signature verified,
	// so nobody but the log can spend it.
	if err := w.qpd.allow(origin, lg.QPD); err != nil {
		return nil, err
	}
	if err := w.adoptFloor(ctx, origin); err != nil {
		return nil, err
	}

	// Cosign before the state update so signing runs in parallel across
	// requests; the signature is released only if the update commits.
	// The note keeps the verified signatures only (unknown keys' lines
	// are dropped), as note.Sign of the opened note would write it; the
	// text is the request's own bytes, a prefix of the checkpoint note.
	cosigned, err := tlog.SignNote(req.Checkpoint[:len(n.Text)], n.Sigs, w.signers...)
	if err != nil {
		return nil, fmt.Errorf("cosigning: %w", err)
	}
	err = w.cfg.Store.UpdateWitnessState(ctx, origin, func(old store.WitnessState, _ bool) (store.WitnessState, error) {
		if w.cfg.History != nil {
			f, ok, err := w.cfg.History.Floor(ctx, origin)
			if err != nil {
				return old, err
			}
			if old, _, err = judgeAgainst(old, f, ok); err != nil {
				return old, err
			}
		}
		if old.Size != req.OldSize {
			return old, &ConflictError{Size: old.Size}
		}
		if err := checkConsistency(old, cp, req.Proof); err != nil {
			return old, err
		}
		return store.WitnessState{Size: cp.Size, Root: cp.Root, Checkpoint: cosigned}, nil
	})
	if err != nil {
		// A store that cannot write, or that lost this log's acknowledged
		// state, is a 503 with a reason, never a 500 (DESIGN invariants 1
		// and 6); the store logs the details (paths, sizes).
		switch {
		case errors.Is(err, store.ErrDiskPressure):
			return nil, &UnavailableError{Reason: "witness storage is short of disk space", RetryAfter: 5 * time.Second}
		case errors.Is(err, store.ErrDiskFault):
			return nil, &UnavailableError{Reason: "witness storage cannot write", RetryAfter: 5 * time.Second}
		case errors.Is(err, store.ErrRolledBack):
			return nil, &UnavailableError{Reason: "witness state of this log was rolled back; its operator must recover it", RetryAfter: time.Minute}
		}
		return nil, err
	}
	w.metrics.cosignatures.Inc()
	if w.cfg.AfterCosign != nil {
		w.cfg.AfterCosign(Cosigned{Log: lg, Checkpoint: cp, Note: cosigned})
	}
	return lastSignatureLines(cosigned, len(w.signers)), nil
}

// checkConsistency verifies that cp extends the stored state.
func checkConsistency(old store.WitnessState, cp tlog.Checkpoint, p [][]byte) error {
	switch {
	case old.Size == 0:
		// The empty tree is consistent with every tree; the proof was
		// required to be empty above.
		return nil
	case old.Size == cp.Size:
		// SPEC (main): same size, different root → 422 (409 in v1.0.0).
		if old.Root != cp.Root {
			return fmt.Errorf("%w: same size %d, different root", ErrInconsistent, cp.Size)
		}
		if len(p) != 0 {
			return fmt.Errorf("%w: same size needs an empty proof", ErrInconsistent)
		}
		return nil
	}
	if err := proof.VerifyConsistency(proofHasher{}, old.Size, cp.Size, p, old.Root[:], cp.Root[:]); err != nil {
		return fmt.Errorf("%w: consistency proof from %d to %d: %v", ErrInconsistent, old.Size, cp.Size, err)
	}
	return nil
}

// lastSignatureLines returns the final k signature lines of a signed note:
// the cosignatures note.Sign appended after the existing signatures.
func lastSignatureLines(msg []byte, k int) []byte {
	i := len(msg) - 1
	for ; k > 0; k-- {
		i = bytes.LastIndexByte(msg[:i], '\n')
	}
	return msg[i+1:]
}

// Latest returns the newest checkpoint the witness cosigned for origin, with
// the log's signatures and the witness's cosignature, or store.ErrNotFound.
func (w *Witness) Latest(ctx context.Context, origin string) ([]byte, error) {
	st, err := w.cfg.Store.WitnessState(ctx, origin)
	if err != nil {
		return nil, err
	}
	return st.Checkpoint, nil
}
