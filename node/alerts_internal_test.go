package node

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilnet/vigil/testnet/scriptlog"
)

// TestAlertRuleMetricsRegistered checks that every metric the shipped
// alerting rules (docs/alerts/vigil.rules.yml) name is registered by a
// running witness node, so that renaming a metric breaks a test instead of
// silently disarming an alert.
func TestAlertRuleMetricsRegistered(t *testing.T) {
	rules, err := os.ReadFile(filepath.Join("..", "docs", "alerts", "vigil.rules.yml"))
	if err != nil {
		t.Fatal(err)
	}
	names := regexp.MustCompile(`\bvigil_[a-z0-9_]+\b`).FindAllString(string(rules), -1)
	slices.Sort(names)
	names = slices.Compact(names)
	if len(names) < 8 {
		t.Fatalf("found only %v in the rules", names)
	}

	dir := t.TempDir()
	cfg := DefaultConfig()
	cfg.DataDir = filepath.Join(dir, "data")
	cfg.KeysDir = filepath.Join(dir, "keys")
	cfg.Roster = filepath.Join(dir, "roster.txt")
	vkey, err := GenerateKeys(cfg.KeysDir, "witness.test/alerts")
	if err != nil {
		t.Fatal(err)
	}
	l, err := scriptlog.New("example.com/alerts")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg.Roster, []byte("log "+l.VerifierKey()+"\nwitness self "+vkey+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	n, err := New(cfg, Deps{Listener: ln})
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	defer func() { cancel(); <-done }()
	// Gossip registers its metrics once it runs; its unlabelled counter
	// shows on /metrics from then on.
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(n.URL() + "/metrics")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if strings.Contains(string(b), "vigil_suspicions_total") {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("gossip metrics never appeared on /metrics")
		}
		time.Sleep(20 * time.Millisecond) // polling a condition with a deadline
	}
	for _, name := range names {
		// Registering a probe under a name a collector already uses
		// (with its own help and labels) is refused: the name is taken.
		probe := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: "alert rule probe"})
		err := n.reg.Register(probe)
		registered := err != nil
		if err == nil {
			n.reg.Unregister(probe)
		} else if are := (prometheus.AlreadyRegisteredError{}); errors.As(err, &are) {
			t.Fatalf("%s: %v", name, err)
		}
		if !registered {
			t.Errorf("the alert rules use %s, which the node does not register", name)
		}
	}
}
