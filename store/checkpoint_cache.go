package store

import "sync"

// recordCache holds the committed checkpoint records the committer wrote
// last, decoded. Each gossiped cosignature is a read-modify-write of its
// checkpoint's record, first checked outside the committer and then applied
// in it: both read and decoded the JSON record from Badger, about 7 % of a
// 50-node network's CPU in an equivocation's burst (docs/BENCHMARKS.md).
//
// It follows witnessCache's rules: only the committer writes it, and only
// what is committed (staged while the transaction is open, published after
// it commits, forgotten if it fails); readers never fill it. It is bounded:
// the oldest entries leave first, and a record not cached is read from
// Badger. Records share their byte slices with callers, who must not
// modify them.
type recordCache struct {
	mu        sync.RWMutex
	committed map[string]CheckpointRecord
	order     []string // insertion order of committed's keys, for eviction
	next      int      // order[next] is the oldest once order is full
	max       int

	// staged is the open transaction's records, in the committer only.
	staged map[string]CheckpointRecord
}

// recordCacheSize bounds the cache: a checkpoint per log, for thousands of
// logs, is what one burst of gossip touches.
const recordCacheSize = 8192

func newRecordCache(max int) *recordCache {
	return &recordCache{committed: map[string]CheckpointRecord{}, staged: map[string]CheckpointRecord{}, max: max}
}

// get returns the committed record at key, if cached.
func (c *recordCache) get(key string) (CheckpointRecord, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	rec, ok := c.committed[key]
	return rec, ok
}

// current returns what an update in the open transaction must see: a record
// staged earlier in it, else the committed one. Committer only.
func (c *recordCache) current(key string) (CheckpointRecord, bool) {
	if rec, ok := c.staged[key]; ok {
		return rec, true
	}
	return c.get(key)
}

// stage records key's record as written in the open transaction.
// Committer only.
func (c *recordCache) stage(key string, rec CheckpointRecord) { c.staged[key] = rec }

// publish makes key's staged record the committed one. Committer only.
func (c *recordCache) publish(key string) {
	rec, ok := c.staged[key]
	if !ok {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, had := c.committed[key]; !had {
		if len(c.order) < c.max {
			c.order = append(c.order, key)
		} else {
			delete(c.committed, c.order[c.next])
			c.order[c.next] = key
			c.next = (c.next + 1) % c.max
		}
	}
	c.committed[key] = rec
}

// forget drops the committed records of every staged key: their
// transaction failed. Committer only. (Their slots in order are reused
// harmlessly: evicting an absent key deletes nothing.)
func (c *recordCache) forget() {
	c.mu.Lock()
	for key := range c.staged {
		delete(c.committed, key)
	}
	c.mu.Unlock()
}

// endTxn clears the staged records when a transaction ends. Committer only.
func (c *recordCache) endTxn() { clear(c.staged) }
