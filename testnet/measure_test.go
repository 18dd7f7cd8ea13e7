package testnet_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/vigilnet/vigil/testnet"
)

// TestMeasureDetection runs the detection measurement on a small network,
// quietly and under a flood, in process and as processes, as `make
// bench-net` does on large ones.
func TestMeasureDetection(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a network")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	bin, err := buildVigil()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		flood int
		// binary runs the members as `vigil node` processes: the harness
		// then learns of their meshes from their metrics.
		binary string
		quiet  time.Duration
	}{{0, "", 0}, {0, "", 100 * time.Millisecond}, {2, "", 0}, {0, bin, 0}} {
		// As processes, every member is profiled (NodeProfiles).
		var profiles string
		if tc.binary != "" {
			profiles = t.TempDir()
		}
		res, err := testnet.MeasureDetection(ctx, testnet.DetectionConfig{
			Dir: t.TempDir(), Witnesses: 4, Observers: 1, Repeats: 3, FloodPeers: tc.flood, FloodRate: 200, Binary: tc.binary, Quiet: tc.quiet,
			NodeProfiles: profiles,
		})
		if err != nil {
			t.Fatal(err)
		}
		if profiles != "" {
			for _, pat := range []string{"*-000.prof", "*-metrics-start.txt", "*-metrics-end.txt"} {
				if m, _ := filepath.Glob(filepath.Join(profiles, pat)); len(m) != 5 {
					t.Errorf("%d files %s of 5 members in %s", len(m), pat, profiles)
				}
			}
		}
		if len(res.Latencies) != 3 || len(res.Observed) != 3 {
			t.Fatalf("%d latencies, %d observed, want 3", len(res.Latencies), len(res.Observed))
		}
		for i, l := range res.Latencies {
			if l <= 0 || l > res.Observed[i] {
				t.Errorf("repetition %d: latency %s, observed %s", i, l, res.Observed[i])
			}
		}
		if tc.flood > 0 && res.FloodSent == 0 {
			t.Error("the flood peers sent nothing")
		}
		// (With quiet periods, an estimate of the idle network's share is
		// taken out, which a busy moment in the estimate could outweigh.)
		if tc.quiet == 0 && res.CPU <= 0 {
			t.Errorf("CPU per equivocation %s", res.CPU)
		}
		// Every split view reaches the members through gossip, so waits
		// before validation and before detection were measured.
		for name, w := range map[string]testnet.Waits{"validation": res.Validation, "delivery": res.Delivery} {
			if w.Count <= 0 || w.Mean <= 0 || w.Over100ms < 0 || w.Over100ms > w.Count {
				t.Errorf("%s waits: %+v", name, w)
			}
		}
		t.Logf("processes %v, flood peers %d, quiet %s: p50 %s p99 %s (observed p99 %s), %d forged sightings sent, waits %+v %+v",
			tc.binary != "", tc.flood, tc.quiet, res.Latencies.Percentile(0.5), res.Latencies.Percentile(0.99), res.Observed.Percentile(0.99), res.FloodSent, res.Validation, res.Delivery)
	}
}

func TestMeasureThroughput(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a network")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := testnet.MeasureThroughput(ctx, testnet.ThroughputConfig{
		Dir: t.TempDir(), Witnesses: 2, Observers: 1, Logs: 20, Concurrency: 4, Duration: time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.PerSecond <= 0 || res.Errors != 0 || res.VerifyFailures != 0 {
		t.Fatalf("%+v", res)
	}
	t.Logf("%d nodes: %.0f cosignatures/s, p99 %s", res.Nodes, res.PerSecond, res.P99)
}

func TestDurationsPercentile(t *testing.T) {
	d := testnet.Durations{5, 1, 4, 2, 3}
	for _, tc := range []struct {
		p    float64
		want time.Duration
	}{{0, 1}, {0.5, 3}, {0.99, 5}, {1, 5}} {
		if got := d.Percentile(tc.p); got != tc.want {
			t.Errorf("Percentile(%v) = %d, want %d", tc.p, got, tc.want)
		}
	}
	if (testnet.Durations{}).Percentile(0.5) != 0 {
		t.Error("empty sample")
	}
}
