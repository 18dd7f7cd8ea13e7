package store

import (
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// Syncing. A sync (msync of Badger's write-ahead log) costs the same
// whatever it carries, and it is most of what a write costs. It is done by
// the syncer, one stage behind the committer: the committer commits a batch
// to Badger and hands it to the syncer, which syncs it while the committer
// applies and commits the next one; batches that queue behind a running
// sync share the next. A batch is answered only after its sync (and, for
// witness states, the journal's, journal_writer.go): a witness's state is
// durable before its cosignature leaves the node (DESIGN invariant 1), and
// evidence before it is published (invariant 3). Until then its values are
// seen by the committer's later updates but not by readers (txn_cache.go).
// Badger's Sync covers every write committed before it, the gossip below
// included, so a durable batch never depends on a write that stays unsynced.
//
// What gossip brings (merged sightings, suspicions) is not synced for its
// own sake: the committer answers it as soon as it is written, to the log's
// mapped pages, where a killed process cannot lose it (its batch still
// passes the syncer, which tracks it), and it reaches the disk with the
// next sync:
// the next durable batch's, or a background sync at most GossipSyncDelay
// after it was written. Only a power loss or a kernel crash within that
// delay can take it, and a restarted node learns it again from its peers
// (the catch-up sync). A sync covers every write committed before it, so
// ordering is kept: nothing durable ever depends on a gossiped write that a
// crash could lose. At 50 nodes in one process this took the syncs of an
// equivocation's burst from about 1,300 to about 160
// (docs/notes/benchmarks-history.md).
//
// Badger's Sync syncs only the memtable log current when it runs. A batch
// committed to one memtable may be followed, before its sync, by a commit
// that makes Badger rotate to the next; the syncer therefore also syncs the
// rotated logs its batches were written to (syncRotated, walreserve.go).
//
// Failures. After a failed fsync Linux may drop the dirty pages it could
// not write, and a later fsync may succeed without them: no later sync
// proves an earlier write durable. So a failed commit or sync fails every
// batch committed but not yet answered, with ErrDiskFault, whichever stage
// it is in: each batch records the store's last failure when it is
// admitted, and each stage fails a batch whose record is out of date, and
// forgets the values it cached. Gossip updates answered before the failure
// keep their answer (written, not synced: what gossip is promised). The
// failure is also a disk fault, which refuses further batches until a
// probe write succeeds (disk.go).

// syncState is the syncer's state and the failure record the stages share.
type syncState struct {
	// every means Badger syncs each write itself (GossipSyncDelay < 0,
	// or in memory: nothing to sync).
	every bool
	delay time.Duration
	// jobs carries committed batches from the committer to the syncer,
	// in commit order; done is closed once the syncer has answered (or
	// handed to the journal writer) every one.
	jobs chan *committedBatch
	done chan struct{}
	// failure is the store's last disk failure, nil before the first.
	failure atomic.Pointer[syncFailure]
	// ops, if set, does the syncs instead of Badger and the files
	// (tests set it before the first update); see syncOps.
	ops syncOps

	// Syncer only. unsynced is the memtable logs written since the last
	// successful sync; pending is set while gossip writes wait for a
	// background sync, and timer runs while it is set.
	unsynced memLogs
	pending  bool
	timer    *time.Timer
}

// syncFailure is a failed commit or sync, as its batches' callers get it.
type syncFailure struct{ err error }

// syncOps are the syncs the syncer and the journal writer make.
type syncOps interface {
	// syncDB syncs Badger's current memtable log and value log.
	syncDB() error
	// syncLog syncs the memtable log at path; an error wrapping
	// os.ErrNotExist if it is gone.
	syncLog(path string) error
	// syncJournal syncs the witness journal.
	syncJournal(j *journal) error
}

type diskSyncs struct{ db *badger.DB }

func (s diskSyncs) syncDB() error { return s.db.Sync() }

func (diskSyncs) syncJournal(j *journal) error { return j.sync() }

// syncLog fdatasyncs the file: Badger writes its memtable logs through a
// shared mapping, and on Linux msync(MS_SYNC) of it and fdatasync of the
// file flush the same page cache.
func (diskSyncs) syncLog(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	err = datasync(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("syncing memtable log %s: %w", path, err)
	}
	return nil
}

func (s *syncState) init(opts Options) {
	s.every = opts.InMemory || opts.GossipSyncDelay < 0
	s.delay = opts.GossipSyncDelay
	if s.delay == 0 {
		s.delay = DefaultGossipSyncDelay
	}
	s.timer = time.NewTimer(time.Hour)
	s.timer.Stop()
	s.jobs = make(chan *committedBatch, journalQueue)
	s.done = make(chan struct{})
}

// fail records err, a failed commit or sync, as the store's last failure
// and a disk fault (if the store is on disk), and returns it as callers
// get it. The fault is recorded first, so that a batch admitted after the
// failure is visible is refused (commitBatch).
func (s *syncState) fail(disk *diskGuard, err error) error {
	if disk != nil {
		disk.fault(err)
	}
	err = fmt.Errorf("%w: %w", ErrDiskFault, err)
	s.failure.Store(&syncFailure{err})
	return err
}

// syncer syncs committed batches in groups, in commit order, and passes
// them on to the journal writer, or answers them if there is none. It ends
// when jobs is closed and drained.
func (d *DB) syncer() {
	defer close(d.syncs.done)
	if d.journal != nil {
		defer func() {
			close(d.journalCh)
			<-d.journalDone
		}()
	}
	defer d.syncs.timer.Stop()
	latency := d.metrics.opLatency()
	group := make([]*committedBatch, 0, journalQueue)
	for {
		var b *committedBatch
		select {
		case job, ok := <-d.syncs.jobs:
			if !ok {
				return
			}
			b = job
		case <-d.syncs.timer.C:
			d.syncBackground()
			continue
		}
		group = append(group[:0], b)
	drain:
		for len(group) < cap(group) {
			select {
			case j, ok := <-d.syncs.jobs:
				if !ok {
					break drain
				}
				group = append(group, j)
			default:
				break drain
			}
		}
		d.syncGroup(group)
		for _, b := range group {
			if d.journal != nil {
				d.journalCh <- journalJob{b}
			} else {
				d.answer(b, latency)
			}
		}
		clear(group)
	}
}

// syncGroup makes the batches of group as durable as each needs: one sync
// for all if any has an update that is not gossip, else a background sync
// scheduled. A batch admitted before the store's last failure fails.
// Syncer only.
func (d *DB) syncGroup(group []*committedBatch) {
	last := d.syncs.failure.Load()
	durable := false
	for _, b := range group {
		// Stale or not, what the batch wrote is in Badger's logs, and
		// the next sync covers it.
		d.syncs.unsynced.merge(b.logs)
		if b.err == nil && b.failure != last {
			b.err = last.err
		}
		if b.err == nil && b.durable {
			durable = true
		}
	}
	if d.syncs.every {
		return
	}
	if !durable {
		if d.syncs.unsynced.ok && !d.syncs.pending {
			d.syncs.pending = true
			d.syncs.timer.Reset(d.syncs.delay)
		}
		return
	}
	if err := d.sync("durable"); err != nil {
		err = d.syncs.fail(d.disk, err)
		for _, b := range group {
			if b.err == nil {
				b.err = err
			}
		}
	}
}

// syncBackground syncs gossip writes whose delay is up. Syncer only.
func (d *DB) syncBackground() {
	if !d.syncs.pending {
		return
	}
	if d.disk != nil {
		if _, err := d.Degraded(); err != nil {
			// Retried after another delay, or by the next durable
			// batch once writes resume.
			d.syncs.timer.Reset(d.syncs.delay)
			return
		}
	}
	if err := d.sync("background"); err != nil {
		// Batches committed since, still queued, fail too.
		d.syncs.fail(d.disk, err)
		d.log.Error("syncing gossip writes", "err", err)
	}
}

// sync makes every write committed so far durable: Badger's sync, and the
// rotated memtable logs it misses. On failure what is unsynced stays so,
// and a background sync retries after the delay. Syncer only.
func (d *DB) sync(reason string) error {
	d.metrics.syncs.WithLabelValues(reason).Inc()
	ops := d.syncOps()
	err := syncDB(ops)
	if err == nil && d.wal != nil {
		err = syncRotated(d.wal.dir, d.syncs.unsynced, ops.syncLog)
	}
	if err != nil {
		if d.syncs.unsynced.ok {
			d.syncs.pending = true
			d.syncs.timer.Reset(d.syncs.delay)
		}
		return err
	}
	d.syncs.unsynced = memLogs{}
	d.syncs.pending = false
	d.syncs.timer.Stop()
	return nil
}

func (d *DB) syncOps() syncOps {
	if d.syncs.ops != nil {
		return d.syncs.ops
	}
	return diskSyncs{d.db}
}

// syncDB is Badger's sync. A panic in Badger (a store that lost its
// memtable to a failed write) is returned as an error.
func syncDB(ops syncOps) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("syncing the store: badger failed: %v", p)
		}
	}()
	return ops.syncDB()
}
