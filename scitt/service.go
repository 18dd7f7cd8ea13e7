package scitt

import (
	"context"
	"crypto/sha256"
	"database/sql"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	_ "github.com/go-sql-driver/mysql" // the MySQL driver for database/sql
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
	// AuditMaxBytes caps the audit trail's files together (default
	// DefaultAuditMaxBytes, 64 MiB); the oldest records are dropped first.
	AuditMaxBytes int64
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

	mu sync.Mutex
	// pending holds registrations until they are sequenced; index maps
	// every sequenced entry's leaf hash to its log index (about 60 bytes
	// per entry, rebuilt from the tiles at start).
	pending map[[sha256.Size]byte]*entry
	index   map[[sha256.Size]byte]uint64

	// closeMu orders Register's wg.Add before close's wg.Wait.
	closeMu   sync.RWMutex
	closing   bool
	closeOnce sync.Once
	closeErr  error

	proofs *proofCache
	// checkpoints keeps every published checkpoint (witnessed receipts).
	checkpoints *checkpointStore
	witnessState
}

// entry is the state of one registered (or registering) statement.
type entry struct {
	mu      sync.Mutex
	seq     bool          // index assigned
	index   uint64        // valid when seq
	subject string        // empty for entries restored from disk until needed
	seqd    chan struct{} // closed once the append is durable (or failed)
	done    chan struct{} // closed once published (or failed)
	err     error         // set before done is closed when registration failed
	cp      []byte        // the first published checkpoint that includes the entry
	start   time.Time
}

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
		pending: map[[sha256.Size]byte]*entry{},
		index:   map[[sha256.Size]byte]uint64{},
	}
	s.ctx, s.cancel = context.WithCancel(context.WithoutCancel(ctx))
	ok := false
	defer func() {
		if !ok {
			s.cancel()
			if s.db != nil {
				s.db.Close()
			}
			if s.checkpoints != nil {
				s.checkpoints.close()
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
	if s.checkpoints, err = openCheckpointStore(filepath.Join(cfg.Dir, "checkpoints"), s.origin); err != nil {
		return nil, err
	}
	s.pubs = newPublications(s.recordCheckpoints(s.reader.ReadCheckpoint), s.origin)
	go s.pubs.run(s.ctx, 10*time.Millisecond)
	if err := s.restore(ctx); err != nil {
		return nil, err
	}
	if s.audit, err = OpenAuditLog(filepath.Join(cfg.Dir, "audit.jsonl"), cfg.AuditMaxBytes); err != nil {
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
		s.index[[sha256.Size]byte(h)] = uint64(i)
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
	if err != nil {
		// Entries not yet published may never be: stop waiting for them
		// (they are durable; the next start publishes them).
		s.cancel()
	}
	s.wg.Wait()
	s.cancel()
	if err2 := s.audit.Close(); err == nil {
		err = err2
	}
	if err2 := s.checkpoints.close(); err == nil {
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
