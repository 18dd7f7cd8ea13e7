package node_test

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestDefaultCapsFitABusyClient: with the default HTTP caps, one client
// address holding 64 keep-alive connections (a log pushing in parallel, a
// load generator, a reverse proxy's pool) is served on all of them; the
// per-address cap is for floods, not for one busy peer.
func TestDefaultCapsFitABusyClient(t *testing.T) {
	a := newLog(t, "example.com/busy")
	cfg, vkey := newConfig(t, rosterOf(a))
	tn := startNode(t, cfg, vkey)
	addr := strings.TrimPrefix(tn.n.URL(), "http://")
	const conns, rounds = 64, 3
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		failed []string
	)
	ready := make(chan struct{})
	for i := range conns {
		wg.Go(func() {
			c, err := net.DialTimeout("tcp", addr, 5*time.Second)
			if err != nil {
				mu.Lock()
				failed = append(failed, fmt.Sprintf("conn %d: %v", i, err))
				mu.Unlock()
				return
			}
			defer c.Close()
			r := bufio.NewReader(c)
			<-ready // every connection is open before any request
			for range rounds {
				c.SetDeadline(time.Now().Add(10 * time.Second))
				if _, err := fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: %s\r\n\r\n", addr); err != nil {
					mu.Lock()
					failed = append(failed, fmt.Sprintf("conn %d: %v", i, err))
					mu.Unlock()
					return
				}
				resp, err := http.ReadResponse(r, nil)
				if err != nil || resp.StatusCode != http.StatusOK {
					mu.Lock()
					failed = append(failed, fmt.Sprintf("conn %d: %v %v", i, resp, err))
					mu.Unlock()
					return
				}
				resp.Body.Close()
			}
		})
	}
	close(ready)
	wg.Wait()
	if len(failed) > 0 {
		t.Fatalf("%d of %d keep-alive connections from one address failed, first: %s", len(failed), conns, failed[0])
	}
	if _, body := tn.get("/metrics"); strings.Contains(body, `vigil_http_connections_shed_total{limit="per_address"`) {
		t.Fatalf("connections shed by the per-address cap:\n%s", grepLines(body, "vigil_http_connections_shed_total"))
	}
}

func grepLines(s, substr string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
