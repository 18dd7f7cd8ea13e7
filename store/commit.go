package store

import (
	"context"
	"errors"
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
	// committed, if set, runs before the caller hears of the update:
	// for gossip, on the committer once the transaction holding it has
	// committed; else on the stage that answers the batch, once it is
	// synced (sync.go). It publishes the update's cached values
	// (txn_cache.go).
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
// that applies every waiting update in a single transaction and commits it
// to Badger. Serial application makes each update an atomic
// compare-and-swap without conflict retries. The batch's sync is the next
// stage's, the syncer's (sync.go), and the journal's after it
// (journal_writer.go): while they sync batch N, the committer applies and
// commits batch N+1, whose updates see N's values, committed though not yet
// synced. In lockstep (commit, sync, reply, and only then the next batch)
// requests spent almost half their time waiting for the group commit and
// the node kept 1.4 of 2 cores busy; pipelined, the CPU work of a batch
// overlaps the syncs of the one before, and batches that arrive during a
// sync share the next one.
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
	// Every batch handed to the syncer (and from it to the journal
	// writer) is answered before the committer counts as done.
	go d.syncer()
	defer func() {
		close(d.syncs.jobs)
		<-d.syncs.done
	}()
	batch := make([]*commitReq, 0, maxBatch)
	latency := d.metrics.opLatency()
	linger := time.NewTimer(time.Hour)
	linger.Stop()
	prev := 0
	for {
		var first *commitReq
		select {
		case first = <-d.commitCh:
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
		d.commitBatch(batch, latency)
	}
}

// commitBatch applies batch in as few transactions as fit, commits them to
// Badger and hands the batch to the syncer (sync.go), which answers it once
// it is durable. It does not wait for the sync: while the syncer syncs this
// batch, the committer applies and commits the next one.
func (d *DB) commitBatch(batch []*commitReq, latency *opLatency) {
	start := time.Now()
	// Loaded before admit: a failure recorded after this load fails the
	// batch in every later stage (sync.go).
	failure := d.syncs.failure.Load()
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
	b := &committedBatch{
		batch:   slices.Clone(batch),
		results: make([]error, len(batch)),
		failure: failure,
		start:   start,
	}
	pending := make([]int, 0, len(batch)) // indexes applied to the open txn
	var faulted error                     // a commit of this batch failed: write no more of it
	txn := d.db.NewTransaction(true)
	commit := func() {
		t := committedTxn{witness: d.witness.seal(), records: d.records.seal()}
		err := txn.Commit()
		if errors.Is(err, badger.ErrDBClosed) {
			err = ErrClosed
		}
		if err != nil {
			if !errors.Is(err, ErrClosed) && d.disk != nil {
				// What reached Badger's log is unknown, and so is
				// whether the batches before it, still unsynced, are
				// on disk: they fail too (sync.go).
				err = d.syncs.fail(d.disk, err)
			}
			faulted = err
			d.witness.forgetTxn(t.witness)
			d.records.forgetTxn(t.records)
			for _, i := range pending {
				b.results[i] = err
			}
		} else {
			// Gossip updates are published now, durable ones once
			// synced (answer).
			d.witness.beginPublish(t.witness)
			d.records.beginPublish(t.records)
			for _, i := range pending {
				if r := batch[i]; !r.gossip {
					t.pending = append(t.pending, i)
				} else if r.committed != nil {
					r.committed()
				}
			}
			d.witness.endPublish(t.witness, false)
			d.records.endPublish(t.records, false)
			if d.wal != nil {
				// A volume with no room for the next memtable log
				// stops the writes after this batch, which is
				// written and is synced as usual.
				if werr := d.wal.check(); werr != nil {
					d.disk.fault(werr)
				}
				b.logs.add(d.wal.current())
			}
			b.durable = b.durable || len(t.pending) > 0
			b.txns = append(b.txns, t)
		}
		d.witness.endTxn()
		d.records.endTxn()
		pending = pending[:0]
		txn = d.db.NewTransaction(true)
	}
	for i, r := range batch {
		if faulted != nil {
			b.results[i] = faulted
			continue
		}
		err := r.apply(txn)
		if errors.Is(err, badger.ErrTxnTooBig) && len(pending) > 0 {
			if commit(); faulted != nil {
				b.results[i] = faulted
				continue
			}
			err = r.apply(txn)
		}
		if err != nil {
			b.results[i] = err
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
	// Gossip updates are answered once written; a failure recorded since
	// the batch was admitted fails them too (sync.go).
	last := d.syncs.failure.Load()
	elapsed := time.Since(start).Seconds()
	for i, r := range batch {
		if !r.gossip {
			continue
		}
		if b.results[i] == nil && last != failure {
			b.results[i] = last.err
		}
		latency.observe(r.op, elapsed)
		r.done <- b.results[i]
	}
	// The syncer answers the other updates once synced, in commit order,
	// even those that wrote nothing or failed: what they read may be an
	// earlier batch's writes, not yet synced.
	d.syncs.jobs <- b
}

// committedBatch is a batch committed to Badger, on its way through the
// syncer and the journal writer to its callers.
type committedBatch struct {
	batch   []*commitReq
	results []error
	// txns are the batch's committed transactions, in commit order.
	txns []committedTxn
	// durable is set if an update of txns needs a sync before its reply.
	durable bool
	// logs are the memtable logs txns were written to.
	logs memLogs
	// failure is the store's last failure when the batch was admitted;
	// another one since fails the batch (sync.go).
	failure *syncFailure
	// err, once set, is the batch's failure: every update of it that is
	// not gossip gets it.
	err   error
	start time.Time
}

// committedTxn is one committed transaction of a batch: the durable
// updates it applied and the values it wrote to the caches.
type committedTxn struct {
	pending []int
	witness txnValues[WitnessState]
	records txnValues[CheckpointRecord]
}

// answer publishes a synced batch's values to the caches and runs its
// committed callbacks, or forgets its values if it failed, then replies to
// its callers. It runs in the last stage the batch passes: the journal
// writer, or the syncer if there is no journal.
func (d *DB) answer(b *committedBatch, latency *opLatency) {
	for _, t := range b.txns {
		if b.err != nil {
			// What reached the disk is unknown: forget what the caches
			// hold for these updates, so later reads go to Badger.
			d.witness.forgetTxn(t.witness)
			d.records.forgetTxn(t.records)
			continue
		}
		d.witness.beginPublish(t.witness)
		d.records.beginPublish(t.records)
		for _, i := range t.pending {
			if c := b.batch[i].committed; c != nil {
				c()
			}
		}
		d.witness.endPublish(t.witness, true)
		d.records.endPublish(t.records, true)
	}
	elapsed := time.Since(b.start).Seconds()
	for i, r := range b.batch {
		if r.gossip {
			continue // answered by the committer
		}
		if b.err != nil {
			// Even an update refused by its apply: what it read may
			// be what the failure lost.
			b.results[i] = b.err
		}
		latency.observe(r.op, elapsed)
		r.done <- b.results[i]
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
