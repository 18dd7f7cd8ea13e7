package store

import "sync"

// txnCache holds, decoded, values the group committer has committed, so
// that its compare-and-swaps and other readers need not read and decode
// them from Badger. Two are kept: the witness state of every log updated
// since the store opened (under load that read was a third of the
// committer's own work per cosignature, and the committer is serial), and
// the checkpoint records merged last (each gossiped cosignature's merge read
// and decoded its record twice: 7 % of a 50-node network's CPU in an
// equivocation's burst; docs/notes/benchmarks-history.md).
//
// Only the committer writes a cache, and only what is committed: an
// update's value is staged while its transaction is open and published
// once the transaction has committed; a failed commit forgets the staged
// keys, whose value on disk is then unknown, so they are read from Badger
// again. Readers never fill it, so a read racing a commit cannot leave a
// stale entry. Values share their byte slices with callers, who must not
// modify them.
type txnCache[V any] struct {
	mu        sync.RWMutex
	committed map[string]V
	// max bounds committed (0: unbounded). order is the insertion order
	// of committed's keys, for eviction; order[next] is the oldest once
	// order is full.
	max   int
	order []string
	next  int

	// staged is the open transaction's values, in the committer only.
	staged map[string]V
}

// newTxnCache returns a cache of at most max values (0: no bound; the
// oldest leave first).
func newTxnCache[V any](max int) *txnCache[V] {
	return &txnCache[V]{committed: map[string]V{}, staged: map[string]V{}, max: max}
}

// witnessCacheSize leaves the witness states unbounded: one per witnessed
// log, which the roster bounds.
const witnessCacheSize = 0

// recordCacheSize bounds the checkpoint records: a checkpoint per log, for
// thousands of logs, is what one burst of gossip touches; a record not
// cached is read from Badger.
const recordCacheSize = 8192

// get returns the committed value of key, if cached.
func (c *txnCache[V]) get(key string) (V, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	v, ok := c.committed[key]
	return v, ok
}

// current returns what an update in the open transaction must see: a value
// staged earlier in it, else the committed one. Committer only.
func (c *txnCache[V]) current(key string) (V, bool) {
	if v, ok := c.staged[key]; ok {
		return v, true
	}
	return c.get(key)
}

// stage records key's value as written in the open transaction.
// Committer only.
func (c *txnCache[V]) stage(key string, v V) { c.staged[key] = v }

// publish makes key's staged value the committed one, once its transaction
// has committed. Committer only.
func (c *txnCache[V]) publish(key string) {
	v, ok := c.staged[key]
	if !ok {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, had := c.committed[key]; !had && c.max > 0 {
		if len(c.order) < c.max {
			c.order = append(c.order, key)
		} else {
			delete(c.committed, c.order[c.next])
			c.order[c.next] = key
			c.next = (c.next + 1) % c.max
		}
	}
	c.committed[key] = v
}

// forget drops the committed values of every staged key: their transaction
// failed. Committer only. (Their slots in order are reused harmlessly:
// evicting an absent key deletes nothing.)
func (c *txnCache[V]) forget() {
	c.mu.Lock()
	for key := range c.staged {
		delete(c.committed, key)
	}
	c.mu.Unlock()
}

// endTxn clears the staged values when a transaction ends. Committer only.
func (c *txnCache[V]) endTxn() { clear(c.staged) }
