package connflood_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vigilnet/vigil/node"
	"github.com/vigilnet/vigil/testnet/connflood"
	"github.com/vigilnet/vigil/testnet/load"
	"github.com/vigilnet/vigil/testnet/scriptlog"
)

// witnessed is a log the node under test follows, and the add-checkpoint
// requests that move the node's witness along it.
type witnessed struct {
	log  *scriptlog.Log
	size uint64 // the witness's size of the log
}

func newWitnessed(t *testing.T) *witnessed {
	t.Helper()
	l, err := scriptlog.New("connflood.vigil.example/log")
	if err != nil {
		t.Fatal(err)
	}
	return &witnessed{log: l}
}

func (w *witnessed) policy() []byte {
	return fmt.Appendf(nil, "log %s\nquorum none\n", w.log.VerifierKey())
}

// addCheckpoint asks the node to cosign the log's next checkpoint.
func (w *witnessed) addCheckpoint(ctx context.Context, base string) (int, string, time.Duration, error) {
	w.log.AppendN(1, "connflood")
	st, err := load.NewStep(w.log, w.size, w.log.Size())
	if err != nil {
		return 0, "", 0, err
	}
	code, body, d, err := connflood.Probe(ctx, http.MethodPost, base+"/add-checkpoint", st.Body)
	if code == http.StatusOK {
		w.size = st.Size
	}
	return code, string(body), d, err
}

// raiseFDLimit lets this process hold need descriptors, raising the hard
// limit too where it may (as root); false means it cannot.
func raiseFDLimit(need uint64) (uint64, bool) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, false
	}
	if lim.Cur >= need {
		return lim.Cur, true
	}
	want := syscall.Rlimit{Cur: need, Max: max(lim.Max, need)}
	if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want) != nil {
		want = syscall.Rlimit{Cur: lim.Max, Max: lim.Max}
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want)
	}
	_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
	return lim.Cur, lim.Cur >= need
}

func requireFDs(t *testing.T, need uint64) {
	t.Helper()
	if got, ok := raiseFDLimit(need); !ok {
		msg := fmt.Sprintf("SKIPPED: this process may hold %d file descriptors, the flood needs %d", got, need)
		fmt.Fprintln(os.Stderr, "connflood:", msg)
		t.Skip(msg)
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

// TestFloodDoesNotStarveWitness holds 1,500 idle connections (slowloris
// headers and bodies, event streams) from 100 loopback addresses against a
// node whose connection cap is 64, and checks that add-checkpoint and
// /healthz are answered 200 all along, that the node sheds connections
// rather than holding them, and that it stays within its cap.
func TestFloodDoesNotStarveWitness(t *testing.T) {
	if testing.Short() {
		t.Skip("holds 1,500 connections")
	}
	const conns, maxConns = 1500, 64
	requireFDs(t, conns+1024)
	w := newWitnessed(t)
	nd, err := load.StartNodeWith(t.TempDir(), w.policy(), slog.New(slog.DiscardHandler), func(c *node.Config) {
		c.Gossip.Disabled = true
		c.HTTP = node.HTTPConfig{MaxConns: maxConns, MaxConnsPerAddr: 16, MaxEventStreams: 24, MaxEventStreamsPerAddr: 2, EventStreamLifetime: time.Minute}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer nd.Close()
	ctx := context.Background()
	if code, body, _, err := w.addCheckpoint(ctx, nd.URL); err != nil || code != http.StatusOK {
		t.Fatalf("add-checkpoint before the flood: %d %q %v", code, body, err)
	}

	fl, err := connflood.Start(ctx, connflood.Config{
		Target: nd.Node.Addr().String(), Conns: conns, Sources: 100,
		Redial: 200 * time.Millisecond, Interval: 500 * time.Millisecond, Duration: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer fl.Stop()
	// Every connection dialled once, and the node shedding.
	waitFor(t, "the flood to dial every connection", 30*time.Second, func() bool { return fl.Stats().Dials >= conns })
	waitFor(t, "the node to shed connections", 30*time.Second, func() bool { return fl.Stats().ClosedTotal() >= conns/2 })

	for i := range 5 {
		code, body, d, err := w.addCheckpoint(ctx, nd.URL)
		if err != nil || code != http.StatusOK {
			t.Fatalf("add-checkpoint %d during the flood: %d %q %v", i, code, body, err)
		}
		hc, _, hd, err := connflood.Probe(ctx, http.MethodGet, nd.URL+"/healthz", nil)
		if err != nil || hc != http.StatusOK {
			t.Fatalf("healthz %d during the flood: %d %v", i, hc, err)
		}
		t.Logf("round %d: add-checkpoint %v, healthz %v, flood %+v", i, d, hd, fl.Stats())
	}
	m, err := connflood.Metrics(ctx, nd.URL)
	if err != nil {
		t.Fatal(err)
	}
	if open := m["vigil_http_connections"]; open > maxConns {
		t.Errorf("node holds %v connections, above its cap of %d", open, maxConns)
	}
	if m["vigil_http_connections_shed_total"] == 0 {
		t.Error("the node shed no connection")
	}
	if s := m["vigil_feed_sse_subscribers"]; s > 24 {
		t.Errorf("%v event streams, above the cap of 24", s)
	}
	st := fl.Stop()
	t.Logf("flood: %+v; node shed %v (no_request %v, slow_body %v, stream %v, refused %v), streams displaced %v",
		st, m["vigil_http_connections_shed_total"],
		sumLabel(m, "vigil_http_connections_shed_total", `reason="no_request"`),
		sumLabel(m, "vigil_http_connections_shed_total", `reason="slow_body"`),
		sumLabel(m, "vigil_http_connections_shed_total", `reason="stream"`),
		sumLabel(m, "vigil_http_connections_shed_total", `reason="refused"`),
		m["vigil_feed_sse_streams_ended_total"])
}

// sumLabel sums the samples of family whose labels include label.
func sumLabel(m map[string]float64, family, label string) float64 {
	var s float64
	for k, v := range m {
		if strings.HasPrefix(k, family+"{") && strings.Contains(k, label) {
			s += v
		}
	}
	return s
}
