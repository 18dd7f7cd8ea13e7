package node

import (
	"context"
	"encoding/json"
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

	"github.com/vigilnet/vigil/notify"
	"github.com/vigilnet/vigil/scitt"
	"github.com/vigilnet/vigil/testnet/scriptlog"
)

// metricsNode runs a witness node with gossip and, if configure sets
// them, webhooks, and returns it once gossip's metrics are registered
// (gossip registers them when it runs).
func metricsNode(t *testing.T, configure func(*Config)) *Node {
	t.Helper()
	dir := t.TempDir()
	cfg := DefaultConfig()
	cfg.DataDir = filepath.Join(dir, "data")
	cfg.KeysDir = filepath.Join(dir, "keys")
	cfg.Roster = filepath.Join(dir, "roster.txt")
	vkey, err := GenerateKeys(cfg.KeysDir, "witness.test/metrics")
	if err != nil {
		t.Fatal(err)
	}
	l, err := scriptlog.New("example.com/metrics")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg.Roster, []byte("log "+l.VerifierKey()+"\nwitness self "+vkey+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if configure != nil {
		configure(&cfg)
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
	t.Cleanup(func() { cancel(); <-done })
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(n.URL() + "/metrics")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if strings.Contains(string(b), "vigil_suspicions_total") {
				return n
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("gossip metrics never appeared on /metrics")
		}
		time.Sleep(20 * time.Millisecond) // polling a condition with a deadline
	}
}

// registered reports whether reg holds a collector named name: a probe
// registered under a name a collector already uses (with its own help and
// labels) is refused.
func registered(t *testing.T, reg *prometheus.Registry, name string) bool {
	t.Helper()
	probe := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: "metric name probe"})
	err := reg.Register(probe)
	if err == nil {
		reg.Unregister(probe)
		return false
	}
	if are := (prometheus.AlreadyRegisteredError{}); errors.As(err, &are) {
		t.Fatalf("%s: %v", name, err)
	}
	return true
}

type grafanaPanel struct {
	ID      int    `json:"id"`
	Type    string `json:"type"`
	Title   string `json:"title"`
	GridPos struct {
		H, W, X, Y int
	} `json:"gridPos"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
	Panels []grafanaPanel `json:"panels"`
}

// TestGrafanaDashboard checks docs/grafana-dashboard.json: it is valid
// JSON, its panels have distinct IDs and do not overlap on the 24-column
// grid, it has panels for the freshness, witness and notifier metrics, and
// every metric it names is one a node (with webhooks set) or the SCITT
// service registers, so that renaming a metric breaks a test instead of
// emptying a panel.
func TestGrafanaDashboard(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "docs", "grafana-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels     []grafanaPanel `json:"panels"`
		Templating struct {
			List []struct {
				Query any `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("docs/grafana-dashboard.json: %v", err)
	}
	var panels []grafanaPanel
	for _, p := range dash.Panels {
		panels = append(panels, p)
		panels = append(panels, p.Panels...)
	}
	ids := map[int]string{}
	var exprs []string
	for i, p := range panels {
		if other, ok := ids[p.ID]; ok {
			t.Errorf("panels %q and %q share ID %d", other, p.Title, p.ID)
		}
		ids[p.ID] = p.Title
		g := p.GridPos
		if g.W <= 0 || g.H <= 0 || g.X < 0 || g.X+g.W > 24 {
			t.Errorf("panel %q: gridPos %+v off the 24-column grid", p.Title, g)
		}
		for _, q := range panels[:i] {
			h := q.GridPos
			if g.X < h.X+h.W && h.X < g.X+g.W && g.Y < h.Y+h.H && h.Y < g.Y+g.H {
				t.Errorf("panels %q %+v and %q %+v overlap", q.Title, h, p.Title, g)
			}
		}
		if p.Type != "row" && len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	for _, v := range dash.Templating.List {
		if s, ok := v.Query.(string); ok {
			exprs = append(exprs, s)
		}
	}
	names := regexp.MustCompile(`\bvigil_[a-z0-9_]+\b`).FindAllString(strings.Join(exprs, "\n"), -1)
	slices.Sort(names)
	names = slices.Compact(names)
	for _, want := range []string{
		"vigil_log_checkpoint_age_seconds", "vigil_log_quorum_age_seconds", "vigil_log_expected_interval_seconds",
		"vigil_log_stale", "vigil_log_contested", "vigil_log_quorum_lost",
		"vigil_witness_alive", "vigil_witness_last_cosignature_timestamp_seconds", "vigil_witnesses_alive", "vigil_quorum_witnesses_needed",
		"vigil_notify_notifications_total", "vigil_notify_deliveries_total", "vigil_notify_outbox_deliveries",
	} {
		if !slices.Contains(names, want) {
			t.Errorf("no panel shows %s", want)
		}
	}

	n := metricsNode(t, func(c *Config) {
		c.Alerts = notify.Config{Webhooks: []notify.Webhook{{URL: "http://127.0.0.1:9/hook", Secret: "grafana-test-secret-0123"}}}
	})
	sreg := prometheus.NewRegistry()
	sreg.MustRegister(scitt.NewMetrics().Metrics()...)
	for _, name := range names {
		in := func(name string) bool { return registered(t, n.reg, name) || registered(t, sreg, name) }
		ok := in(name)
		// A histogram's series are its name with _bucket, _sum and _count.
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if base, cut := strings.CutSuffix(name, suffix); cut && !ok {
				ok = in(base)
			}
		}
		if !ok {
			t.Errorf("the dashboard uses %s, which neither a node nor the SCITT service registers", name)
		}
	}
}
