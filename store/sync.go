package store

import (
	"fmt"
	"time"
)

// Syncing. A sync (msync of Badger's write-ahead log) costs the same
// whatever it carries, and it is most of what a write costs. What must be on
// disk before the caller hears back (a witness's state, before its
// cosignature leaves the node: DESIGN invariant 1; evidence, before it is
// published: invariant 3) is synced in its batch. What gossip brings
// (merged sightings, suspicions) is written at once, to the log's mapped
// pages, where a killed process cannot lose it, and reaches the disk with the
// next sync: the next durable batch, or a background sync at most
// GossipSyncDelay after it was written. Only a power loss or a kernel crash
// within that delay can take it, and a restarted node learns it again from
// its peers (the catch-up sync). A sync covers every write before it, so
// ordering is kept: nothing durable ever depends on a gossiped write that
// a crash could lose. At 50 nodes in one process this took the syncs of an
// equivocation's burst from about 1,300 to about 160 (docs/notes/benchmarks-history.md).

// syncState is the committer's record of writes not yet synced.
type syncState struct {
	// every means Badger syncs each write itself (GossipSyncDelay < 0,
	// or in memory: nothing to sync).
	every bool
	delay time.Duration
	// pending is set by a gossip-only batch and cleared by a sync; timer
	// runs while it is set. Committer only.
	pending bool
	timer   *time.Timer
}

func (s *syncState) init(opts Options) {
	s.every = opts.InMemory || opts.GossipSyncDelay < 0
	s.delay = opts.GossipSyncDelay
	if s.delay == 0 {
		s.delay = DefaultGossipSyncDelay
	}
	s.timer = time.NewTimer(time.Hour)
	s.timer.Stop()
}

// syncCommitted makes the updates at pending in batch, just committed,
// as durable as each needs: a sync if any is not gossip, else a background
// sync scheduled. Committer only.
func (d *DB) syncCommitted(batch []*commitReq, pending []int) error {
	if d.syncs.every {
		return nil
	}
	for _, i := range pending {
		if !batch[i].gossip {
			return d.sync("durable")
		}
	}
	if !d.syncs.pending {
		d.syncs.pending = true
		d.syncs.timer.Reset(d.syncs.delay)
	}
	return nil
}

// syncBackground syncs gossip writes whose delay is up. Committer only.
func (d *DB) syncBackground() {
	if !d.syncs.pending {
		return
	}
	if d.disk != nil {
		if _, err := d.Degraded(); err != nil {
			return // retried once writes resume
		}
	}
	if err := d.sync("background"); err != nil {
		if d.disk != nil {
			d.disk.fault(err)
		}
		// Retried at the next durable batch or after another delay.
		d.log.Error("syncing gossip writes", "err", err)
		d.syncs.pending = true
		d.syncs.timer.Reset(d.syncs.delay)
	}
}

// sync syncs Badger's log to disk. Committer only, so that no write lands
// in a new memtable between a commit and the sync meant to cover it.
func (d *DB) sync(reason string) (err error) {
	d.syncs.pending = false
	d.syncs.timer.Stop()
	d.metrics.syncs.WithLabelValues(reason).Inc()
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("syncing the store: badger failed: %v", p)
		}
	}()
	return d.db.Sync()
}
