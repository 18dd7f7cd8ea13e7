package gossip

import "sync"

// lru is a small bounded map with least-recently-used eviction.
//
// Entries live in one slice, linked into recency order by index, and the map
// holds only indexes: an entry costs its key and value, two int32 links and
// a map slot, and neither an insert nor an eviction allocates (a full cache
// reuses its least recent slot). A container/list version took two more
// allocations per insert (the element and the boxed entry) and about 80
// more bytes per entry, for a garbage collector to trace; the node keeps
// tens of thousands of entries in these caches (sigcache.go, validate.go,
// detector.go).
type lru[K comparable, V any] struct {
	mu    sync.Mutex
	max   int
	items map[K]int32
	// ents grows as entries arrive, to at most max.
	ents []lruEntry[K, V]
	// head is the most recently used entry, tail the least; free is a
	// chain (through next) of slots that take and remove emptied. nilIdx
	// ends each chain.
	head, tail, free int32
}

type lruEntry[K comparable, V any] struct {
	k          K
	v          V
	prev, next int32
}

const nilIdx = -1

func newLRU[K comparable, V any](max int) *lru[K, V] {
	if max < 1 {
		max = 1
	}
	return &lru[K, V]{max: max, items: map[K]int32{}, head: nilIdx, tail: nilIdx, free: nilIdx}
}

func (c *lru[K, V]) get(k K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if i, ok := c.items[k]; ok {
		c.toFront(i)
		return c.ents[i].v, true
	}
	var zero V
	return zero, false
}

// update sets k to fn(old, exists) atomically and returns the new value.
func (c *lru[K, V]) update(k K, fn func(old V, exists bool) V) V {
	c.mu.Lock()
	defer c.mu.Unlock()
	if i, ok := c.items[k]; ok {
		e := &c.ents[i]
		e.v = fn(e.v, true)
		c.toFront(i)
		return e.v
	}
	var zero V
	v := fn(zero, false)
	i := c.slot()
	c.ents[i] = lruEntry[K, V]{k: k, v: v, prev: nilIdx, next: nilIdx}
	c.items[k] = i
	c.pushFront(i)
	return v
}

// take removes k and returns what it held.
func (c *lru[K, V]) take(k K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	i, ok := c.items[k]
	if !ok {
		var zero V
		return zero, false
	}
	v := c.ents[i].v
	c.release(i)
	return v, true
}

func (c *lru[K, V]) remove(k K) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if i, ok := c.items[k]; ok {
		c.release(i)
	}
}

// len returns the number of entries.
func (c *lru[K, V]) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.items)
}

// slot returns an unlinked slot for a new entry: a freed one, a new one
// while fewer than max exist, else the least recent entry's, evicted.
func (c *lru[K, V]) slot() int32 {
	if i := c.free; i != nilIdx {
		c.free = c.ents[i].next
		return i
	}
	if len(c.ents) < c.max {
		if len(c.ents) == cap(c.ents) {
			// Grow by doubling, but never past max: a full cache holds
			// exactly max slots.
			n := min(max(2*cap(c.ents), 8), c.max)
			grown := make([]lruEntry[K, V], len(c.ents), n)
			copy(grown, c.ents)
			c.ents = grown
		}
		c.ents = c.ents[:len(c.ents)+1]
		return int32(len(c.ents) - 1)
	}
	i := c.tail
	c.unlink(i)
	delete(c.items, c.ents[i].k)
	return i
}

// release unlinks and forgets entry i and puts its slot on the free chain,
// clearing it so the cache holds no references for the collector.
func (c *lru[K, V]) release(i int32) {
	c.unlink(i)
	delete(c.items, c.ents[i].k)
	c.ents[i] = lruEntry[K, V]{prev: nilIdx, next: c.free}
	c.free = i
}

func (c *lru[K, V]) toFront(i int32) {
	if c.head == i {
		return
	}
	c.unlink(i)
	c.pushFront(i)
}

func (c *lru[K, V]) pushFront(i int32) {
	e := &c.ents[i]
	e.prev, e.next = nilIdx, c.head
	if c.head != nilIdx {
		c.ents[c.head].prev = i
	}
	c.head = i
	if c.tail == nilIdx {
		c.tail = i
	}
}

func (c *lru[K, V]) unlink(i int32) {
	e := &c.ents[i]
	if e.prev != nilIdx {
		c.ents[e.prev].next = e.next
	} else {
		c.head = e.next
	}
	if e.next != nilIdx {
		c.ents[e.next].prev = e.prev
	} else {
		c.tail = e.prev
	}
	e.prev, e.next = nilIdx, nilIdx
}
