// Package store keeps everything a Vigil node must not lose, on Badger:
// witness state, and (in sibling files) sightings, cosignatures and evidence.
// It is the only package that imports Badger.
//
// Witness state and evidence are synced to disk before the call that writes
// them returns, and one serial committer batches concurrent updates into one
// transaction and one sync, so many concurrent updates share the cost of
// durability (group commit). What gossip brings (merged sightings and their
// cosignatures, suspicions) is written at once, so it survives the process
// being killed, but it is synced to disk by the next sync: at most
// Options.GossipSyncDelay later (sync.go).
package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
	"github.com/prometheus/client_golang/prometheus"
)

// Errors returned by the store, distinguishable with errors.Is.
var (
	// ErrLocked means another process holds the data directory.
	ErrLocked = errors.New("data directory is in use by another process")
	// ErrNotFound means the key does not exist.
	ErrNotFound = errors.New("not found")
	// ErrCorrupt means a stored value does not decode.
	ErrCorrupt = errors.New("corrupt stored value")
	// ErrClosed means the store was closed.
	ErrClosed = errors.New("store is closed")
)

// Options configures Open. The zero value is valid.
type Options struct {
	// Logger receives Badger's warnings and errors; nil discards them.
	Logger *slog.Logger
	// InMemory keeps nothing on disk; for benchmarks of the layers above only.
	InMemory bool
	// CommitLinger is how long the group committer may wait for more
	// updates to share a sync once load is evident (see groupCommit);
	// 0 means DefaultCommitLinger, negative means never wait.
	CommitLinger time.Duration
	// GossipSyncDelay is how long merged sightings and suspicions may wait
	// for a sync to disk (see sync.go); 0 means DefaultGossipSyncDelay,
	// negative means every write is synced before it returns.
	GossipSyncDelay time.Duration
	// RecoverRolledBack adopts the witness journal's size and root for
	// logs whose stored state was rolled back (rollback.go), with an empty
	// note, instead of refusing them (vigil node --recover-from-peers).
	RecoverRolledBack bool
	// LowWatermark and HighWatermark bound free space on the data volume:
	// below the low one writes are refused (ErrDiskPressure), above the
	// high one they resume (disk.go). 0 means DefaultLowWatermark and
	// DefaultHighWatermark (or 1.5 × a low watermark that is set).
	LowWatermark, HighWatermark uint64
	// Ballast is the size of the reserve file kept in the data directory
	// and released under pressure; 0 means DefaultBallast, negative none.
	Ballast int64
	// FreeSpace returns the free bytes of the volume holding dir; nil
	// means statfs. For tests.
	FreeSpace func(dir string) (uint64, error)
}

// DefaultGossipSyncDelay bounds what a power loss can take of gossiped
// data; the gossip layer learns it again from its peers on restart.
const DefaultGossipSyncDelay = time.Second

// DefaultCommitLinger is the group committer's default wait for company
// under load: a fraction of one sync's cost in latency, for batches several
// times larger (docs/notes/benchmarks-history.md).
const DefaultCommitLinger = 500 * time.Microsecond

// DB is a Vigil node's durable store.
type DB struct {
	db      *badger.DB
	log     *slog.Logger
	metrics *Metrics

	witness       *txnCache[WitnessState]
	records       *txnCache[CheckpointRecord]
	linger        time.Duration
	syncs         syncState
	commitCh      chan *commitReq
	closing       chan struct{}
	committerDone chan struct{}
	closeOnce     sync.Once

	// Nil in memory.
	journal     *journal
	journalCh   chan journalJob
	journalDone chan struct{}
	disk        *diskGuard
	wal         *walReserver
	rb          *rollbacks
}

// Open opens (creating if needed) the store in dir.
func Open(dir string, opts Options) (*DB, error) {
	lg := opts.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	m := newMetrics()
	var guard *diskGuard
	wal := ""
	if !opts.InMemory {
		guard = newDiskGuard(dir, opts, lg, m)
		if err := guard.checkOpen(); err != nil {
			return nil, fmt.Errorf("opening store %s: %w", dir, err)
		}
		wal = newestMemtable(dir)
	}
	bo := badger.DefaultOptions(dir).
		WithInMemory(opts.InMemory).
		// Syncs are the committer's (sync.go) unless every write syncs.
		WithSyncWrites(!opts.InMemory && opts.GossipSyncDelay < 0).
		// Sized for a node watching thousands of logs in well under 100 MB.
		// A memtable is a Go-heap skiplist arena plus an mmapped WAL of its
		// size, and a second one fills while the first is flushed: at 8 MB
		// they were a fifth of a member's settled RSS at 1,000 logs; at 4 MB
		// settled RSS fell from ≈ 90 to ≈ 76 MB, and at 2 MB the peak of a
		// 10,000-cosignature burst from 92-97 to 84-91 MB, with the same
		// cosignature throughput (docs/notes/benchmarks-history.md). Badger caps a
		// transaction at 15 % of the memtable (300 KB) and wants values
		// inline below that cap, hence the value threshold (the largest
		// record, evidence at its gossip limit, is ≈ 100 KB as stored JSON,
		// TestLargestRecordsFit; the committer splits a batch that is too
		// big).
		WithMemTableSize(2 << 20).
		WithValueThreshold(256 << 10).
		WithNumMemtables(2).
		// Blocks are stored uncompressed and read straight from the
		// mmapped tables: with Snappy every read decompressed a block into
		// the Go heap (10 MB of it during a 10,000-cosignature burst, on
		// top of an 8 MB block cache), and peak RSS at 1,000 logs was
		// 100-105 MB; uncompressed, with no block cache, it is 92-97 MB,
		// settled RSS unchanged (docs/notes/benchmarks-history.md). The
		// records are small; the disk they take is not the constraint.
		//
		// The base table size sizes the table builders' memory, which
		// outlives a flush or compaction: each builder takes an allocator
		// from a pool of up to 8 that keeps its buffers while the database
		// is busy, starting at 2 × BaseTableSize and doubling when a table
		// outgrows it. At 1 MB a flushed 2 MB memtable outgrew the first
		// 2 MB buffer, so every pooled allocator came to hold 2 + 4 MB: 36
		// MB of a 1,000-log node's 84 MB live heap under 64 clients. At 2
		// MB the flushed table fits the first 4 MB buffer and the pool
		// held 20 MB. (A 1 MB memtable with 1 MB tables held 14-16 MB, but
		// flushed twice as often: about 90 more allocations per
		// cosignature in BenchmarkWitnessThroughput.)
		WithCompression(options.None).
		WithBlockCacheSize(0).
		WithBaseTableSize(2 << 20).
		WithValueLogFileSize(64 << 20).
		WithNumCompactors(2).
		WithNumLevelZeroTables(3).
		WithNumLevelZeroTablesStall(8).
		// Every table's checksums are verified when it is opened, so a
		// corrupted table is an error from Open naming the file, never a
		// panic on some later read (corrupt.go).
		WithChecksumVerificationMode(options.OnTableRead).
		WithLogger(badgerLogger{lg, guard})
	if opts.InMemory {
		bo.Dir, bo.ValueDir = "", ""
	} else if err := removeEmptyMemtables(dir, lg); err != nil {
		return nil, fmt.Errorf("opening store %s: %w", dir, err)
	}
	db, err := openBadgerWAL(bo, opts.RecoverRolledBack, lg)
	if err != nil {
		if strings.Contains(err.Error(), "Cannot acquire directory lock") {
			return nil, fmt.Errorf("opening store %s: %w", dir, ErrLocked)
		}
		return nil, fmt.Errorf("opening store %s: %w", dir, err)
	}
	d := &DB{
		db:            db,
		log:           lg,
		metrics:       m,
		disk:          guard,
		rb:            &rollbacks{},
		witness:       newTxnCache[WitnessState](witnessCacheSize, 0, nil),
		records:       newTxnCache(recordCacheSize, recordCacheBytes, recordBytes),
		linger:        opts.CommitLinger,
		commitCh:      make(chan *commitReq, maxBatch),
		closing:       make(chan struct{}),
		committerDone: make(chan struct{}),
	}
	d.syncs.init(opts)
	if !opts.InMemory {
		j, existed, problems, err := openJournal(dir)
		if err == nil {
			d.journal = j
			err = d.checkRollback(dir, wal, j, existed, problems, opts.RecoverRolledBack)
		}
		if err != nil {
			if d.journal != nil {
				d.journal.close()
			}
			db.Close()
			return nil, fmt.Errorf("opening store %s: %w", dir, err)
		}
		m.rolledBack.Set(float64(len(d.rb.list)))
		if free, err := guard.effectiveFree(); err == nil {
			guard.ensureBallast(free)
		}
		if d.wal, err = newWALReserver(dir); err != nil {
			d.journal.close()
			db.Close()
			return nil, fmt.Errorf("opening store %s: reserving memtable logs: %w", dir, err)
		}
		go guard.monitor(d.closing)
	}
	switch {
	case d.linger == 0:
		d.linger = DefaultCommitLinger
	case d.linger < 0:
		d.linger = 0
	}
	if d.journal != nil {
		d.journalCh = make(chan journalJob, journalQueue)
		d.journalDone = make(chan struct{})
		go d.journalWriter()
	}
	go d.groupCommit()
	return d, nil
}

// Close waits for queued updates, then flushes and closes the store.
// Calls after the first return nil.
func (d *DB) Close() error {
	var err error
	d.closeOnce.Do(func() {
		close(d.closing)
		<-d.committerDone
		// Refuse whatever was queued after the committer stopped.
		for {
			select {
			case r := <-d.commitCh:
				r.done <- ErrClosed
				continue
			default:
			}
			break
		}
		if cerr := d.closeBadger(); cerr != nil {
			err = fmt.Errorf("closing store: %w", cerr)
		}
		if d.journal != nil {
			if cerr := d.journal.close(); cerr != nil && err == nil {
				err = fmt.Errorf("closing witness journal: %w", cerr)
			}
		}
	})
	return err
}

// Metrics returns the store's Prometheus collectors for the caller to register.
func (d *DB) Metrics() []prometheus.Collector { return d.metrics.collectors() }

// view runs fn in a read-only transaction. A panic in Badger (a store that
// lost its memtable to a failed write) is returned as an error: reads must
// never take the node down.
func (d *DB) view(op string, fn func(txn *badger.Txn) error) (err error) {
	start := time.Now()
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("reading the store: badger failed: %v", p)
		}
		d.metrics.latency.WithLabelValues(op).Observe(time.Since(start).Seconds())
	}()
	err = d.db.View(fn)
	if errors.Is(err, badger.ErrDBClosed) {
		return ErrClosed
	}
	return err
}

// get reads key in txn; a missing key returns ErrNotFound.
func get(txn *badger.Txn, key []byte) ([]byte, error) {
	item, err := txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return item.ValueCopy(nil)
}

// badgerLogger routes Badger's log lines to slog; Badger's info chatter is
// demoted to debug.
// Errors Badger reports from its own goroutines (a failed flush or
// compaction) that say the volume is failing degrade the store (disk.go).
type badgerLogger struct {
	l    *slog.Logger
	disk *diskGuard
}

func (b badgerLogger) Errorf(f string, a ...any) {
	msg := strings.TrimSpace(fmt.Sprintf(f, a...))
	b.l.Error(msg, "component", "badger")
	if b.disk != nil && isDiskFailure(msg) {
		b.disk.fault(errors.New(msg))
	}
}
func (b badgerLogger) Warningf(f string, a ...any) {
	b.l.Warn(strings.TrimSpace(fmt.Sprintf(f, a...)), "component", "badger")
}
func (b badgerLogger) Infof(f string, a ...any) { b.Debugf(f, a...) }

// Debugf formats only if debug logging is on: Badger calls it several times
// per write, and the formatting was a measurable share of each commit.
func (b badgerLogger) Debugf(f string, a ...any) {
	if b.l.Enabled(context.Background(), slog.LevelDebug) {
		b.l.Debug(strings.TrimSpace(fmt.Sprintf(f, a...)), "component", "badger")
	}
}
