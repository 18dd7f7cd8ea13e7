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
		// Syncs are the syncer's (sync.go) unless every write syncs.
		WithSyncWrites(!opts.InMemory && opts.GossipSyncDelay < 0).
		// Sized for a node watching thousands of logs in well under 100 MB.
		// A memtable is a Go-heap skiplist arena plus an mmapped WAL of its
		// size, and a second one fills while the first is flushed: at 8 MB
		// they were a fifth of a member's settled RSS at 1,000 logs, and
		// each halving since cut RSS with the same cosignature throughput
		// (docs/notes/benchmarks-history.md). Badger caps a transaction at
		// 15 % of the memtable (157 KB) and the value threshold below that
		// cap; values under the threshold stay in the LSM tree, and 150 KB
		// keeps there every checkpoint record and witness state, whose note
		// gossip bounds at 128 KB. Evidence stored as JSON over 150 KB
		// (data over ≈ 110 KB, of the ≈ 270 KB gossip admits) goes to the
		// value log, as the largest did at the 256 KB threshold
		// (TestLargestRecordsFit; the committer splits a batch that is too
		// big).
		WithMemTableSize(1 << 20).
		WithValueThreshold(150 << 10).
		WithNumMemtables(2).
		// Blocks are stored uncompressed and read straight from the
		// mmapped tables: with Snappy every read decompressed a block into
		// the Go heap (10 MB of it during a 10,000-cosignature burst, on
		// top of an 8 MB block cache), and peak RSS at 1,000 logs was
		// 100-105 MB; uncompressed, with no block cache, it is 92-97 MB,
		// settled RSS unchanged (docs/notes/benchmarks-history.md). The
		// records are small; the disk they take is not the constraint.
		//
		// The base table size sizes the table builders' memory, the
		// largest part of a busy node's live heap: each builder (a flush,
		// or one output table of a compaction, held until the table is
		// written and synced) takes an allocator of 2 × BaseTableSize,
		// rounded up to a power of two, from a pool that keeps up to 8 of
		// them for as long as flushes keep asking (a quiet 2 s releases
		// one). A compaction writes up to 8 tables at once, so the pool
		// fills to 8 allocators once the store outgrows 8 tables, and stays
		// full under load: at 2 MB tables (4 MB allocators) it held 28 MB
		// after a minute of 1,000 logs under 64 clients, and RSS was ≈ 200
		// MB. At 1 MB tables from 1 MB memtables (a flushed memtable fits
		// one 2 MB allocator) the pool is at most 16 MB; flushes are twice
		// as frequent, and six level-0 tables instead of three keep the
		// compactions as rare (and the level-0 bytes at which writes stall
		// unchanged), for no more CPU or allocations per cosignature in
		// BenchmarkWitnessThroughput.
		WithCompression(options.None).
		WithBlockCacheSize(0).
		WithBaseTableSize(1 << 20).
		WithValueLogFileSize(64 << 20).
		WithNumCompactors(2).
		WithNumLevelZeroTables(6).
		WithNumLevelZeroTablesStall(16).
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
