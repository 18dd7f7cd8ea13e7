package testnet_test

// `make bench-net`: the network measurements of issue 7, written to
// docs/bench-net.json and plotted to docs/bench-net.png.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/color"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigilnet/vigil/testnet"
)

type benchDetection struct {
	// Mode is "process" (a `vigil node` process per member) or
	// "in-process" (every member in the test process).
	Mode string `json:"mode"`
	// Keys is VIGIL_BENCH_KEYS: the roster's key type, which every witness
	// signs with alone; empty is the default network (an Ed25519 roster,
	// witnesses signing with both keys).
	Keys       string `json:"keys,omitempty"`
	Nodes      int    `json:"nodes"`
	FloodPeers int    `json:"flood_peers"`
	// QuietMs is the pause before each equivocation (DetectionConfig.Quiet);
	// 0: back to back.
	QuietMs     float64 `json:"quiet_ms"`
	Run         int     `json:"run"`
	P50ms       float64 `json:"p50_ms"`
	P99ms       float64 `json:"p99_ms"`
	ObservedP99 float64 `json:"observed_p99_ms"`
	PushedP50   float64 `json:"pushed_p50_ms"`
	FirstP50    float64 `json:"first_evidence_p50_ms"`
	FloodSent   int64   `json:"flood_sent,omitempty"`
	CPUms       float64 `json:"cpu_ms_per_equivocation,omitempty"`
	// Waits of gossip messages at the members (testnet.Waits).
	ValidationWaits *benchWaits `json:"validation_waits,omitempty"`
	DeliveryWaits   *benchWaits `json:"delivery_waits,omitempty"`
	// Traffic is, per split view, the network's messages by topic and
	// direction and its evidence copies (testnet.DetectionResult.Traffic).
	Traffic   map[string]float64 `json:"traffic_per_equivocation,omitempty"`
	Latencies []float64          `json:"latencies_ms"`
}

// trafficLine formats Traffic in a stable order for the log.
func trafficLine(t map[string]float64) string {
	keys := slices.Sorted(maps.Keys(t))
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s %.1f", k, t[k])
	}
	return b.String()
}

type benchWaits struct {
	Count     int64   `json:"count"`
	MeanMs    float64 `json:"mean_ms"`
	Over100ms int64   `json:"over_100ms"`
}

func newBenchWaits(w testnet.Waits) *benchWaits {
	return &benchWaits{Count: w.Count, MeanMs: ms(w.Mean), Over100ms: w.Over100ms}
}

// String reads "mean M ms, O of C over 100 ms".
func (w *benchWaits) String() string {
	return fmt.Sprintf("mean %.1f ms, %d of %d over 100 ms", w.MeanMs, w.Over100ms, w.Count)
}

type benchThroughput struct {
	// Keys is as in benchDetection.
	Keys         string  `json:"keys,omitempty"`
	Nodes        int     `json:"nodes"`
	Run          int     `json:"run"`
	PerSecond    float64 `json:"cosignatures_per_s"`
	P50ms        float64 `json:"p50_ms"`
	P99ms        float64 `json:"p99_ms"`
	Errors       int     `json:"errors"`
	VerifyFails  int     `json:"verify_failures"`
	CPUPerCosign float64 `json:"cpu_us_per_cosignature"`
}

type benchRSS struct {
	Run      int       `json:"run"`
	Logs     int       `json:"logs"`
	Settled  bool      `json:"settled"`
	Cosigned int       `json:"cosigned"`
	Names    []string  `json:"members"`
	RSSMB    []float64 `json:"rss_mb"`
	PeakMB   []float64 `json:"peak_mb"`
}

type benchNet struct {
	Date       string            `json:"date"`
	Commit     string            `json:"commit"`
	Machine    map[string]string `json:"machine"`
	Repeats    int               `json:"repeats"`
	Detection  []benchDetection  `json:"detection"`
	Throughput []benchThroughput `json:"throughput"`
	RSS        []benchRSS        `json:"rss"`
}

// aggregationOff reads VIGIL_BENCH_AGGREGATION (on or off; default on).
func aggregationOff(t *testing.T) bool {
	t.Helper()
	switch v := os.Getenv("VIGIL_BENCH_AGGREGATION"); v {
	case "", "on":
		return false
	case "off":
		return true
	default:
		t.Fatalf("VIGIL_BENCH_AGGREGATION=%q: want on or off", v)
		return false
	}
}

// benchKeys reads VIGIL_BENCH_KEYS (ed25519, mldsa or both): the roster's
// witness key type, every witness signing with the matching cosignature
// types. Unset is the default network: an Ed25519 roster, witnesses
// signing with both keys.
func benchKeys(t *testing.T) string {
	t.Helper()
	v := os.Getenv("VIGIL_BENCH_KEYS")
	if v != "" && !slices.Contains(testnet.KeyTypes, v) {
		t.Fatalf("VIGIL_BENCH_KEYS=%q: want ed25519, mldsa or both", v)
	}
	return v
}

// otherKeys keeps the measurements of other VIGIL_BENCH_KEYS values: a
// run replaces only its own key type's figures.
func otherKeys[T any](old []T, keys string, of func(T) string) []T {
	var out []T
	for _, x := range old {
		if of(x) != keys {
			out = append(out, x)
		}
	}
	return out
}

func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		t.Fatalf("%s=%q", name, v)
	}
	return n
}

func envInts(t *testing.T, name string, def []int) []int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	var out []int
	for _, f := range strings.Split(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			t.Fatalf("%s=%q", name, v)
		}
		out = append(out, n)
	}
	return out
}

// benchDetect measures detection on one network and appends the result.
func benchDetect(t *testing.T, res *benchNet, mode, bin, keys string, n, flood, run, repeats int, quiet time.Duration) {
	t.Helper()
	start := time.Now()
	dc := testnet.DetectionConfig{
		Dir: t.TempDir(), Witnesses: n - 2, Observers: 2, Repeats: repeats, FloodPeers: flood, Timeout: time.Minute,
		DisableAggregation: aggregationOff(t), Quiet: quiet, RosterKeys: keys, CosignatureTypes: keys,
	}
	if mode == "process" {
		dc.Binary = bin
	}
	// VIGIL_BENCH_CPUPROFILE=PREFIX profiles each network's timed
	// repetitions (in this process) to PREFIX-<mode>-<nodes>-<flood>-<run>.prof.
	if prefix := os.Getenv("VIGIL_BENCH_CPUPROFILE"); prefix != "" {
		f, err := os.Create(fmt.Sprintf("%s-%s-%d-%d-%d.prof", prefix, mode, n, flood, run))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		dc.CPUProfile = f
	}
	// VIGIL_BENCH_NODE_PROFILES=DIR profiles every member process over
	// the timed repetitions (process mode) into
	// DIR/<nodes>-<flood>-<run>-<quiet>/, one file per member and second.
	if dir := os.Getenv("VIGIL_BENCH_NODE_PROFILES"); dir != "" && mode == "process" {
		dc.NodeProfiles = filepath.Join(dir, fmt.Sprintf("%d-%d-%d-%s", n, flood, run, quiet))
		if err := os.MkdirAll(dc.NodeProfiles, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	r, err := testnet.MeasureDetection(context.Background(), dc)
	if err != nil {
		t.Fatalf("detection, %s, %d nodes, flood %d, run %d: %v", mode, n, flood, run, err)
	}
	d := benchDetection{Mode: mode, Keys: keys, Nodes: n, FloodPeers: flood, QuietMs: ms(quiet), Run: run, P50ms: ms(r.Latencies.Percentile(0.5)),
		P99ms: ms(r.Latencies.Percentile(0.99)), ObservedP99: ms(r.Observed.Percentile(0.99)), FloodSent: r.FloodSent,
		PushedP50: ms(r.Pushed.Percentile(0.5)), FirstP50: ms(r.First.Percentile(0.5)), CPUms: ms(r.CPU),
		ValidationWaits: newBenchWaits(r.Validation), DeliveryWaits: newBenchWaits(r.Delivery), Traffic: r.Traffic}
	for _, l := range r.Latencies {
		d.Latencies = append(d.Latencies, ms(l))
	}
	res.Detection = append(res.Detection, d)
	t.Logf("detection run %d, %d nodes, %s quiet: per split view: %s", run, n, quiet, trafficLine(r.Traffic))
	t.Logf("detection run %d, %s, %s keys: %d nodes, %d flood peers, %s quiet: p50 %.1f ms, p99 %.1f ms (observed p99 %.1f ms; p50 pushes answered %.1f ms, first evidence %.1f ms), %d forged sent, %.0f ms CPU per equivocation; waits before validation: %s; before detection: %s; %s",
		run, mode, keysName(keys), n, flood, quiet, d.P50ms, d.P99ms, d.ObservedP99, d.PushedP50, d.FirstP50, r.FloodSent, d.CPUms, d.ValidationWaits, d.DeliveryWaits, time.Since(start).Round(time.Second))
}

// keysName names a VIGIL_BENCH_KEYS value in logs and the plot.
func keysName(keys string) string {
	if keys == "" {
		return "default (Ed25519 roster, both signed)"
	}
	return keys
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// TestBenchNet runs only with VIGIL_BENCH_NET=1 (make bench-net). Knobs:
// VIGIL_BENCH_RUNS (3), VIGIL_BENCH_REPEATS (30 equivocations per run),
// VIGIL_BENCH_NODES (10,25,50), VIGIL_BENCH_FLOOD_NODES (10,50),
// VIGIL_BENCH_PARTS (detection,throughput,rss; "plot" only redraws),
// VIGIL_BENCH_MODES (process,in-process: detection with a `vigil node`
// process per member, and with every member in this process),
// VIGIL_BENCH_RUN_FROM (1), VIGIL_BENCH_OUT (../docs), VIGIL_BENCH_CPUPROFILE (none),
// VIGIL_BENCH_NODE_PROFILES (none; a directory for the member processes'
// CPU profiles),
// VIGIL_BENCH_AGGREGATION (on; off makes every witness gossip its own
// cosignatures, for comparison), VIGIL_BENCH_QUIET (1s: the pause before
// each equivocation), VIGIL_BENCH_BACK_TO_BACK (50: sizes also measured
// with no pause, without the flood; 0 for none), VIGIL_BENCH_KEYS (unset:
// an Ed25519 roster, witnesses signing with both keys; ed25519, mldsa or
// both: the roster lists that key type and every witness signs with it
// alone; a run replaces only its key type's figures in the JSON).
func TestBenchNet(t *testing.T) {
	if os.Getenv("VIGIL_BENCH_NET") != "1" {
		t.Skip("set VIGIL_BENCH_NET=1 (make bench-net)")
	}
	runs := envInt(t, "VIGIL_BENCH_RUNS", 3)
	// VIGIL_BENCH_RUN_FROM > 1 adds runs to those already in the JSON.
	from := envInt(t, "VIGIL_BENCH_RUN_FROM", 1)
	repeats := envInt(t, "VIGIL_BENCH_REPEATS", 30)
	sizes := envInts(t, "VIGIL_BENCH_NODES", []int{10, 25, 50})
	floodSizes := envInts(t, "VIGIL_BENCH_FLOOD_NODES", []int{10, 50})
	// A split view every second or so is a quiet network's detection
	// latency, the one the flood is compared with; back to back (the
	// previous split view's aggregation still going on) is a stress figure.
	quiet := time.Second
	if v := os.Getenv("VIGIL_BENCH_QUIET"); v != "" {
		var err error
		if quiet, err = time.ParseDuration(v); err != nil || quiet < 0 {
			t.Fatalf("VIGIL_BENCH_QUIET=%q: want a duration", v)
		}
	}
	backToBack := envInts(t, "VIGIL_BENCH_BACK_TO_BACK", []int{50})
	modes := strings.Split(os.Getenv("VIGIL_BENCH_MODES"), ",")
	if modes[0] == "" {
		modes = []string{"process", "in-process"}
	}
	for _, m := range modes {
		if m != "process" && m != "in-process" {
			t.Fatalf("VIGIL_BENCH_MODES: %q is neither process nor in-process", m)
		}
	}
	parts := os.Getenv("VIGIL_BENCH_PARTS")
	if parts == "" {
		parts = "detection,throughput,rss"
	}
	keys := benchKeys(t)
	out := os.Getenv("VIGIL_BENCH_OUT")
	if out == "" {
		out = filepath.Join("..", "docs")
	}
	ctx := context.Background()
	res := benchNet{Date: time.Now().UTC().Format(time.RFC3339), Repeats: repeats, Machine: machine()}
	if b, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output(); err == nil {
		res.Commit = strings.TrimSpace(string(b))
	}
	// Keep what earlier runs measured for parts not run now.
	if b, err := os.ReadFile(filepath.Join(out, "bench-net.json")); err == nil {
		var old benchNet
		if json.Unmarshal(b, &old) == nil {
			res.Detection, res.Throughput, res.RSS = old.Detection, old.Throughput, old.RSS
		}
	}
	save := func() {
		b, err := json.MarshalIndent(res, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(out, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(out, "bench-net.json"), append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	if strings.Contains(parts, "detection") {
		if from == 1 {
			res.Detection = otherKeys(res.Detection, keys, func(d benchDetection) string { return d.Keys })
		}
		var bin string
		if slices.Contains(modes, "process") {
			var err error
			if bin, err = buildVigil(); err != nil {
				t.Fatal(err)
			}
		}
		for run := from; run <= runs; run++ {
			for _, mode := range modes {
				for _, n := range sizes {
					for _, flood := range []int{0, 10} {
						if flood > 0 && !slices.Contains(floodSizes, n) {
							continue
						}
						benchDetect(t, &res, mode, bin, keys, n, flood, run, repeats, quiet)
						save()
						if flood == 0 && slices.Contains(backToBack, n) && quiet > 0 {
							benchDetect(t, &res, mode, bin, keys, n, flood, run, repeats, 0)
							save()
						}
					}
				}
			}
		}
	}
	if strings.Contains(parts, "throughput") {
		res.Throughput = otherKeys(res.Throughput, keys, func(b benchThroughput) string { return b.Keys })
		for run := 1; run <= runs; run++ {
			for _, n := range []int{1, 10} {
				w, o := n, 0
				if n > 1 {
					w, o = n-2, 2
				}
				r, err := testnet.MeasureThroughput(ctx, testnet.ThroughputConfig{Dir: t.TempDir(), Witnesses: w, Observers: o, Duration: 10 * time.Second, DisableAggregation: aggregationOff(t),
					RosterKeys: keys, CosignatureTypes: keys})
				if err != nil {
					t.Fatalf("throughput, %d nodes: %v", n, err)
				}
				res.Throughput = append(res.Throughput, benchThroughput{Keys: keys, Nodes: n, Run: run, PerSecond: r.PerSecond, P50ms: ms(r.P50), P99ms: ms(r.P99),
					Errors: r.Errors, VerifyFails: r.VerifyFailures, CPUPerCosign: float64(r.CPUPerCosign.Microseconds())})
				t.Logf("throughput run %d, %s keys: %d nodes: %.0f cosignatures/s, p50 %s p99 %s, %d errors, %d unverified, %s CPU/cosignature",
					run, keysName(keys), n, r.PerSecond, r.P50, r.P99, r.Errors, r.VerifyFailures, r.CPUPerCosign)
				save()
			}
		}
	}
	if strings.Contains(parts, "rss") {
		bin, err := buildVigil()
		if err != nil {
			t.Fatal(err)
		}
		res.RSS = nil
		for run := 1; run <= runs; run++ {
			r, err := testnet.MeasureRSS(ctx, testnet.RSSConfig{Dir: t.TempDir(), Binary: bin})
			if err != nil {
				t.Fatalf("rss: %v", err)
			}
			b := benchRSS{Run: run, Logs: r.Logs, Settled: r.Settled, Cosigned: r.Cosigned, Names: r.Names}
			for i := range r.RSS {
				b.RSSMB = append(b.RSSMB, float64(r.RSS[i])/(1<<20))
				b.PeakMB = append(b.PeakMB, float64(r.Peak[i])/(1<<20))
			}
			res.RSS = append(res.RSS, b)
			t.Logf("rss run %d: %d logs, %d cosigned, settled %v: RSS MB %.1f, peak MB %.1f", run, r.Logs, r.Cosigned, r.Settled, b.RSSMB, b.PeakMB)
			save()
		}
	}
	save()
	var png bytes.Buffer
	if err := detectionPlot(res.Detection).WritePNG(&png); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(out, "bench-net.png"), png.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// detectionPlot draws p50 and p99 (median over runs) against network size,
// quiet and under the flood, with the 500 ms target.
func detectionPlot(ds []benchDetection) testnet.Plot {
	type key struct {
		mode, keys   string
		nodes, flood int
		backToBack   bool
	}
	p50, p99 := map[key][]float64{}, map[key][]float64{}
	var keys []key
	for _, d := range ds {
		k := key{d.Mode, d.Keys, d.Nodes, d.FloodPeers, d.QuietMs == 0}
		if k.mode == "" {
			k.mode = "in-process"
		}
		if _, ok := p50[k]; !ok {
			keys = append(keys, k)
		}
		p50[k] = append(p50[k], d.P50ms)
		p99[k] = append(p99[k], d.P99ms)
	}
	slices.SortFunc(keys, func(a, b key) int { return a.nodes - b.nodes })
	median := func(v []float64) float64 {
		s := slices.Clone(v)
		slices.Sort(s)
		return s[len(s)/2]
	}
	series := func(name, mode, keyType string, flood int, backToBack bool, m map[key][]float64, c color.RGBA) testnet.Series {
		s := testnet.Series{Name: name, Colour: c}
		for _, k := range keys {
			if k.mode == mode && k.keys == keyType && k.flood == flood && k.backToBack == backToBack {
				s.X = append(s.X, float64(k.nodes))
				s.Y = append(s.Y, median(m[k]))
			}
		}
		return s
	}
	var out []testnet.Series
	for _, s := range []testnet.Series{
		series("p50 in-process", "in-process", "", 0, false, p50, color.RGBA{40, 100, 200, 255}),
		series("p99 in-process", "in-process", "", 0, false, p99, color.RGBA{0, 40, 120, 255}),
		series("p99 in-process, 10-peer flood", "in-process", "", 10, false, p99, color.RGBA{180, 80, 0, 255}),
		series("p99 in-process, back to back", "in-process", "", 0, true, p99, color.RGBA{120, 120, 120, 255}),
		series("p50 processes", "process", "", 0, false, p50, color.RGBA{60, 170, 90, 255}),
		series("p99 processes", "process", "", 0, false, p99, color.RGBA{0, 100, 40, 255}),
		series("p99 processes, 10-peer flood", "process", "", 10, false, p99, color.RGBA{200, 40, 120, 255}),
		series("p99 processes, back to back", "process", "", 0, true, p99, color.RGBA{60, 60, 60, 255}),
	} {
		if len(s.X) > 0 {
			out = append(out, s)
		}
	}
	// Networks of one key type (VIGIL_BENCH_KEYS): quiet, no flood.
	for i, kt := range testnet.KeyTypes {
		shade := uint8(60 * i)
		for _, s := range []testnet.Series{
			series("p50 in-process, "+kt+" keys", "in-process", kt, 0, false, p50, color.RGBA{140, shade, 200, 255}),
			series("p99 in-process, "+kt+" keys", "in-process", kt, 0, false, p99, color.RGBA{90, shade, 140, 255}),
			series("p50 processes, "+kt+" keys", "process", kt, 0, false, p50, color.RGBA{200, 160, shade, 255}),
			series("p99 processes, "+kt+" keys", "process", kt, 0, false, p99, color.RGBA{140, 100, shade, 255}),
		} {
			if len(s.X) > 0 {
				out = append(out, s)
			}
		}
	}
	return testnet.Plot{
		Title:      "Detection latency: push of a split view -> evidence at every node (median of runs)",
		XLabel:     "nodes on 2 cores, loopback; split views 1 s apart unless back to back",
		YLabel:     "ms",
		Series:     out,
		HLine:      500,
		HLineLabel: "target p99 500 ms",
	}
}

func machine() map[string]string {
	m := map[string]string{"nproc": strconv.Itoa(runtime.NumCPU()), "go": runtime.Version(), "goos": runtime.GOOS, "goarch": runtime.GOARCH}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m["cpu"] = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		m["loadavg_at_start"] = strings.TrimSpace(string(b))
	}
	return m
}
