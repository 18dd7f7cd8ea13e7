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
// Only the store's own pipeline writes a cache, and only what is durable:
// an update's value is staged while its transaction is open, sealed as
// unsynced when the transaction commits to Badger (seen by the committer's
// later compare-and-swaps, not by readers, who wait for it rather than read
// it from Badger: settledValue), and published once it is durable enough
// for its caller to hear of it: a gossip update's once written, any other
// once its batch is synced (commit.go, sync.go). A failed commit or sync
// forgets the keys, whose value on disk is then unknown, so they are read
// from Badger again. Readers never fill it, so a read racing a commit
// cannot leave a stale entry. Values share their byte slices with callers,
// who must not modify them.
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

	// unsynced is the newest value of each key written by a transaction
	// committed to Badger but not yet published, and that transaction's
	// sequence number. Under mu.
	unsynced map[string]unsyncedValue[V]
	// seq numbers the sealed transactions. Committer only.
	seq uint64
	// settled is closed, and replaced, whenever values leave unsynced
	// (published or forgotten), for readers waiting on them. Under mu.
	settled chan struct{}

	// staged is the open transaction's values, in the committer only.
	staged map[string]V
	// publishing is the transaction whose updates are being published
	// (publish reads it), under pubMu: the committer publishes gossip
	// updates, the answering stage durable ones (commit.go).
	pubMu      sync.Mutex
	publishing txnValues[V]
}

type unsyncedValue[V any] struct {
	v   V
	seq uint64
}

// txnValues is what one committed transaction wrote to a cache, sealed
// until its batch is synced.
type txnValues[V any] struct {
	values map[string]V
	seq    uint64
}

// newTxnCache returns a cache of at most max values and maxBytes bytes as
// size counts them (0: no bound; the oldest leave first). size may be nil
// if maxBytes is 0.
func newTxnCache[V any](max, maxBytes int, size func(key string, v V) int) *txnCache[V] {
	return &txnCache[V]{committed: map[string]V{}, unsynced: map[string]unsyncedValue[V]{}, settled: make(chan struct{}), staged: map[string]V{}, max: max, maxBytes: maxBytes, size: size}
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
// staged earlier in it, else the newest one committed to Badger, synced or
// not. Committer only.
func (c *txnCache[V]) current(key string) (V, bool) {
	if v, ok := c.staged[key]; ok {
		return v, true
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	if u, ok := c.unsynced[key]; ok {
		return u.v, true
	}
	v, ok := c.committed[key]
	return v, ok
}

// stage records key's value as written in the open transaction.
// Committer only.
func (c *txnCache[V]) stage(key string, v V) { c.staged[key] = v }

// seal moves the staged values of the open transaction to unsynced, just
// before it commits to Badger (so that a reader who finds one of its values
// in Badger finds it in unsynced too: settledValue), and returns them for
// publish or forgetTxn once the commit and the batch's sync are decided.
// Committer only.
func (c *txnCache[V]) seal() txnValues[V] {
	if len(c.staged) == 0 {
		return txnValues[V]{}
	}
	c.seq++
	t := txnValues[V]{values: c.staged, seq: c.seq}
	c.staged = make(map[string]V, len(t.values))
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, v := range t.values {
		c.unsynced[k] = unsyncedValue[V]{v, t.seq}
	}
	return t
}

// settledValue tells a reader who missed the cache and read key from Badger
// whether that read may be used: it may if no value of key is unsynced
// (ok false, wait nil); if one is, the reader must wait for wait and look
// again. A value published since is returned (ok).
func (c *txnCache[V]) settledValue(key string) (v V, ok bool, wait <-chan struct{}) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if v, ok := c.committed[key]; ok {
		return v, true, nil
	}
	if _, ok := c.unsynced[key]; ok {
		return v, false, c.settled
	}
	return v, false, nil
}

// settle wakes the readers waiting for values to leave unsynced. c.mu held.
func (c *txnCache[V]) settle() {
	close(c.settled)
	c.settled = make(chan struct{})
}

// beginPublish makes t the transaction whose values publish reads, until
// endPublish.
func (c *txnCache[V]) beginPublish(t txnValues[V]) {
	c.pubMu.Lock()
	c.publishing = t
}

// endPublish ends a publication of t. If last, t's updates are all
// published: a value of t that none published leaves unsynced and
// committed (unless a later transaction wrote it again), so that it is
// read from Badger.
func (c *txnCache[V]) endPublish(t txnValues[V], last bool) {
	c.publishing = txnValues[V]{}
	c.pubMu.Unlock()
	if len(t.values) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.settle()
	if !last {
		return
	}
	dropped := false
	for k := range t.values {
		if u, ok := c.unsynced[k]; ok && u.seq == t.seq {
			delete(c.unsynced, k)
			c.drop(k)
			dropped = true
		}
	}
	if dropped {
		c.compactOrder()
	}
}

// forgetTxn drops what t wrote, whose commit or sync failed: its values
// leave unsynced (unless a later transaction wrote them again, to be
// forgotten in turn) and committed, published or not. The committer (a
// failed commit) or the answering stage.
func (c *txnCache[V]) forgetTxn(t txnValues[V]) {
	if len(t.values) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for k := range t.values {
		if u, ok := c.unsynced[k]; ok && u.seq == t.seq {
			delete(c.unsynced, k)
		}
		c.drop(k)
	}
	c.compactOrder()
	c.settle()
}

// publish makes key's value in the transaction being published the
// committed one, evicting the oldest values beyond the bounds. Between
// beginPublish and endPublish only. The committer publishes an update that
// is gossip once its transaction has committed, the answering stage any
// other once its batch is synced: so that each cache is published in
// commit order, a key is written by updates of one kind only.
func (c *txnCache[V]) publish(key string) {
	v, ok := c.publishing.values[key]
	if !ok {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if u, ok := c.unsynced[key]; ok && u.seq == c.publishing.seq {
		delete(c.unsynced, key)
	}
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

// compactOrder removes from order the keys no longer committed. c.mu held.
func (c *txnCache[V]) compactOrder() {
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
