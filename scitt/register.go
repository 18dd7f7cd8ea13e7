package scitt

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/tessera"
	"github.com/transparency-dev/tessera/client"
	"github.com/veraison/go-cose"
)

// Registration is an accepted statement.
type Registration struct {
	// ID is the entry id: lowercase hex of the entry's RFC 9162 leaf hash.
	ID string
	// Existing is set when the statement was already registered (or being
	// registered): the Registration is that entry's.
	Existing bool
	e        *entry // nil for an entry sequenced before this call
}

// Register applies the policy to a signed statement and, if accepted,
// appends it to the log. It returns once the statement is queued; use Wait
// for the receipt. A statement already in the log (or on its way) is not
// appended again: the existing entry is returned with Existing set.
// Errors wrap ErrMalformed, ErrPayloadMissing, ErrUnknownCritical,
// ErrBadAlgorithm, ErrBadSignature, ErrTooLarge, ErrRejected or
// tessera.ErrPushback. Nothing is appended on error.
func (s *Service) Register(ctx context.Context, statement []byte, remote string) (*Registration, error) {
	rec := AuditRecord{Time: time.Now().UTC(), Remote: remote}
	reject := func(err error) (*Registration, error) {
		rec.Decision, rec.Reason = DecisionRejected, err.Error()
		s.metrics.registrations.WithLabelValues(resultLabel(err)).Inc()
		if aerr := s.audit.Append(rec); aerr != nil {
			s.log.ErrorContext(ctx, "audit", "err", aerr)
		}
		return nil, err
	}
	st, err := ParseStatement(statement)
	if err != nil {
		return reject(err)
	}
	rec.Issuer, rec.Subject, rec.Kind, rec.ContentType = st.Issuer, st.Subject, st.Kind, st.ContentType
	if err := s.cfg.Policy.Check(st, len(statement)); err != nil {
		return reject(err)
	}
	lh := [sha256.Size]byte(LeafHash(st.Entry))
	id := hex.EncodeToString(lh[:])
	rec.EntryID = id
	e := &entry{subject: st.Subject, seqd: make(chan struct{}), done: make(chan struct{}), start: time.Now()}
	s.mu.Lock()
	pe, inFlight := s.pending[lh]
	_, seq := s.index[lh]
	if inFlight || seq {
		s.mu.Unlock()
		// SPEC: SCRAPI lets a service answer a repeated registration with
		// the existing entry; the statement is in the log once.
		rec.Decision = DecisionDuplicate
		s.metrics.registrations.WithLabelValues("duplicate").Inc()
		if aerr := s.audit.Append(rec); aerr != nil {
			s.log.ErrorContext(ctx, "audit", "err", aerr)
		}
		r := &Registration{ID: id, Existing: true}
		if !seq {
			r.e = pe
		}
		return r, nil
	}
	s.pending[lh] = e
	s.mu.Unlock()

	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closing {
		s.mu.Lock()
		delete(s.pending, lh)
		s.mu.Unlock()
		return nil, ErrClosed
	}
	fut := s.appender.Add(s.ctx, tessera.NewEntry(st.Entry))
	s.wg.Add(1)
	go s.await(lh, e, fut, rec)
	return &Registration{ID: id, e: e}, nil
}

// RecordRejection adds a rejection decided before Register could run (e.g.
// an oversized body or an unsupported media type) to the audit trail and
// metrics.
func (s *Service) RecordRejection(ctx context.Context, err error, remote string) {
	s.metrics.registrations.WithLabelValues(resultLabel(err)).Inc()
	rec := AuditRecord{Time: time.Now().UTC(), Remote: remote, Decision: DecisionRejected, Reason: err.Error()}
	if aerr := s.audit.Append(rec); aerr != nil {
		s.log.ErrorContext(ctx, "audit", "err", aerr)
	}
}

// RecordRateLimited adds count registrations refused by a rate limit to the
// audit trail as one record, and to the metrics.
func (s *Service) RecordRateLimited(ctx context.Context, count int, remote string) {
	rec := AuditRecord{Time: time.Now().UTC(), Remote: remote, Decision: DecisionRateLimited, Count: count,
		Reason: "too many registrations from this address"}
	if aerr := s.audit.Append(rec); aerr != nil {
		s.log.ErrorContext(ctx, "audit", "err", aerr)
	}
}

func resultLabel(err error) string {
	switch {
	case err == nil:
		return "accepted"
	case errors.Is(err, ErrUnsupportedMediaType):
		return "unsupported_media_type"
	case errors.Is(err, ErrUnknownCritical):
		return "unknown_critical"
	case errors.Is(err, ErrMalformed), errors.Is(err, ErrPayloadMissing):
		return "malformed"
	case errors.Is(err, ErrBadSignature), errors.Is(err, ErrBadAlgorithm):
		return "bad_signature"
	case errors.Is(err, ErrTooLarge), errors.As(err, new(*http.MaxBytesError)):
		return "too_large"
	case errors.Is(err, tessera.ErrPushback):
		return "pushback"
	default:
		return "rejected"
	}
}

// await follows one entry until it is in a published checkpoint.
func (s *Service) await(lh [sha256.Size]byte, e *entry, fut tessera.IndexFuture, rec AuditRecord) {
	defer s.wg.Done()
	idx, err := fut()
	if err != nil {
		s.mu.Lock()
		delete(s.pending, lh)
		s.mu.Unlock()
		e.err = fmt.Errorf("appending to log: %w", err)
		close(e.seqd)
		close(e.done)
		rec.Decision, rec.Reason = DecisionRejected, e.err.Error()
		s.metrics.registrations.WithLabelValues(resultLabel(err)).Inc()
		_ = s.audit.Append(rec)
		return
	}
	e.mu.Lock()
	e.seq, e.index = true, idx.Index
	e.mu.Unlock()
	s.mu.Lock()
	delete(s.pending, lh)
	s.index[lh] = idx.Index
	s.mu.Unlock()
	close(e.seqd)
	rec.Decision, rec.Index = DecisionAccepted, &idx.Index
	s.metrics.registrations.WithLabelValues("accepted").Inc()
	if err := s.audit.Append(rec); err != nil {
		s.log.Error("audit", "err", err)
	}
	cp, err := s.pubs.wait(s.ctx, idx.Index)
	if err != nil {
		return // shutting down; the entry is durable and a restart publishes it
	}
	e.mu.Lock()
	e.cp = cp
	e.mu.Unlock()
	if size, _, err := parseCheckpoint(cp, s.origin); err == nil {
		s.metrics.treeSize.Set(float64(size))
	}
	s.metrics.publishLatency.Observe(time.Since(e.start).Seconds())
	close(e.done)
}

// Wait waits until r is in a published checkpoint and returns its receipt.
// If ctx ends first it returns ErrPending.
func (s *Service) Wait(ctx context.Context, r *Registration) ([]byte, error) {
	if r.e == nil {
		rcpt, err := s.Receipt(ctx, r.ID)
		if err != nil && ctx.Err() != nil {
			return nil, ErrPending
		}
		return rcpt, err
	}
	select {
	case <-r.e.done:
	case <-ctx.Done():
		return nil, ErrPending
	}
	if r.e.err != nil {
		return nil, r.e.err
	}
	r.e.mu.Lock()
	cp, index, sub := r.e.cp, r.e.index, r.e.subject
	r.e.mu.Unlock()
	lh, _ := hex.DecodeString(r.ID)
	rcpt, err := s.receiptAt(ctx, lh, index, sub, cp)
	if err != nil && ctx.Err() != nil {
		// Published, but ctx ran out while the proof was being read: the
		// receipt is there to fetch, so this is pending, not a failure.
		return nil, ErrPending
	}
	return rcpt, err
}

// Durable waits until r's entry is durably sequenced in the log (Tessera
// has resolved its index), so that an accepted registration survives a
// crash even before it is published. It returns the append error, if any.
func (s *Service) Durable(ctx context.Context, r *Registration) error {
	if r.e == nil {
		return nil // sequenced before Register was called
	}
	select {
	case <-r.e.seqd:
		return r.e.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Lookup returns the log index of entry id, or ErrNotFound / ErrPending
// (not sequenced yet).
func (s *Service) Lookup(id string) (uint64, error) {
	index, _, err := s.lookup(id)
	return index, err
}

// lookup finds entry id: its index and, while it is in flight, its subject.
func (s *Service) lookup(id string) (index uint64, subject string, err error) {
	b, err := hex.DecodeString(id)
	if err != nil || len(b) != sha256.Size {
		return 0, "", ErrNotFound
	}
	lh := [sha256.Size]byte(b)
	s.mu.Lock()
	index, seq := s.index[lh]
	e, inFlight := s.pending[lh]
	s.mu.Unlock()
	switch {
	case seq:
		return index, "", nil
	case !inFlight:
		return 0, "", ErrNotFound
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.seq {
		return 0, "", ErrPending
	}
	return e.index, e.subject, nil
}

// Receipt returns a receipt for entry id at the latest published
// checkpoint, or ErrNotFound, or ErrPending if no published checkpoint
// includes it yet.
func (s *Service) Receipt(ctx context.Context, id string) ([]byte, error) {
	index, sub, err := s.lookup(id)
	if err != nil {
		return nil, err
	}
	lh, _ := hex.DecodeString(id)
	return s.receiptAt(ctx, lh, index, sub, nil)
}

// receiptAt builds a receipt for the entry with leaf hash lh at index, at
// checkpoint cpRaw (nil: the latest published). An empty sub is read back
// from the log.
func (s *Service) receiptAt(ctx context.Context, lh []byte, index uint64, sub string, cpRaw []byte) ([]byte, error) {
	var err error
	if cpRaw == nil {
		cpRaw = s.pubs.latest()
	}
	if cpRaw == nil {
		if cpRaw, err = s.reader.ReadCheckpoint(ctx); err != nil {
			return nil, fmt.Errorf("reading checkpoint: %w", err)
		}
	}
	size, root, err := parseCheckpoint(cpRaw, s.origin)
	if err != nil {
		return nil, err
	}
	if index >= size {
		return nil, ErrPending
	}
	if sub == "" {
		if sub, err = s.subjectAt(ctx, index, size); err != nil {
			return nil, err
		}
	}
	path, err := s.inclusionProof(ctx, index, size)
	if err != nil {
		return nil, err
	}
	if err := proof.VerifyInclusion(rfc6962.DefaultHasher, index, size, lh, path, root); err != nil {
		return nil, fmt.Errorf("self-check of inclusion proof: %w", err)
	}
	return BuildReceipt(s.cfg.ReceiptKey, sub, InclusionProof{Size: size, Index: index, Path: path}, root)
}

func (s *Service) inclusionProof(ctx context.Context, index, size uint64) ([][]byte, error) {
	p, err := s.proofs.inclusion(ctx, index, size)
	if err != nil {
		return nil, fmt.Errorf("building inclusion proof: %w", err)
	}
	return p, nil
}

// subjectAt reads the statement at index back from the log for its subject.
func (s *Service) subjectAt(ctx context.Context, index, size uint64) (string, error) {
	eb, err := client.GetEntryBundle(ctx, s.reader.ReadEntryBundle, index/256, size)
	if err != nil {
		return "", fmt.Errorf("reading entry bundle: %w", err)
	}
	i := index % 256
	if i >= uint64(len(eb.Entries)) {
		return "", fmt.Errorf("entry %d missing from its bundle", index)
	}
	// Only the subject is read: an entry registered under an older policy
	// or parser still gets its receipt.
	var msg cose.Sign1Message
	if err := msg.UnmarshalCBOR(eb.Entries[i]); err != nil {
		return "", fmt.Errorf("log entry %d: %w", index, err)
	}
	claims, _ := msg.Headers.Protected[labelCWTClaims].(map[any]any)
	sub, _ := claims[claimSub].(string)
	if sub == "" {
		return "", fmt.Errorf("log entry %d has no CWT sub", index)
	}
	return sub, nil
}

// parseCheckpoint reads size and root from a checkpoint of origin. The note
// is the service's own, read from its own storage.
func parseCheckpoint(cp []byte, origin string) (uint64, []byte, error) {
	text, _, ok := strings.Cut(string(cp), "\n\n")
	lines := strings.Split(text, "\n")
	if !ok || len(lines) < 3 || lines[0] != origin {
		return 0, nil, errors.New("malformed checkpoint")
	}
	size, err := strconv.ParseUint(lines[1], 10, 64)
	if err != nil {
		return 0, nil, fmt.Errorf("checkpoint size: %w", err)
	}
	root, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(root) != sha256.Size {
		return 0, nil, errors.New("checkpoint root malformed")
	}
	return size, root, nil
}
