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
	// max and maxBytes bound committed (0: unbounded) by count and by
	// size(key, value) summed in bytes; order is committed's keys, oldest
	// first from head, for eviction.
	max, maxBytes int
	size          func(key string, v V) int
	bytes         int
	order         []string
	head          int

	// staged is the open transaction's values, in the committer only.
	staged map[string]V
}

// newTxnCache returns a cache of at most max values and maxBytes bytes as
// size counts them (0: no bound; the oldest leave first). size may be nil
// if maxBytes is 0.
func newTxnCache[V any](max, maxBytes int, size func(key string, v V) int) *txnCache[V] {
	return &txnCache[V]{committed: map[string]V{}, staged: map[string]V{}, max: max, maxBytes: maxBytes, size: size}
}

// witnessCacheSize leaves the witness states unbounded: one per witnessed
// log, which the roster bounds.
const witnessCacheSize = 0

// recordCacheSize and recordCacheBytes bound the checkpoint records: a
// checkpoint per log, for thousands of logs, is what one burst of gossip
// touches; a record not cached is read from Badger. The bytes bound what
// the count alone did not: a record's note carries every cosignature
// merged into it, ≈ 330 bytes with one Ed25519 cosignature but 3.6 KB with
// an ML-DSA-44 one too, so 8,192 records held 7 MB of a 1,000-log node's
// live heap with Ed25519 cosignatures and ≈ 35 MB with both kinds (twice
// that in RSS, at the collector's default headroom). 4 MiB is ≈ 5,500
// records with Ed25519 cosignatures, ≈ 1,000 with ML-DSA-44 ones.
const (
	recordCacheSize  = 8192
	recordCacheBytes = 4 << 20
)

// recordOverhead is a cached record's heap besides its strings and note:
// the struct in its map slot, the map's spare slots, the key's slot in
// order (TestRecordCacheHeapWithinBound weighs them).
const recordOverhead = 250

// recordBytes is the record cache's size function. The note counts at its
// capacity and an eighth more, the most Go's size classes round an
// allocation of a note's size up by: at its length alone, the cache of
// ML-DSA-44-cosigned records took 12 % more heap than its bound.
func recordBytes(key string, r CheckpointRecord) int {
	return recordOverhead + len(key) + len(r.Origin) + cap(r.Note) + cap(r.Note)/8 + len(r.FirstObserver) + len(r.FirstSource)
}

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
// has committed, evicting the oldest values beyond the bounds. Committer
// only.
func (c *txnCache[V]) publish(key string) {
	v, ok := c.staged[key]
	if !ok {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	old, had := c.committed[key]
	c.committed[key] = v
	if c.max == 0 && c.maxBytes == 0 {
		return
	}
	if c.maxBytes > 0 {
		if had {
			c.bytes -= c.size(key, old)
		}
		c.bytes += c.size(key, v)
	}
	if !had {
		c.order = append(c.order, key)
	}
	for c.head < len(c.order) && (c.max > 0 && len(c.committed) > c.max || c.maxBytes > 0 && c.bytes > c.maxBytes) {
		k := c.order[c.head]
		c.order[c.head] = ""
		c.head++
		c.drop(k)
	}
	if c.head >= 1024 && 2*c.head >= len(c.order) {
		// Reuse the evicted half of the array instead of growing it.
		n := copy(c.order, c.order[c.head:])
		clear(c.order[n:])
		c.order, c.head = c.order[:n], 0
	}
}

// drop removes key's committed value, if any, and its bytes. c.mu held.
func (c *txnCache[V]) drop(key string) {
	v, ok := c.committed[key]
	if !ok {
		return
	}
	if c.maxBytes > 0 {
		c.bytes -= c.size(key, v)
	}
	delete(c.committed, key)
}

// forget drops the committed values of every staged key: their transaction
// failed. Committer only. Their keys leave order too, so that a key
// published again is queued once.
func (c *txnCache[V]) forget() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for key := range c.staged {
		c.drop(key)
	}
	if c.max == 0 && c.maxBytes == 0 {
		return
	}
	kept := c.order[:0]
	for _, k := range c.order[c.head:] {
		if _, ok := c.committed[k]; ok {
			kept = append(kept, k)
		}
	}
	clear(c.order[len(kept):])
	c.order, c.head = kept, 0
}

// endTxn clears the staged values when a transaction ends. Committer only.
func (c *txnCache[V]) endTxn() { clear(c.staged) }
