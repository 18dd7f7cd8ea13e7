package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// maxBatch bounds how many updates share one transaction and one fsync.
const maxBatch = 1024

// commitReq is one update waiting for the group committer. apply reads and
// writes its keys in the shared transaction; it must not write anything if it
// returns an error.
type commitReq struct {
	op string
	// gossip marks an update that need not be synced before it is
	// answered (sync.go).
	gossip bool
	apply  func(txn *badger.Txn) error
	// committed, if set, runs on the committer after the transaction
	// holding this update has committed (and, unless gossip, is synced),
	// before the caller hears of it.
	committed func()
	done      chan error
}

// lingerMin is the batch size taken as a sign of enough concurrent load
// for lingering to pay: after a batch this large the committer lingers for
// the next one. With a few clients (8 here), waiting for the stragglers
// serialises the CPU work and the sync that would otherwise overlap and
// cost throughput; with 64 and more, batches this size are common and
// lingering keeps them large.
const lingerMin = 10

// groupCommit serialises all read-modify-write updates through one goroutine
// that applies every waiting update in a single transaction and syncs it
// once. Serial application makes each update an atomic compare-and-swap
// without conflict retries, and concurrent callers share the fsync.
//
// Each sync costs the same whatever it carries (≈ 150 µs of CPU here, in
// the kernel), so under load the committer lingers: after a batch of at
// least lingerMin updates, it waits up to d.linger for the next batch to
// grow as large as that one before committing it. A lone client never
// meets the condition and pays nothing; under many clients the wait buys
// batches two to four times larger, and throughput rose 15–35 % with it
// (docs/notes/benchmarks-history.md).
func (d *DB) groupCommit() {
	defer close(d.committerDone)
	if d.journal != nil {
		// Every update handed to the journal writer is answered before
		// the committer counts as done.
		defer func() {
			close(d.journalCh)
			<-d.journalDone
		}()
	}
	batch := make([]*commitReq, 0, maxBatch)
	linger := time.NewTimer(time.Hour)
	linger.Stop()
	defer d.syncs.timer.Stop()
	prev := 0
	for {
		var first *commitReq
		select {
		case first = <-d.commitCh:
		case <-d.syncs.timer.C:
			d.syncBackground()
			continue
		case <-d.closing:
			return
		}
		batch = append(batch[:0], first)
		want := 0 // lingering stops once the batch holds this many
		if d.linger > 0 && prev >= lingerMin {
			want = min(prev, maxBatch)
			linger.Reset(d.linger)
		}
	drain:
		for len(batch) < maxBatch {
			select {
			case r := <-d.commitCh:
				batch = append(batch, r)
				continue
			default:
			}
			if len(batch) >= want {
				break drain
			}
			select {
			case r := <-d.commitCh:
				batch = append(batch, r)
			case <-linger.C:
				want = 0
			case <-d.closing:
				break drain
			}
		}
		linger.Stop()
		prev = len(batch)
		d.commitBatch(batch)
	}
}

func (d *DB) commitBatch(batch []*commitReq) {
	start := time.Now()
	if d.disk != nil {
		// A volume that is full or failing gets no writes from the store:
		// Badger writes to mapped files and dies of SIGBUS when it cannot
		// (disk.go).
		if err := d.disk.admit(start, d.probeWrite); err != nil {
			for _, r := range batch {
				d.disk.refused(start, r.op, err)
				r.done <- err
			}
			return
		}
	}
	d.metrics.batchSize.Observe(float64(len(batch)))
	results := make([]error, len(batch))
	pending := make([]int, 0, len(batch)) // indexes applied to the open txn
	var job journalJob
	var faulted error // a commit of this batch failed: write no more of it
	txn := d.db.NewTransaction(true)
	commit := func() {
		err := txn.Commit()
		if errors.Is(err, badger.ErrDBClosed) {
			err = ErrClosed
		}
		if err == nil {
			err = d.syncCommitted(batch, pending)
		}
		if err == nil && d.wal != nil {
			// The batch is durable either way; a volume with no room
			// for the next memtable log stops the writes after it.
			if werr := d.wal.check(); werr != nil {
				d.disk.fault(werr)
			}
		}
		if err == nil && d.journal != nil && len(d.witness.staged) > 0 {
			// After Badger's sync, before any reply (journal_writer.go).
			job.add(d.witness.staged, pending)
		}
		if err != nil && d.disk != nil && !errors.Is(err, ErrClosed) {
			d.disk.fault(err)
			err = fmt.Errorf("%w: %w", ErrDiskFault, err)
			faulted = err
		}
		if err != nil {
			// What reached the disk is unknown: forget what the cache
			// holds for these updates, so later reads go to Badger.
			d.witness.forget()
			d.records.forget()
		}
		for _, i := range pending {
			results[i] = err
			if err == nil && batch[i].committed != nil {
				batch[i].committed()
			}
		}
		d.witness.endTxn()
		d.records.endTxn()
		pending = pending[:0]
		txn = d.db.NewTransaction(true)
	}
	for i, r := range batch {
		if faulted != nil {
			results[i] = faulted
			continue
		}
		err := r.apply(txn)
		if errors.Is(err, badger.ErrTxnTooBig) && len(pending) > 0 {
			if commit(); faulted != nil {
				results[i] = faulted
				continue
			}
			err = r.apply(txn)
		}
		if err != nil {
			results[i] = err
			continue
		}
		pending = append(pending, i)
	}
	if len(pending) > 0 {
		commit()
	}
	d.witness.endTxn()
	d.records.endTxn()
	txn.Discard()
	if job.states != nil {
		// The journal writer replies once the journal is synced.
		job.batch, job.results, job.start = slices.Clone(batch), results, start
		d.journalCh <- job
		return
	}
	elapsed := time.Since(start).Seconds()
	for i, r := range batch {
		d.metrics.latency.WithLabelValues(r.op).Observe(elapsed)
		r.done <- results[i]
	}
}

// commitUpdate queues apply for the group committer and waits until it is
// durable (nil) or refused.
func (d *DB) commitUpdate(ctx context.Context, op string, apply func(txn *badger.Txn) error, committed func()) error {
	return d.commit(ctx, &commitReq{op: op, apply: apply, committed: committed})
}

// commitGossip is commitUpdate for gossiped data: it returns once the update
// is written, and it is synced within the gossip sync delay.
func (d *DB) commitGossip(ctx context.Context, op string, apply func(txn *badger.Txn) error, committed func()) error {
	return d.commit(ctx, &commitReq{op: op, gossip: true, apply: apply, committed: committed})
}

func (d *DB) commit(ctx context.Context, r *commitReq) error {
	r.done = make(chan error, 1)
	select {
	case d.commitCh <- r:
	case <-d.closing:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	// Once queued, the update will be decided; wait for that even if ctx ends
	// so the caller never mistakes a durable write for a failed one.
	select {
	case err := <-r.done:
		return err
	case <-d.committerDone:
		// The committer answers every update it takes before it stops, so
		// r's result is waiting unless r was queued too late to be taken
		// (select may pick the send above over a closed d.closing).
		select {
		case err := <-r.done:
			return err
		default:
			return ErrClosed
		}
	}
}
