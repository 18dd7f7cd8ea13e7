package store

import (
	"context"
	"errors"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// maxBatch bounds how many updates share one transaction and one fsync.
const maxBatch = 1024

// commitReq is one update waiting for the group committer. apply reads and
// writes its keys in the shared transaction; it must not write anything if it
// returns an error.
type commitReq struct {
	op    string
	apply func(txn *badger.Txn) error
	// committed, if set, runs on the committer after the transaction
	// holding this update is durable, before the caller hears of it.
	committed func()
	done      chan error
}

// groupCommit serialises all read-modify-write updates through one goroutine
// that applies every waiting update in a single transaction and syncs it
// once. Serial application makes each update an atomic compare-and-swap
// without conflict retries, and concurrent callers share the fsync.
func (d *DB) groupCommit() {
	defer close(d.committerDone)
	batch := make([]*commitReq, 0, maxBatch)
	for {
		var first *commitReq
		select {
		case first = <-d.commitCh:
		case <-d.closing:
			return
		}
		batch = append(batch[:0], first)
	drain:
		for len(batch) < maxBatch {
			select {
			case r := <-d.commitCh:
				batch = append(batch, r)
			default:
				break drain
			}
		}
		d.commitBatch(batch)
	}
}

func (d *DB) commitBatch(batch []*commitReq) {
	start := time.Now()
	d.metrics.batchSize.Observe(float64(len(batch)))
	results := make([]error, len(batch))
	pending := make([]int, 0, len(batch)) // indexes applied to the open txn
	txn := d.db.NewTransaction(true)
	commit := func() {
		err := txn.Commit()
		if errors.Is(err, badger.ErrDBClosed) {
			err = ErrClosed
		}
		if err != nil {
			// What reached the disk is unknown: forget what the cache
			// holds for these updates, so later reads go to Badger.
			d.witness.forget()
		}
		for _, i := range pending {
			results[i] = err
			if err == nil && batch[i].committed != nil {
				batch[i].committed()
			}
		}
		d.witness.endTxn()
		pending = pending[:0]
		txn = d.db.NewTransaction(true)
	}
	for i, r := range batch {
		err := r.apply(txn)
		if errors.Is(err, badger.ErrTxnTooBig) && len(pending) > 0 {
			commit()
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
	txn.Discard()
	elapsed := time.Since(start).Seconds()
	for i, r := range batch {
		d.metrics.latency.WithLabelValues(r.op).Observe(elapsed)
		r.done <- results[i]
	}
}

// commitUpdate queues apply for the group committer and waits until it is
// durable (nil) or refused.
func (d *DB) commitUpdate(ctx context.Context, op string, apply func(txn *badger.Txn) error, committed func()) error {
	r := &commitReq{op: op, apply: apply, committed: committed, done: make(chan error, 1)}
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
