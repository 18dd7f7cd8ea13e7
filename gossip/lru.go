package gossip

import (
	"container/list"
	"sync"
)

// lru is a small bounded map with least-recently-used eviction.
type lru[K comparable, V any] struct {
	mu    sync.Mutex
	max   int
	ll    *list.List
	items map[K]*list.Element
}

type lruEntry[K comparable, V any] struct {
	k K
	v V
}

func newLRU[K comparable, V any](max int) *lru[K, V] {
	return &lru[K, V]{max: max, ll: list.New(), items: map[K]*list.Element{}}
}

func (c *lru[K, V]) get(k K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[k]; ok {
		c.ll.MoveToFront(e)
		return e.Value.(*lruEntry[K, V]).v, true
	}
	var zero V
	return zero, false
}

// update sets k to fn(old, exists) atomically and returns the new value.
func (c *lru[K, V]) update(k K, fn func(old V, exists bool) V) V {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[k]; ok {
		ent := e.Value.(*lruEntry[K, V])
		ent.v = fn(ent.v, true)
		c.ll.MoveToFront(e)
		return ent.v
	}
	var zero V
	v := fn(zero, false)
	c.items[k] = c.ll.PushFront(&lruEntry[K, V]{k, v})
	if c.ll.Len() > c.max {
		last := c.ll.Back()
		c.ll.Remove(last)
		delete(c.items, last.Value.(*lruEntry[K, V]).k)
	}
	return v
}

// take removes k and returns what it held.
func (c *lru[K, V]) take(k K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.items[k]
	if !ok {
		var zero V
		return zero, false
	}
	c.ll.Remove(e)
	delete(c.items, k)
	return e.Value.(*lruEntry[K, V]).v, true
}

func (c *lru[K, V]) remove(k K) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[k]; ok {
		c.ll.Remove(e)
		delete(c.items, k)
	}
}
