package witness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/tessera/api"
	"github.com/transparency-dev/tessera/api/layout"
	"github.com/transparency-dev/tessera/client"

	"github.com/vigilnet/vigil/tlog"
)

// Bounds on what a TileClient reads from a log.
const (
	// maxCheckpointBytes: a log's checkpoint may carry cosignatures,
	// ML-DSA-44 ones among them (~3.3 KB a line).
	maxCheckpointBytes = tlog.MaxNoteBytes
	maxTileBytes       = layout.TileWidth * 32
)

// TileClient reads a C2SP tlog-tiles log (c2sp.org/tlog-tiles): its
// checkpoint, and hash tiles to build consistency proofs with tessera's
// client.ProofBuilder. It is safe for concurrent use.
type TileClient struct {
	base *url.URL
	hc   *http.Client
}

// NewTileClient returns a client for the log whose tlog-tiles prefix is
// rawURL. hc nil means http.DefaultClient; set its Timeout.
func NewTileClient(rawURL string, hc *http.Client) (*TileClient, error) {
	if !strings.HasSuffix(rawURL, "/") {
		rawURL += "/"
	}
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("log URL %q is not an http(s) URL", rawURL)
	}
	if hc == nil {
		hc = http.DefaultClient
	}
	return &TileClient{base: u, hc: hc}, nil
}

// URL returns the log's tlog-tiles prefix.
func (c *TileClient) URL() string { return c.base.String() }

// Checkpoint fetches <prefix>/checkpoint (unverified).
func (c *TileClient) Checkpoint(ctx context.Context) ([]byte, error) {
	return c.get(ctx, layout.CheckpointPath, maxCheckpointBytes)
}

// ReadTile fetches hash tile (level, index) of partial width p, falling back
// to the full tile when the partial one is gone. It is a
// client.TileFetcherFunc.
func (c *TileClient) ReadTile(ctx context.Context, level, index uint64, p uint8) ([]byte, error) {
	b, err := c.get(ctx, layout.TilePath(level, index, p), maxTileBytes)
	if errors.Is(err, os.ErrNotExist) && p > 0 {
		// SPEC: logs MAY delete partial tiles once the full tile exists.
		b, err = c.get(ctx, layout.TilePath(level, index, 0), maxTileBytes)
	}
	return b, err
}

var _ client.TileFetcherFunc = (*TileClient)(nil).ReadTile

// ConsistencyProof builds the RFC 6962 consistency proof from size m to
// size n from the log's tiles at tree size n: client.ProofBuilder reads
// every tile with the partial width it has at size n (or the full tile).
func (c *TileClient) ConsistencyProof(ctx context.Context, m, n uint64) ([][]byte, error) {
	if m == 0 || m == n {
		return nil, nil
	}
	pb, err := client.NewProofBuilder(ctx, n, c.ReadTile)
	if err != nil {
		return nil, fmt.Errorf("consistency proof %d→%d: %w", m, n, err)
	}
	p, err := pb.ConsistencyProof(ctx, m, n)
	if err != nil {
		return nil, fmt.Errorf("consistency proof %d→%d: %w", m, n, err)
	}
	return p, nil
}

// SubtreeRoot returns the root of the log's first m entries, m a power of
// two: the single tree node (level log2(m), index 0), read from the tiles as
// they are at tree size n >= m. A tlog-tiles log serves partial tiles only
// for the sizes it published, so the node is read from the tile of the width
// it has at size n (or the full tile), never from a tile of size m, which
// may not exist (Tessera writes none for a size inside a batch).
func (c *TileClient) SubtreeRoot(ctx context.Context, m, n uint64) ([]byte, error) {
	if m == 0 || m&(m-1) != 0 {
		return nil, fmt.Errorf("subtree root of %d: not a power of two", m)
	}
	if n < m {
		return nil, fmt.Errorf("subtree root of %d: tree size %d is smaller", m, n)
	}
	level := uint64(bits.TrailingZeros64(m))
	tl, ti, nl, ni := layout.NodeCoordsToTileAddress(level, 0)
	raw, err := c.ReadTile(ctx, tl, ti, layout.PartialTileSize(tl, ti, n))
	if err != nil {
		return nil, fmt.Errorf("subtree root of %d at size %d: %w", m, n, err)
	}
	var tile api.HashTile
	if err := tile.UnmarshalText(raw); err != nil {
		return nil, fmt.Errorf("subtree root of %d at size %d: tile %d/%d: %w", m, n, tl, ti, err)
	}
	first, last := ni<<nl, (ni+1)<<nl
	if last > uint64(len(tile.Nodes)) {
		return nil, fmt.Errorf("subtree root of %d at size %d: tile %d/%d has %d hashes, want %d", m, n, tl, ti, len(tile.Nodes), last)
	}
	r := (&compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}).NewEmptyRange(0)
	for _, h := range tile.Nodes[first:last] {
		if err := r.Append(h, nil); err != nil {
			return nil, fmt.Errorf("subtree root of %d: %w", m, err)
		}
	}
	return r.GetRootHash(nil)
}

func (c *TileClient) get(ctx context.Context, path string, limit int64) ([]byte, error) {
	u := c.base.JoinPath(path)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetching %s: %w", u, err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound:
		return nil, fmt.Errorf("fetching %s: %w", u, os.ErrNotExist)
	default:
		return nil, fmt.Errorf("fetching %s: status %s", u, resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("fetching %s: %w", u, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("fetching %s: response larger than %d bytes", u, limit)
	}
	return b, nil
}
