package scitt

import (
	"context"
	"crypto/sha256"
	"database/sql"
	_ "embed"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	_ "github.com/go-sql-driver/mysql" // the MySQL driver for database/sql
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/tessera"
	"github.com/transparency-dev/tessera/client"
	"github.com/transparency-dev/tessera/storage/mysql"
	"github.com/transparency-dev/tessera/storage/posix"
	"golang.org/x/mod/sumdb/note"
)

// Config configures a Service. Zero values mean the documented defaults.
type Config struct {
	// Dir holds the audit trail and, with the POSIX driver, the log
	// (Dir/log). Required.
	Dir string
	// MySQLDSN selects the MySQL driver (go-sql-driver DSN) instead of POSIX.
	MySQLDSN string
	// LogSigner signs checkpoints (C2SP signed note); its name is the origin.
	LogSigner note.Signer
	// ReceiptKey signs receipts; its Name is the service identity (receipt
	// iss). It must differ from the checkpoint key.
	ReceiptKey *PrivateKey
	// Policy is the registration policy; nil rejects everything.
	Policy *Policy
	// Witnesses, if set, must cosign each checkpoint before it is published.
	Witnesses *WitnessConfig

	// BatchMaxSize and BatchMaxAge bound Tessera's sequencing batches
	// (defaults 1024 and 50ms).
	BatchMaxSize uint
	BatchMaxAge  time.Duration
	// CheckpointInterval is how often a checkpoint is published (default
	// 100ms with POSIX, 1s with MySQL, Tessera's minimum there).
	CheckpointInterval time.Duration
	// MaxOutstanding is how many sequenced but unintegrated entries Tessera
	// accepts before pushing back (default 65536).
	MaxOutstanding uint

	Logger  *slog.Logger // default: discard
	Metrics *Metrics     // default: NewMetrics()
}

// WitnessConfig lists the witnesses Tessera asks to cosign checkpoints
// (C2SP tlog-witness POST <url>/add-checkpoint), e.g. Vigil nodes.
type WitnessConfig struct {
	// Policy is a tlog-policy text (as tessera.NewWitnessGroupFromPolicy
	// reads it); if set, Witnesses and Quorum are ignored.
	Policy []byte
	// Witnesses are (URL, cosignature/v1 vkey) pairs; Quorum of them must
	// cosign (default: all).
	Witnesses []Witness
	Quorum    int
	// Timeout bounds one witnessing round (default 5s). FailOpen publishes
	// the checkpoint anyway when the quorum is not met.
	Timeout  time.Duration
	FailOpen bool
}

// Witness is one witness endpoint.
type Witness struct {
	URL  string // the witness's root URL; /add-checkpoint is appended
	VKey string // its cosignature/v1 verifier key
}

func (w *WitnessConfig) group() (tessera.WitnessGroup, error) {
	if len(w.Policy) > 0 {
		return tessera.NewWitnessGroupFromPolicy(w.Policy)
	}
	if len(w.Witnesses) == 0 {
		return tessera.WitnessGroup{}, errors.New("witness config lists no witnesses")
	}
	// Tessera builds groups only from its policy text; write one.
	var b strings.Builder
	var names []string
	for i, wi := range w.Witnesses {
		if _, err := url.Parse(wi.URL); err != nil || strings.ContainsAny(wi.URL, " \t\n") {
			return tessera.WitnessGroup{}, fmt.Errorf("witness URL %q invalid", wi.URL)
		}
		if strings.ContainsAny(wi.VKey, " \t\n") {
			return tessera.WitnessGroup{}, fmt.Errorf("witness key %q invalid", wi.VKey)
		}
		name := fmt.Sprintf("w%d", i)
		names = append(names, name)
		fmt.Fprintf(&b, "witness %s %s %s\n", name, wi.VKey, wi.URL)
	}
	q := w.Quorum
	if q <= 0 || q > len(names) {
		q = len(names)
	}
	fmt.Fprintf(&b, "group q %d %s\nquorum q\n", q, strings.Join(names, " "))
	return tessera.NewWitnessGroupFromPolicy([]byte(b.String()))
}

// Service is a SCITT transparency service on a Tessera log.
type Service struct {
	cfg     Config
	log     *slog.Logger
	metrics *Metrics
	origin  string

	ctx      context.Context
	cancel   context.CancelFunc
	appender *tessera.Appender
	shutdown func(context.Context) error
	reader   tessera.LogReader
	pubs     *publications
	audit    *AuditLog
	db       *sql.DB
	wg       sync.WaitGroup

	mu      sync.Mutex
	entries map[[sha256.Size]byte]*entry

	// closeMu orders Register's wg.Add before close's wg.Wait.
	closeMu   sync.RWMutex
	closing   bool
	closeOnce sync.Once
	closeErr  error

	proofs *proofCache
}

// entry is the state of one registered (or registering) statement.
type entry struct {
	mu      sync.Mutex
	seq     bool   // index assigned
	index   uint64 // valid when seq
	subject string // empty for entries restored from disk until needed
	done    chan struct{}
	err     error  // set before done is closed when registration failed
	cp      []byte // the first published checkpoint that includes the entry
	start   time.Time
}

var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// ErrNotFound reports an unknown entry id.
var ErrNotFound = errors.New("no such entry")

// ErrClosed reports a registration attempted while the service shuts down.
var ErrClosed = errors.New("transparency service is shutting down")

// ErrPending reports an entry that is registered but not yet in a
// published checkpoint.
var ErrPending = errors.New("registration pending")

// New opens (or creates) the log and starts the service. Call Close to stop it.
func New(ctx context.Context, cfg Config) (*Service, error) {
	if cfg.Dir == "" || cfg.LogSigner == nil || cfg.ReceiptKey == nil {
		return nil, errors.New("scitt: Dir, LogSigner and ReceiptKey are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics()
	}
	if cfg.BatchMaxSize == 0 {
		cfg.BatchMaxSize = 4096
	}
	if cfg.BatchMaxAge == 0 {
		cfg.BatchMaxAge = 100 * time.Millisecond
	}
	if cfg.CheckpointInterval == 0 {
		cfg.CheckpointInterval = 100 * time.Millisecond
		if cfg.MySQLDSN != "" {
			cfg.CheckpointInterval = time.Second
		}
	}
	if cfg.MaxOutstanding == 0 {
		cfg.MaxOutstanding = 1 << 16
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating data directory: %w", err)
	}
	s := &Service{
		cfg:     cfg,
		log:     cfg.Logger,
		metrics: cfg.Metrics,
		origin:  cfg.LogSigner.Name(),
		entries: map[[sha256.Size]byte]*entry{},
	}
	s.ctx, s.cancel = context.WithCancel(context.WithoutCancel(ctx))
	ok := false
	defer func() {
		if !ok {
			s.cancel()
			if s.db != nil {
				s.db.Close()
			}
		}
	}()

	var driver tessera.Driver
	var err error
	if cfg.MySQLDSN != "" {
		if s.db, err = sql.Open("mysql", cfg.MySQLDSN); err != nil {
			return nil, fmt.Errorf("opening MySQL: %w", err)
		}
		// Bound connections: receipts are built concurrently from tiles.
		s.db.SetMaxOpenConns(32)
		s.db.SetMaxIdleConns(32)
		if err := applyMySQLSchema(ctx, s.db); err != nil {
			return nil, err
		}
		if driver, err = mysql.New(s.ctx, s.db); err != nil {
			return nil, fmt.Errorf("opening MySQL log: %w", err)
		}
	} else {
		if driver, err = posix.New(s.ctx, posix.Config{Path: filepath.Join(cfg.Dir, "log")}); err != nil {
			return nil, fmt.Errorf("opening POSIX log: %w", err)
		}
	}
	opts := tessera.NewAppendOptions().
		WithCheckpointSigner(cfg.LogSigner).
		WithBatching(cfg.BatchMaxSize, cfg.BatchMaxAge).
		WithCheckpointInterval(cfg.CheckpointInterval).
		WithPushback(cfg.MaxOutstanding)
	if cfg.Witnesses != nil {
		g, err := cfg.Witnesses.group()
		if err != nil {
			return nil, err
		}
		opts.WithWitnesses(g, &tessera.WitnessOptions{Timeout: cfg.Witnesses.Timeout, FailOpen: cfg.Witnesses.FailOpen})
	}
	s.appender, s.shutdown, s.reader, err = tessera.NewAppender(s.ctx, driver, opts)
	if err != nil {
		return nil, fmt.Errorf("starting log: %w", err)
	}
	s.proofs = newProofCache(s.reader.ReadTile)
	s.pubs = newPublications(s.reader.ReadCheckpoint, s.origin)
	go s.pubs.run(s.ctx, 10*time.Millisecond)
	if err := s.restore(ctx); err != nil {
		return nil, err
	}
	if s.audit, err = OpenAuditLog(filepath.Join(cfg.Dir, "audit.jsonl")); err != nil {
		return nil, err
	}
	ok = true
	return s, nil
}

// restore rebuilds the entry index (for lookups and replay rejection) from
// the log's level-0 tiles.
func (s *Service) restore(ctx context.Context) error {
	size, err := s.reader.IntegratedSize(ctx)
	if err != nil {
		return fmt.Errorf("reading log size: %w", err)
	}
	if size == 0 {
		return nil
	}
	hashes, err := client.FetchLeafHashes(ctx, s.reader.ReadTile, 0, size, size)
	if err != nil {
		return fmt.Errorf("reading leaf hashes: %w", err)
	}
	for i, h := range hashes {
		s.entries[[sha256.Size]byte(h)] = &entry{seq: true, index: uint64(i), done: closedChan}
	}
	s.metrics.treeSize.Set(float64(size))
	s.log.InfoContext(ctx, "restored log", "origin", s.origin, "size", size)
	return nil
}

// Close stops accepting registrations, waits for pending ones to be
// integrated and published, and closes the log.
// Close is idempotent.
func (s *Service) Close(ctx context.Context) error {
	s.closeOnce.Do(func() { s.closeErr = s.close(ctx) })
	return s.closeErr
}

func (s *Service) close(ctx context.Context) error {
	s.closeMu.Lock()
	s.closing = true
	s.closeMu.Unlock()
	err := s.shutdown(ctx)
	s.wg.Wait()
	s.cancel()
	if err2 := s.audit.Close(); err == nil {
		err = err2
	}
	if s.db != nil {
		if err2 := s.db.Close(); err == nil {
			err = err2
		}
	}
	return err
}

// Origin returns the log's origin (checkpoint key name).
func (s *Service) Origin() string { return s.origin }

// ReceiptKey returns the public receipt key.
func (s *Service) ReceiptKey() *PublicKey { return s.cfg.ReceiptKey.Public() }

// Reader gives read access to the log (checkpoint, tiles, entry bundles).
func (s *Service) Reader() tessera.LogReader { return s.reader }

// AuditLog returns the audit trail.
func (s *Service) AuditLog() *AuditLog { return s.audit }

// Registration is an accepted statement.
type Registration struct {
	// ID is the entry id: lowercase hex of the entry's RFC 9162 leaf hash.
	ID string
	e  *entry
}

// Register applies the policy to a signed statement and, if accepted,
// appends it to the log. It returns once the statement is queued; use Wait
// for the receipt. Errors wrap ErrMalformed, ErrPayloadMissing,
// ErrBadAlgorithm, ErrBadSignature, ErrTooLarge, ErrRejected (*ErrReplay for
// replays) or tessera.ErrPushback. Nothing is appended on error.
func (s *Service) Register(ctx context.Context, statement []byte, remote string) (*Registration, error) {
	rec := AuditRecord{Time: time.Now().UTC(), Remote: remote}
	reject := func(err error) (*Registration, error) {
		rec.Decision, rec.Reason = "rejected", err.Error()
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
	rec.Issuer, rec.Subject, rec.Kind = st.Issuer, st.Subject, st.Kind
	if err := s.cfg.Policy.Check(st, len(statement)); err != nil {
		return reject(err)
	}
	lh := [sha256.Size]byte(LeafHash(st.Entry))
	id := hex.EncodeToString(lh[:])
	rec.EntryID = id
	e := &entry{subject: st.Subject, done: make(chan struct{}), start: time.Now()}
	s.mu.Lock()
	if _, dup := s.entries[lh]; dup {
		s.mu.Unlock()
		// SPEC (Vigil): a statement is registered once; replays are refused.
		return reject(&ErrReplay{ID: id})
	}
	s.entries[lh] = e
	s.mu.Unlock()

	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closing {
		s.mu.Lock()
		delete(s.entries, lh)
		s.mu.Unlock()
		return nil, ErrClosed
	}
	fut := s.appender.Add(s.ctx, tessera.NewEntry(st.Entry))
	s.wg.Add(1)
	go s.await(lh, e, fut, rec)
	return &Registration{ID: id, e: e}, nil
}

// RecordRejection adds a rejection decided before Register could run (e.g.
// an oversized body) to the audit trail and metrics.
func (s *Service) RecordRejection(ctx context.Context, err error, remote string) {
	s.metrics.registrations.WithLabelValues(resultLabel(err)).Inc()
	rec := AuditRecord{Time: time.Now().UTC(), Remote: remote, Decision: "rejected", Reason: err.Error()}
	if aerr := s.audit.Append(rec); aerr != nil {
		s.log.ErrorContext(ctx, "audit", "err", aerr)
	}
}

func resultLabel(err error) string {
	var replay *ErrReplay
	switch {
	case err == nil:
		return "accepted"
	case errors.As(err, &replay):
		return "replay"
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
		delete(s.entries, lh)
		s.mu.Unlock()
		e.err = fmt.Errorf("appending to log: %w", err)
		close(e.done)
		rec.Decision, rec.Reason = "rejected", e.err.Error()
		s.metrics.registrations.WithLabelValues(resultLabel(err)).Inc()
		_ = s.audit.Append(rec)
		return
	}
	e.mu.Lock()
	e.seq, e.index = true, idx.Index
	e.mu.Unlock()
	rec.Decision, rec.Index = "accepted", &idx.Index
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
	select {
	case <-r.e.done:
	case <-ctx.Done():
		return nil, ErrPending
	}
	if r.e.err != nil {
		return nil, r.e.err
	}
	r.e.mu.Lock()
	cp := r.e.cp
	r.e.mu.Unlock()
	return s.receipt(ctx, r.ID, cp)
}

// Lookup returns the log index of entry id, or ErrNotFound / ErrPending
// (not sequenced yet).
func (s *Service) Lookup(id string) (uint64, error) {
	e, err := s.lookup(id)
	if err != nil {
		return 0, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.seq {
		return 0, ErrPending
	}
	return e.index, nil
}

func (s *Service) lookup(id string) (*entry, error) {
	b, err := hex.DecodeString(id)
	if err != nil || len(b) != sha256.Size {
		return nil, ErrNotFound
	}
	s.mu.Lock()
	e, ok := s.entries[[sha256.Size]byte(b)]
	s.mu.Unlock()
	if !ok {
		return nil, ErrNotFound
	}
	return e, nil
}

// Receipt returns a receipt for entry id at the latest published
// checkpoint, or ErrNotFound, or ErrPending if no published checkpoint
// includes it yet.
func (s *Service) Receipt(ctx context.Context, id string) ([]byte, error) {
	return s.receipt(ctx, id, nil)
}

// receipt builds a receipt for id at checkpoint cpRaw, or at the latest
// published checkpoint if cpRaw is nil.
func (s *Service) receipt(ctx context.Context, id string, cpRaw []byte) ([]byte, error) {
	e, err := s.lookup(id)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	seq, index, sub := e.seq, e.index, e.subject
	e.mu.Unlock()
	if !seq {
		return nil, ErrPending
	}
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
		e.mu.Lock()
		e.subject = sub
		e.mu.Unlock()
	}
	lh, _ := hex.DecodeString(id)
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
	st, err := ParseStatement(eb.Entries[i])
	if err != nil {
		return "", fmt.Errorf("log entry %d: %w", index, err)
	}
	return st.Subject, nil
}

// mysqlSchema is tessera v1.0.4's storage/mysql/schema.sql (Apache 2.0,
// The Tessera authors); every statement is idempotent.
//
//go:embed mysql_schema.sql
var mysqlSchema string

func applyMySQLSchema(ctx context.Context, db *sql.DB) error {
	var b strings.Builder
	for line := range strings.Lines(mysqlSchema) {
		if !strings.HasPrefix(strings.TrimSpace(line), "--") {
			b.WriteString(line)
		}
	}
	for stmt := range strings.SplitSeq(b.String(), ";") {
		if strings.TrimSpace(stmt) == "" {
			continue
		}
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("applying MySQL schema: %w", err)
		}
	}
	return nil
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
