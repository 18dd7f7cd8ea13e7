package testnet

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/vigilnet/vigil/tlog"
)

// servedQuorum asks a node's feed for the latest checkpoint of origin with
// at least k roster cosignatures (GET /v1/logs/{logID}/checkpoint?k=K) and
// returns it if its size is at least size, or nil if the node has none yet.
func servedQuorum(ctx context.Context, feedURL, origin string, size uint64, k int) ([]byte, uint64, error) {
	u := fmt.Sprintf("%s/v1/logs/%s/checkpoint?k=%d", feedURL, tlog.LogID(origin), k)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		// A node that is starting, stopping or slow is not an error of the
		// network; the caller's deadline decides.
		return nil, 0, nil
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil || resp.StatusCode != http.StatusOK {
		return nil, 0, nil
	}
	text, _, ok := strings.Cut(string(body), "\n\n")
	if !ok {
		return nil, 0, fmt.Errorf("%s serves a checkpoint that is not a signed note", feedURL)
	}
	c, err := tlog.ParseCheckpoint([]byte(text + "\n"))
	if err != nil {
		return nil, 0, fmt.Errorf("%s serves a checkpoint that does not parse: %w", feedURL, err)
	}
	if c.Size < size {
		return nil, 0, nil
	}
	return body, c.Size, nil
}

// waitQuorum waits until the feed at feedURL serves a checkpoint of origin
// of at least size with k cosignatures, and shows it.
func waitQuorum(ctx context.Context, feedURL, origin string, size uint64, k int, say func(string, ...any)) error {
	var body []byte
	var got uint64
	err := pollUntil(ctx, time.Minute, 100*time.Millisecond, func() (bool, error) {
		var err error
		body, got, err = servedQuorum(ctx, feedURL, origin, size, k)
		return body != nil, err
	})
	if err != nil {
		return fmt.Errorf("no checkpoint of %s with %d cosignatures at size ≥ %d: %w", origin, k, size, err)
	}
	say("  the regulator's node serves %s at size %d with ≥ %d witness cosignatures:\n%s", origin, got, k, indent(string(body)))
	return nil
}

// WaitCosigned waits until every running member serves a checkpoint of
// origin of at least size with k roster cosignatures: the witnesses'
// cosignatures have reached the whole network, whether it pulled them from
// the log or heard them by gossip.
func (nw *Network) WaitCosigned(ctx context.Context, origin string, size uint64, k int, d time.Duration) error {
	missing := ""
	err := pollUntil(ctx, d, 50*time.Millisecond, func() (bool, error) {
		for _, m := range nw.Members {
			if !m.Running() {
				continue
			}
			body, _, err := servedQuorum(ctx, m.URL, origin, size, k)
			if err != nil || body == nil {
				missing = m.Name
				return false, err
			}
		}
		return true, nil
	})
	if err != nil && missing != "" {
		return fmt.Errorf("%s serves no checkpoint of %s at size ≥ %d with %d cosignatures: %w", missing, origin, size, k, err)
	}
	return err
}
