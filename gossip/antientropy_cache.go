package gossip

import (
	"context"
	"sync"

	"github.com/vigilnet/vigil/roster"
	"github.com/vigilnet/vigil/store"
)

// headsCache remembers, per log, the heads an anti-entropy exchange last
// read from the store and their digest, until the log's stored
// checkpoints change (logChanged) or the roster does. Every exchange, both
// sides digest every roster log they hold checkpoints of: two store reads
// and a parse of every signature line per log, some 3 % of what a 50-node
// network spent while split views came a second apart, nearly all of it
// re-reading heads that had not changed. The detector is the only writer
// of checkpoint records and reports each write (detectorStore.Merge), so
// a cached entry is what the store holds.
type headsCache struct {
	mu sync.Mutex
	m  map[string]*headsEntry
}

type headsEntry struct {
	// version counts the changes of the log; an entry read while one
	// happened is not kept.
	version uint64
	valid   bool
	roster  *roster.Roster
	digest  [32]byte
	recs    []store.CheckpointRecord
}

func newHeadsCache() *headsCache { return &headsCache{m: map[string]*headsEntry{}} }

// changed drops origin's entry: its stored checkpoints changed.
func (c *headsCache) changed(origin string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[origin]
	if !ok {
		return // nothing cached; a read in progress started at version 0
	}
	e.version++
	e.valid = false
	e.recs = nil
}

// get returns origin's cached digest and heads for roster r, or the
// version a read must present to put.
func (c *headsCache) get(origin string, r *roster.Roster) (d [32]byte, recs []store.CheckpointRecord, version uint64, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, found := c.m[origin]
	if !found {
		e = &headsEntry{}
		c.m[origin] = e
	}
	if e.valid && e.roster == r {
		return e.digest, e.recs, e.version, true
	}
	return d, nil, e.version, false
}

// put keeps what a read that started at version found, unless origin
// changed meanwhile.
func (c *headsCache) put(origin string, r *roster.Roster, version uint64, d [32]byte, recs []store.CheckpointRecord) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.m[origin]
	if e == nil || e.version != version {
		return
	}
	e.valid, e.roster, e.digest, e.recs = true, r, d, recs
}

// cachedHeads returns origin's heads and their digest under r: from the
// cache, else read from the store (and cached). The records are shared:
// callers must not change them.
func (s *Service) cachedHeads(ctx context.Context, r *roster.Roster, origin string) ([32]byte, []store.CheckpointRecord, error) {
	c := s.det.headsCache
	d, recs, version, ok := c.get(origin, r)
	if ok {
		return d, recs, nil
	}
	recs, err := s.heads(ctx, origin)
	if err != nil {
		return d, nil, err
	}
	d = headsDigest(r, recs)
	c.put(origin, r, version, d, recs)
	return d, recs, nil
}
