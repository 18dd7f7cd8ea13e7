package scitt

import (
	"context"
	"fmt"
	"sync"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/tessera/api"
	"github.com/transparency-dev/tessera/api/layout"
	"github.com/transparency-dev/tessera/client"
	"golang.org/x/sync/singleflight"
)

// proofCache builds inclusion proofs from the log's tiles. Unlike
// tessera's client.ProofBuilder (which rehashes the inside of a tile for
// every node it is asked for) it hashes each tile's interior once and keeps
// the result, which matters at thousands of receipts per second.
type proofCache struct {
	read client.TileFetcherFunc

	mu    sync.RWMutex
	tiles map[tileID]*tileNodes
	group singleflight.Group // one read and hash per tile, however many ask
}

type tileID struct {
	level, index uint64
	width        uint8 // 0 for a full tile
}

// tileNodes holds every complete subtree hash inside one tile:
// nodes[k][j] is the root of hashes [j*2^k, (j+1)*2^k) of the tile.
type tileNodes struct{ nodes [][][]byte }

const maxCachedTiles = 4096

func newProofCache(read client.TileFetcherFunc) *proofCache {
	return &proofCache{read: read, tiles: map[tileID]*tileNodes{}}
}

func (c *proofCache) tile(ctx context.Context, id tileID) (*tileNodes, error) {
	c.mu.RLock()
	t, ok := c.tiles[id]
	c.mu.RUnlock()
	if ok {
		return t, nil
	}
	v, err, _ := c.group.Do(fmt.Sprint(id.level, "/", id.index, "/", id.width), func() (any, error) {
		return c.load(ctx, id)
	})
	if err != nil {
		return nil, err
	}
	return v.(*tileNodes), nil
}

func (c *proofCache) load(ctx context.Context, id tileID) (*tileNodes, error) {
	raw, err := c.read(ctx, id.level, id.index, id.width)
	if err != nil {
		return nil, fmt.Errorf("reading tile %d/%d.p/%d: %w", id.level, id.index, id.width, err)
	}
	var ht api.HashTile
	if err := ht.UnmarshalText(raw); err != nil {
		return nil, fmt.Errorf("parsing tile: %w", err)
	}
	want := int(id.width)
	if want == 0 {
		want = layout.TileWidth
	}
	if len(ht.Nodes) < want {
		return nil, fmt.Errorf("tile %d/%d has %d hashes, want %d", id.level, id.index, len(ht.Nodes), want)
	}
	t := &tileNodes{nodes: [][][]byte{ht.Nodes[:want]}}
	for lvl := t.nodes[0]; len(lvl) > 1; {
		next := make([][]byte, len(lvl)/2)
		for j := range next {
			next[j] = rfc6962.DefaultHasher.HashChildren(lvl[2*j], lvl[2*j+1])
		}
		t.nodes = append(t.nodes, next)
		lvl = next
	}
	c.mu.Lock()
	if len(c.tiles) >= maxCachedTiles {
		clear(c.tiles)
	}
	c.tiles[id] = t
	c.mu.Unlock()
	return t, nil
}

// inclusion returns the RFC 9162 inclusion proof of index in a tree of size.
func (c *proofCache) inclusion(ctx context.Context, index, size uint64) ([][]byte, error) {
	nodes, err := proof.Inclusion(index, size)
	if err != nil {
		return nil, err
	}
	hashes := make([][]byte, 0, len(nodes.IDs))
	for _, n := range nodes.IDs {
		tl, ti, nl, ni := layout.NodeCoordsToTileAddress(uint64(n.Level), n.Index)
		t, err := c.tile(ctx, tileID{tl, ti, layout.PartialTileSize(tl, ti, size)})
		if err != nil {
			return nil, err
		}
		if int(nl) >= len(t.nodes) || ni >= uint64(len(t.nodes[nl])) {
			return nil, fmt.Errorf("node %d/%d missing from its tile", n.Level, n.Index)
		}
		hashes = append(hashes, t.nodes[nl][ni])
	}
	return nodes.Rehash(hashes, rfc6962.DefaultHasher.HashChildren)
}
