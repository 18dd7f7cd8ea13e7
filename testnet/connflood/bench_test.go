package connflood_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/vigilnet/vigil/node"
	"github.com/vigilnet/vigil/testnet/connflood"
)

// TestBenchConns is the full measurement (make bench-conns): a real `vigil
// node` process with its default configuration and a service's usual 1,024
// file descriptors, 15,000 idle connections held against it from 1,000
// loopback addresses (half slowloris, half event streams), and a client
// that meanwhile asks for add-checkpoint and /healthz once a second. It
// checks add-checkpoint is answered 200 in under 2 s, /healthz in under 1 s,
// and that the node's RSS stays under 150 MB. Knobs: VIGIL_BENCH_CONNS_N
// (connections, default 15000), VIGIL_BENCH_CONNS_SECONDS (measurement,
// default 30).
func TestBenchConns(t *testing.T) {
	if os.Getenv("VIGIL_BENCH_CONNS") == "" {
		t.Skip("set VIGIL_BENCH_CONNS=1 (make bench-conns)")
	}
	conns := envInt(t, "VIGIL_BENCH_CONNS_N", 15000)
	seconds := envInt(t, "VIGIL_BENCH_CONNS_SECONDS", 30)
	requireFDs(t, uint64(conns)+2048)
	prlimit, err := exec.LookPath("prlimit")
	if err != nil {
		t.Fatal("prlimit (util-linux) is needed to run the node with 1,024 file descriptors")
	}

	dir := t.TempDir()
	bin := filepath.Join(dir, "vigil")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/vigilnet/vigil/cmd/vigil").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	w := newWitnessed(t)
	cfg := node.DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.DataDir = filepath.Join(dir, "data")
	cfg.KeysDir = filepath.Join(dir, "keys")
	cfg.Roster = filepath.Join(dir, "roster.txt")
	cfg.Gossip.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
	cfg.LogLevel = "warn"
	if _, err := node.GenerateKeys(cfg.KeysDir, "bench.vigil.example/conns"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg.Roster, w.policy(), 0o644); err != nil {
		t.Fatal(err)
	}
	b, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "vigil.yaml")
	if err := os.WriteFile(cfgPath, b, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(prlimit, "--nofile=1024:1024", bin, "node", "--config", cfgPath)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := os.Create(filepath.Join(dir, "node.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			log, _ := os.ReadFile(stderr.Name())
			t.Logf("node log:\n%s", log)
		}
	}()
	urlc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if u, ok := strings.CutPrefix(sc.Text(), "vigil node listening on "); ok {
				urlc <- u
			}
		}
	}()
	var base string
	select {
	case base = <-urlc:
	case <-time.After(60 * time.Second):
		t.Fatal("the node did not start")
	}
	pid := cmd.Process.Pid
	if lim := nofile(t, pid); lim != 1024 {
		t.Fatalf("node runs with %d file descriptors, want 1024", lim)
	}
	ctx := context.Background()
	if code, body, _, err := w.addCheckpoint(ctx, base); err != nil || code != http.StatusOK {
		t.Fatalf("add-checkpoint before the flood: %d %q %v", code, body, err)
	}
	rssBefore := rssMB(t, pid)

	fl, err := connflood.Start(ctx, connflood.Config{
		Target: strings.TrimPrefix(base, "http://"), Conns: conns, Sources: 1000,
		Duration: time.Duration(seconds)*time.Second + 2*time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer fl.Stop()
	waitFor(t, "the flood to dial every connection", 2*time.Minute, func() bool { return fl.Stats().Dials >= int64(conns) })
	start := time.Now()
	var addLat, healthLat []time.Duration
	var rssMax float64
	fdMax := 0
	var heldMin, heldMax int64 = int64(conns), 0
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for time.Since(start) < time.Duration(seconds)*time.Second {
		<-tick.C
		held := fl.Stats().HeldTotal()
		heldMin, heldMax = min(heldMin, held), max(heldMax, held)
		code, body, d, err := w.addCheckpoint(ctx, base)
		if err != nil || code != http.StatusOK {
			m, _ := connflood.Metrics(ctx, base)
			t.Fatalf("add-checkpoint during the flood: %d %q %v (after %v); node: %s", code, body, err, d, connSummary(m))
		}
		addLat = append(addLat, d)
		hc, _, hd, err := connflood.Probe(ctx, http.MethodGet, base+"/healthz", nil)
		if err != nil || hc != http.StatusOK {
			m, _ := connflood.Metrics(ctx, base)
			t.Fatalf("healthz during the flood: %d %v (after %v); node: %s", hc, err, hd, connSummary(m))
		}
		healthLat = append(healthLat, hd)
		rssMax = max(rssMax, rssMB(t, pid))
		fdMax = max(fdMax, openFDs(t, pid))
	}
	m, err := connflood.Metrics(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	st := fl.Stop()
	slices.Sort(addLat)
	slices.Sort(healthLat)
	q := func(l []time.Duration, p float64) time.Duration {
		return l[int(p*float64(len(l)-1))].Round(100 * time.Microsecond)
	}
	fmt.Printf("bench-conns: %d connections held by the flood (%d-%d open client-side while measured), node RLIMIT_NOFILE 1024, %d rounds over %ds\n",
		conns, heldMin, heldMax, len(addLat), seconds)
	fmt.Printf("  add-checkpoint: p50 %v  p90 %v  max %v (all 200)\n", q(addLat, .5), q(addLat, .9), q(addLat, 1))
	fmt.Printf("  healthz:        p50 %v  p90 %v  max %v (all 200)\n", q(healthLat, .5), q(healthLat, .9), q(healthLat, 1))
	fmt.Printf("  node RSS: %.0f MB before, %.0f MB max during; at most %d file descriptors open\n", rssBefore, rssMax, fdMax)
	fmt.Printf("  node: %v connections open at the end (new %v, idle %v, body %v, stream %v), %v event streams\n",
		m["vigil_http_connections"], sumLabel(m, "vigil_http_connections", `state="new"`),
		sumLabel(m, "vigil_http_connections", `state="idle"`), sumLabel(m, "vigil_http_connections", `state="body"`),
		sumLabel(m, "vigil_http_connections", `state="stream"`), m["vigil_feed_sse_subscribers"])
	fmt.Printf("  node shed %v connections: no_request %v, slow_body %v, stream %v, refused %v; event streams displaced %v\n",
		m["vigil_http_connections_shed_total"],
		sumLabel(m, "vigil_http_connections_shed_total", `reason="no_request"`),
		sumLabel(m, "vigil_http_connections_shed_total", `reason="slow_body"`),
		sumLabel(m, "vigil_http_connections_shed_total", `reason="stream"`),
		sumLabel(m, "vigil_http_connections_shed_total", `reason="refused"`),
		m["vigil_feed_sse_streams_ended_total"])
	fmt.Printf("  flood: %d dials (%d failed), %d closed by the node\n", st.Dials, st.DialErrors, st.ClosedTotal())
	if max := addLat[len(addLat)-1]; max >= 2*time.Second {
		t.Errorf("add-checkpoint took up to %v, want under 2 s", max)
	}
	if max := healthLat[len(healthLat)-1]; max >= time.Second {
		t.Errorf("healthz took up to %v, want under 1 s", max)
	}
	if rssMax >= 150 {
		t.Errorf("node RSS reached %.0f MB, want under 150 MB", rssMax)
	}
}

// connSummary describes the node's connections from its metrics.
func connSummary(m map[string]float64) string {
	var b strings.Builder
	for k, v := range m {
		if strings.HasPrefix(k, "vigil_http_connections") || strings.HasPrefix(k, "vigil_feed_sse") {
			fmt.Fprintf(&b, "%s=%v ", k, v)
		}
	}
	return b.String()
}

func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q is not a positive integer", name, v)
	}
	return n
}

// rssMB reads a process's resident set size.
func rssMB(t *testing.T, pid int) float64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb / 1024
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// openFDs counts a process's open file descriptors.
func openFDs(t *testing.T, pid int) int {
	t.Helper()
	es, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	return len(es)
}

// nofile reads a process's soft RLIMIT_NOFILE.
func nofile(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "Max open files") {
			f := strings.Fields(line)
			n, _ := strconv.Atoi(f[3])
			return n
		}
	}
	t.Fatal("no Max open files")
	return 0
}
