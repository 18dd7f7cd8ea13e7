package store

import "sync"

// witnessCache holds the committed witness state of every log updated since
// the store opened, so that the group committer's compare-and-swap and the
// readers (the feed rebuilds a log's view about once a second) need not read
// Badger for it. Under load that read was a third of the committer's own
// work per update, and the committer is serial.
//
// Only the committer writes it, and only what is durable: an update's new
// state is staged while its transaction is open and published once the
// transaction has committed; a failed commit forgets the staged origins,
// whose state on disk is then unknown, so they are read from Badger again.
// Readers never fill it, so a read racing a commit cannot leave a stale
// entry. Entries are one per witnessed log (roster-bounded) and share the
// checkpoint bytes with callers, who must not modify them.
type witnessCache struct {
	mu        sync.RWMutex
	committed map[string]WitnessState

	// staged is the open transaction's updates, in the committer only.
	staged map[string]WitnessState
}

func newWitnessCache() *witnessCache {
	return &witnessCache{committed: map[string]WitnessState{}, staged: map[string]WitnessState{}}
}

// get returns the committed state of origin, if cached.
func (c *witnessCache) get(origin string) (WitnessState, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	st, ok := c.committed[origin]
	return st, ok
}

// current returns what an update in the open transaction must see: a state
// staged earlier in the same transaction, else the committed one. Committer
// only.
func (c *witnessCache) current(origin string) (WitnessState, bool) {
	if st, ok := c.staged[origin]; ok {
		return st, true
	}
	return c.get(origin)
}

// stage records origin's state as written in the open transaction.
// Committer only.
func (c *witnessCache) stage(origin string, st WitnessState) { c.staged[origin] = st }

// publish makes origin's staged state the committed one, once its
// transaction is durable. Committer only.
func (c *witnessCache) publish(origin string) {
	st, ok := c.staged[origin]
	if !ok {
		return
	}
	c.mu.Lock()
	c.committed[origin] = st
	c.mu.Unlock()
}

// forget drops the cached state of every staged origin: their transaction
// failed. Committer only.
func (c *witnessCache) forget() {
	c.mu.Lock()
	for origin := range c.staged {
		delete(c.committed, origin)
	}
	c.mu.Unlock()
}

// endTxn clears the staged updates when a transaction ends. Committer only.
func (c *witnessCache) endTxn() { clear(c.staged) }
