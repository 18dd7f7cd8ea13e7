package gossip

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/vigilnet/vigil/roster"
	"github.com/vigilnet/vigil/witness"
)

// ErrNoProofSource means the node has no way to read a log's tree (the log
// has no URL); the detector then compares sizes it can, without proofs.
var ErrNoProofSource = errors.New("no proof source for this log")

// ProofSource builds consistency proofs from a log's tree as the log serves
// it to this node.
type ProofSource interface {
	// ConsistencyProof returns the RFC 6962 proof from size m to size n
	// (1 <= m < n) of the log's tree at size n.
	ConsistencyProof(ctx context.Context, origin string, m, n uint64) ([][]byte, error)
	// SubtreeRoot returns the root of the first m entries, m a power of
	// two, from the log's tiles at tree size n >= m (its partial tiles
	// exist only for sizes it published, so never as of size m).
	SubtreeRoot(ctx context.Context, origin string, m, n uint64) ([]byte, error)
}

// TileProofs is a ProofSource reading each log's tlog-tiles from its roster
// URL (or URLFor's answer).
type TileProofs struct {
	Roster func() *roster.Roster
	// URLFor overrides the roster URL; nil uses it.
	URLFor func(*roster.Log) string
	// HTTPClient nil means a client with a 10s timeout.
	HTTPClient *http.Client

	mu      sync.Mutex
	clients map[string]*witness.TileClient
}

var _ ProofSource = (*TileProofs)(nil)

func (t *TileProofs) client(origin string) (*witness.TileClient, error) {
	l, ok := t.Roster().Log(origin)
	if !ok {
		return nil, ErrNoProofSource
	}
	u := l.URL
	if t.URLFor != nil {
		u = t.URLFor(l)
	}
	if u == "" {
		return nil, ErrNoProofSource
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.clients == nil {
		t.clients = map[string]*witness.TileClient{}
	}
	if c, ok := t.clients[u]; ok {
		return c, nil
	}
	hc := t.HTTPClient
	if hc == nil {
		// Tiles are read in bursts (several per proof): keep connections
		// to each log open rather than dialling for every tile.
		hc = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			MaxIdleConnsPerHost: 16,
			IdleConnTimeout:     90 * time.Second,
			ForceAttemptHTTP2:   true,
		}}
	}
	c, err := witness.NewTileClient(u, hc)
	if err != nil {
		return nil, err
	}
	t.clients[u] = c
	return c, nil
}

// ConsistencyProof implements ProofSource.
func (t *TileProofs) ConsistencyProof(ctx context.Context, origin string, m, n uint64) ([][]byte, error) {
	c, err := t.client(origin)
	if err != nil {
		return nil, err
	}
	return c.ConsistencyProof(ctx, m, n)
}

// SubtreeRoot implements ProofSource: it reads the node from the tiles as
// they are at tree size n, the size whose consistency proof the node
// completes, whose partial tiles the log wrote when it published that size
// (it writes none for a size it did not publish, so never as of size m).
func (t *TileProofs) SubtreeRoot(ctx context.Context, origin string, m, n uint64) ([]byte, error) {
	c, err := t.client(origin)
	if err != nil {
		return nil, err
	}
	return c.SubtreeRoot(ctx, m, n)
}
