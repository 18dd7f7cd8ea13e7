package testnet

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/vigilnet/vigil/feed"
)

// evidenceWatch follows the evidence events of members (GET
// /v1/events?types=evidence) and remembers when each member stored its
// first evidence about each origin, so that a measurement learns of it
// without polling fifty nodes' evidence lists every few milliseconds (which
// cost CPU the measurement was meant to see go to detection).
type evidenceWatch struct {
	mu     sync.Mutex
	stored []map[string]time.Time
	// live[i] is false once member i's stream ended: then ask its list.
	live   []bool
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// watchEvidence subscribes to every running member's evidence events and
// returns once every subscription is registered. Close it.
func (nw *Network) watchEvidence(ctx context.Context) (*evidenceWatch, error) {
	ctx, cancel := context.WithCancel(ctx)
	w := &evidenceWatch{stored: make([]map[string]time.Time, len(nw.Members)), live: make([]bool, len(nw.Members)), cancel: cancel}
	for i, m := range nw.Members {
		w.stored[i] = map[string]time.Time{}
		if !m.Running() || m.URL == "" {
			continue
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.URL+"/v1/events?types=evidence", nil)
		if err != nil {
			w.Close()
			return nil, err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			w.Close()
			return nil, fmt.Errorf("%s: events: %w", m.Name, err)
		}
		br := bufio.NewReader(resp.Body)
		// The server registers the stream before its first line.
		if first, err := br.ReadString('\n'); resp.StatusCode != http.StatusOK || err != nil || !strings.HasPrefix(first, "retry: ") {
			resp.Body.Close()
			w.Close()
			return nil, fmt.Errorf("%s: events: status %d, first line %q, %v", m.Name, resp.StatusCode, first, err)
		}
		w.live[i] = true
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			defer resp.Body.Close()
			w.follow(i, br)
		}()
	}
	return w, nil
}

// follow reads member i's event stream until it ends.
func (w *evidenceWatch) follow(i int, br *bufio.Reader) {
	defer func() {
		w.mu.Lock()
		w.live[i] = false
		w.mu.Unlock()
	}()
	feed.ReadEvents(br, func(ev feed.StreamEvent) bool {
		var e feed.Evidence
		if ev.Type == feed.EventEvidence && json.Unmarshal([]byte(ev.Data), &e) == nil {
			w.mu.Lock()
			if old, ok := w.stored[i][e.Origin]; !ok || e.Stored.Before(old) {
				w.stored[i][e.Origin] = e.Stored
			}
			w.mu.Unlock()
		}
		return true
	})
}

// get returns when member i stored evidence about origin, if the watch saw
// it, and whether its stream is still followed.
func (w *evidenceWatch) get(i int, origin string) (time.Time, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.stored[i][origin], w.live[i]
}

// Close ends every subscription.
func (w *evidenceWatch) Close() {
	w.cancel()
	w.wg.Wait()
}
