package testnet

// Network measurements (issue 7): detection latency, detection under an
// invalid-gossip flood, cosign throughput with the network running, and the
// resident memory of node processes. Each function starts its own network
// in a directory the caller owns and stops it before returning.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vigilnet/vigil/feed"
	"github.com/vigilnet/vigil/testnet/load"
	"github.com/vigilnet/vigil/testnet/scriptlog"
	"github.com/vigilnet/vigil/tlog"
	"github.com/vigilnet/vigil/witness"
)

// Durations is a sample of latencies with percentile helpers.
type Durations []time.Duration

// Percentile returns the p-quantile (0 ≤ p ≤ 1, nearest rank).
func (d Durations) Percentile(p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(p*float64(len(s))+0.5) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// DetectionConfig configures MeasureDetection.
type DetectionConfig struct {
	// Dir holds the network; required.
	Dir string
	// Witnesses and Observers make up the network.
	Witnesses, Observers int
	// Repeats is the number of timed equivocations (default 20), each by a
	// fresh origin; one untimed warm-up equivocation runs first.
	Repeats int
	// FloodPeers hostile peers (each on a different member) publish
	// FloodRate forged sightings per second each (default 1000) throughout.
	FloodPeers int
	FloodRate  float64
	// Timeout bounds each repetition (default 30s).
	Timeout time.Duration
	// Binary, if set, runs every member as a `vigil node` process, as the
	// harness does outside tests; empty runs them all in this process.
	Binary string
	// DisableAggregation: every witness gossips its own cosignatures.
	DisableAggregation bool
	// RosterKeys and CosignatureTypes are Options.RosterKeys and every
	// witness's witness.cosignature_types (empty: the defaults, an Ed25519
	// roster and witnesses signing with both keys).
	RosterKeys, CosignatureTypes string
	// Quiet is how long the network is left to itself before each
	// equivocation, from when every member held the evidence of the one
	// before; 0 runs them back to back. A split view's gossip goes on after
	// its detection (aggregated cosignatures are published up to 600 ms
	// after a checkpoint, feeds rebuild within a second): back to back,
	// each split view is detected on top of the previous one's.
	Quiet time.Duration
	// CPUProfile, if set, receives a CPU profile of the timed repetitions
	// only (not the start-up or the warm-up); in process mode it covers
	// the harness alone.
	CPUProfile io.Writer
	// NodeProfiles, if set, is a directory that receives CPU profiles of
	// every member process over the timed repetitions, in one-second
	// pieces (nodeProfiler); process mode only.
	NodeProfiles string
	Logger       *slog.Logger
}

// DetectionResult is what MeasureDetection measured.
type DetectionResult struct {
	Nodes, FloodPeers int
	// Latencies are, per repetition, the time from the push of the two
	// views to the moment the last node stored the evidence (the stored
	// timestamp each node puts on it, just before its durable write).
	Latencies Durations
	// Observed are the same but up to when the harness, polling every
	// 20 ms, had seen the evidence at every node: an upper bound.
	Observed Durations
	// Pushed are the times until every witness had answered the push;
	// First until the first node stored evidence (a breakdown of Latencies).
	Pushed, First Durations
	// FloodSent is how many forged sightings the hostile peers published.
	FloodSent int64
	// CPU is the CPU time of this process (the harness, the hostile peers
	// and, in process, every node) and of the member processes over the
	// timed repetitions, divided by their number: what one equivocation
	// costs the whole network. With Quiet, what the idle network uses over
	// the quiet periods (measured over one before the warm-up) is taken
	// out.
	CPU time.Duration
	// Validation and Delivery are what gossip messages waited at the
	// members over the timed repetitions, before their validator
	// (vigil_gossip_validation_wait_seconds) and before their detector
	// (vigil_gossip_delivery_wait_seconds): where the time goes on a
	// machine short of CPU.
	Validation, Delivery Waits
	// Traffic is, per timed repetition, what the members' counters of
	// trafficSeries grew by, summed over the members: messages per topic
	// and direction, evidence pushes, how the evidence was stored.
	Traffic map[string]float64
}

// Waits summarises one wait histogram summed over the members.
type Waits struct {
	// Count is the number of waits; Mean their mean.
	Count int64
	Mean  time.Duration
	// Over100ms is how many waited longer than 102.4 ms (a bucket bound).
	Over100ms int64
}

// waitMetrics are the series waitTotals reads: per histogram, the count,
// the sum and the count up to 102.4 ms.
var waitMetrics = func() []string {
	var out []string
	for _, h := range []string{"vigil_gossip_validation_wait_seconds", "vigil_gossip_delivery_wait_seconds"} {
		out = append(out, h+"_count", h+"_sum", h+`_bucket{le="0.1024"}`)
	}
	return out
}()

// waitTotals sums waitMetrics over the running members.
func (nw *Network) waitTotals(ctx context.Context) ([]float64, error) {
	sums := make([]float64, len(waitMetrics))
	for _, m := range nw.Members {
		if !m.Running() {
			continue
		}
		v, err := scrapeMetrics(ctx, m.URL, waitMetrics...)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", m.Name, err)
		}
		for i := range sums {
			sums[i] += v[i]
		}
	}
	return sums, nil
}

// waits turns two waitTotals readings into the Waits of each histogram.
func waits(before, after []float64) (validation, delivery Waits) {
	one := func(i int) Waits {
		n, sum, under := after[i]-before[i], after[i+1]-before[i+1], after[i+2]-before[i+2]
		w := Waits{Count: int64(n), Over100ms: int64(n - under)}
		if n > 0 {
			w.Mean = time.Duration(sum / n * float64(time.Second))
		}
		return w
	}
	return one(0), one(3)
}

const detectPoll = 20 * time.Millisecond

// MeasureDetection starts an in-process network and repeatedly makes a
// scripted log equivocate: at one instant view A is pushed to the first half
// of the witnesses and view B (same size, different root) to the others; it
// waits until every member holds evidence about that origin.
func MeasureDetection(ctx context.Context, cfg DetectionConfig) (*DetectionResult, error) {
	if cfg.Repeats <= 0 {
		cfg.Repeats = 20
	}
	if cfg.FloodRate <= 0 {
		cfg.FloodRate = 1000
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.Witnesses < 2 {
		return nil, errors.New("measure: detection needs at least 2 witnesses")
	}
	// One fresh origin per repetition (plus the warm-up), and one the
	// flood forges; all in the roster from the start.
	logs := make([]*scriptlog.Log, cfg.Repeats+1)
	var entries []LogEntry
	for i := range logs {
		lg, err := scriptlog.New(fmt.Sprintf("detect.testnet.vigil.example/%d", i))
		if err != nil {
			return nil, err
		}
		logs[i] = lg
		entries = append(entries, LogEntry{VKey: lg.VerifierKey()})
	}
	target, err := scriptlog.New("flood-target.testnet.vigil.example")
	if err != nil {
		return nil, err
	}
	target.AppendN(3, "target")
	entries = append(entries, LogEntry{VKey: target.VerifierKey()})

	nw, err := Start(ctx, Options{Dir: cfg.Dir, Witnesses: cfg.Witnesses, Observers: cfg.Observers, Logs: entries, Binary: cfg.Binary, DisableAggregation: cfg.DisableAggregation, Logger: cfg.Logger,
		RosterKeys: cfg.RosterKeys, CosignatureTypes: allTypes(cfg.CosignatureTypes), Pprof: cfg.NodeProfiles != ""})
	if err != nil {
		return nil, err
	}
	defer nw.Stop()
	if err := nw.WaitMeshed(ctx, 60*time.Second); err != nil {
		return nil, err
	}
	if err := nw.WaitSettled(ctx, 60*time.Second); err != nil {
		return nil, err
	}
	res := &DetectionResult{Nodes: len(nw.Members), FloodPeers: cfg.FloodPeers}
	var floods []*FloodPeer
	defer func() {
		for _, f := range floods {
			res.FloodSent += f.Sent()
			f.Close()
		}
	}()
	for h := range cfg.FloodPeers {
		f, err := NewFloodPeer(nw.opts.Network)
		if err != nil {
			return nil, err
		}
		floods = append(floods, f)
		if err := f.Connect(ctx, nw.Members[(h*3)%len(nw.Members)]); err != nil {
			return nil, fmt.Errorf("flood peer %d: %w", h, err)
		}
		if err := f.Flood(target, cfg.FloodRate); err != nil {
			return nil, err
		}
	}
	watch, err := nw.watchEvidence(ctx)
	if err != nil {
		return nil, err
	}
	defer watch.Close()
	p := NewPusher(nw)
	half := cfg.Witnesses / 2
	a, b := Range(0, half), Range(half, cfg.Witnesses)
	var idlePerQuiet time.Duration
	if cfg.Quiet > 0 {
		start := nw.cpu()
		// A workload's pause, not a wait for anything.
		if err := sleepCtx(ctx, cfg.Quiet); err != nil {
			return nil, err
		}
		idlePerQuiet = nw.cpu() - start
	}
	var cpuStart time.Duration
	var waitStart, trafficStart []float64
	var prof *nodeProfiler
	defer func() {
		if prof != nil {
			prof.stop()
		}
	}()
	for r, lg := range logs {
		if r > 0 && cfg.Quiet > 0 {
			if err := sleepCtx(ctx, cfg.Quiet); err != nil {
				return nil, err
			}
		}
		if r == 1 {
			if waitStart, err = nw.waitTotals(ctx); err != nil {
				return nil, err
			}
			if trafficStart, err = nw.trafficTotals(ctx); err != nil {
				return nil, err
			}
			cpuStart = nw.cpu()
			if cfg.CPUProfile != nil {
				if err := pprof.StartCPUProfile(cfg.CPUProfile); err != nil {
					return nil, err
				}
				defer pprof.StopCPUProfile()
			}
			if cfg.NodeProfiles != "" && cfg.Binary != "" {
				prof = nw.profileNodes(ctx, cfg.NodeProfiles)
			}
		}
		t, err := nw.equivocateOnce(ctx, p, lg, a, b, watch, cfg.Timeout)
		if err != nil {
			return nil, fmt.Errorf("repetition %d: %w", r, err)
		}
		if r > 0 { // the first one warms connections and meshes up
			res.Latencies = append(res.Latencies, t.last)
			res.Observed = append(res.Observed, t.observed)
			res.Pushed = append(res.Pushed, t.pushed)
			res.First = append(res.First, t.first)
		}
	}
	if prof != nil {
		if err := prof.stop(); err != nil {
			return nil, err
		}
		prof = nil
	}
	if n := len(res.Latencies); n > 0 {
		res.CPU = (nw.cpu() - cpuStart - time.Duration(n-1)*idlePerQuiet) / time.Duration(n)
		end, err := nw.waitTotals(ctx)
		if err != nil {
			return nil, err
		}
		res.Validation, res.Delivery = waits(waitStart, end)
		tend, err := nw.trafficTotals(ctx)
		if err != nil {
			return nil, err
		}
		res.Traffic = traffic(trafficStart, tend, n)
	}
	return res, nil
}

// WaitMeshed waits until every running member has a peer in its gossipsub
// mesh of both topics (in process mode, as its metrics tell): a member
// that is only subscribed hears what its neighbours publish, not what they
// relay (gossip.Service.MeshPeers).
func (nw *Network) WaitMeshed(ctx context.Context, d time.Duration) error {
	return measureWait(ctx, d, func() bool {
		for _, m := range nw.Members {
			if n := m.Node(); n != nil && n.Gossip() != nil {
				cp, ev := n.Gossip().MeshPeers()
				if len(cp) == 0 || len(ev) == 0 {
					return false
				}
			} else if m.PID() != 0 {
				v, err := scrapeMetrics(ctx, m.URL, `vigil_gossip_mesh_peers{topic="checkpoints"}`, `vigil_gossip_mesh_peers{topic="evidence"}`)
				if err != nil || v[0] < 1 || v[1] < 1 {
					return false
				}
			}
		}
		return true
	})
}

// WaitSettled waits until the members' connections stop changing: no member
// gained or lost a peer over three checks a second apart. A new network
// densifies for a few seconds after it has meshed (gossipsub's peer exchange
// hands pruned peers others to dial, and each new connection runs the
// catch-up sync), which is start-up work a measurement should not include.
func (nw *Network) WaitSettled(ctx context.Context, d time.Duration) error {
	return nw.waitSteady(ctx, d, func(m *Member) (float64, error) {
		if n := m.Node(); n != nil && n.Gossip() != nil {
			return float64(len(n.Gossip().Host().Network().Peers())), nil
		}
		if m.PID() != 0 {
			return scrapeCounter(ctx, m.URL, "vigil_gossip_peers")
		}
		return 0, nil
	})
}

// waitSteady waits until read gives the same value for every member over
// three polls a second apart; a read that fails is a change.
func (nw *Network) waitSteady(ctx context.Context, d time.Duration, read func(*Member) (float64, error)) error {
	last, same := "", 0
	return measureWaitEvery(ctx, d, time.Second, func() bool {
		var b strings.Builder
		for _, m := range nw.Members {
			v, err := read(m)
			if err != nil {
				last, same = "", 0
				return false
			}
			fmt.Fprintf(&b, "%g,", v)
		}
		if b.String() == last {
			same++
		} else {
			last, same = b.String(), 0
		}
		return same >= 3
	})
}

// detectTimes are one equivocation's times, from the start of the push.
type detectTimes struct{ pushed, first, last, observed time.Duration }

// equivocateOnce makes lg show view A to members a and view B to members b
// and returns when the pushes were answered, when the first and the last
// node stored evidence (by their stamps), and when the harness saw it all.
// watch follows the members' evidence events.
func (nw *Network) equivocateOnce(ctx context.Context, p *Pusher, lg *scriptlog.Log, a, b []int, watch *evidenceWatch, timeout time.Duration) (detectTimes, error) {
	var t detectTimes
	fork, err := lg.Fork(lg.Size())
	if err != nil {
		return t, err
	}
	lg.AppendN(4, "view A")
	fork.AppendN(4, "view B")
	start := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for k, v := range []struct {
		lg *scriptlog.Log
		to []int
	}{{lg, a}, {fork, b}} {
		wg.Go(func() { errs[k] = p.PushAll(ctx, v.lg, v.to) })
	}
	wg.Wait()
	t.pushed = time.Since(start)
	if err := errors.Join(errs...); err != nil {
		return t, err
	}
	stamps := make([]time.Time, len(nw.Members))
	pending := len(nw.Members)
	err = measureWaitEvery(ctx, timeout, detectPoll, func() bool {
		for i := range nw.Members {
			if !stamps[i].IsZero() {
				continue
			}
			if stamps[i] = nw.evidenceStored(ctx, i, lg.Origin(), watch); !stamps[i].IsZero() {
				pending--
			}
		}
		return pending == 0
	})
	if err != nil {
		var missing []string
		for i, s := range stamps {
			if s.IsZero() {
				missing = append(missing, nw.Members[i].Name)
			}
		}
		return t, fmt.Errorf("no evidence about %s at %s: %w", lg.Origin(), strings.Join(missing, ", "), err)
	}
	t.observed = time.Since(start)
	t.first = slices.MinFunc(stamps, time.Time.Compare).Sub(start)
	t.last = slices.MaxFunc(stamps, time.Time.Compare).Sub(start)
	return t, nil
}

// evidenceStored returns when member i stored its first evidence about
// origin, or the zero time if it holds none yet. It asks watch, or the
// member's evidence list if watch no longer follows the member.
func (nw *Network) evidenceStored(ctx context.Context, i int, origin string, watch *evidenceWatch) time.Time {
	if at, live := watch.get(i, origin); !at.IsZero() || live {
		return at
	}
	m := nw.Members[i]
	var first time.Time
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.URL+"/v1/evidence", nil)
	if err != nil {
		return time.Time{}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return time.Time{}
	}
	defer resp.Body.Close()
	var list feed.EvidenceList
	if resp.StatusCode != http.StatusOK || json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(&list) != nil {
		return time.Time{}
	}
	for _, e := range list.Evidence {
		if e.Origin == origin && (first.IsZero() || e.Stored.Before(first)) {
			first = e.Stored
		}
	}
	return first
}

// cpu returns the CPU time this process and the running member processes
// have used so far.
func (nw *Network) cpu() time.Duration {
	total := load.ProcessCPU()
	for _, m := range nw.Members {
		if pid := m.PID(); pid != 0 && m.Running() {
			if d, err := ProcCPU(pid); err == nil {
				total += d
			}
		}
	}
	return total
}

// ProcCPU returns the user+system CPU time process pid has used, from
// /proc/<pid>/stat.
func ProcCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is parenthesised and may hold spaces;
	// utime and stime are fields 14 and 15, the 12th and 13th after it.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	var ticks int64
	for _, s := range f[11:13] {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
		}
		ticks += n
	}
	// USER_HZ is 100 on every Linux the project runs on.
	return time.Duration(ticks) * 10 * time.Millisecond, nil
}

// ThroughputConfig configures MeasureThroughput.
type ThroughputConfig struct {
	// Dir holds the network; required.
	Dir string
	// Witnesses and Observers make up the network; the load goes to
	// witness 0 while every member gossips.
	Witnesses, Observers int
	// Logs, Concurrency and Duration shape the load (defaults 1,000 logs,
	// 64 clients, 10s).
	Logs, Concurrency int
	Duration          time.Duration
	// DisableAggregation: every witness gossips its own cosignatures.
	DisableAggregation bool
	// RosterKeys and CosignatureTypes are as in DetectionConfig; every
	// returned cosignature is checked against witness 0's roster key.
	RosterKeys, CosignatureTypes string
	Logger                       *slog.Logger
}

// ThroughputResult is a load run against one member of a running network.
type ThroughputResult struct {
	Nodes int
	// Cosigned per second, latency percentiles, failed requests and
	// cosignatures that did not verify.
	PerSecond      float64
	P50, P99       time.Duration
	Requests       int
	Errors         int
	VerifyFailures int
	// CPUPerCosign is the whole process's CPU (every node, the client)
	// divided by the cosignatures.
	CPUPerCosign time.Duration
}

// MeasureThroughput runs testnet/load's engine against witness 0 of an
// in-process network whose roster lists the workload's logs.
func MeasureThroughput(ctx context.Context, cfg ThroughputConfig) (*ThroughputResult, error) {
	if cfg.Logs <= 0 {
		cfg.Logs = 1000
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 64
	}
	if cfg.Duration <= 0 {
		cfg.Duration = 10 * time.Second
	}
	// Enough steps that the run ends by time: 40 per log covers 4,000/s
	// for 10 s with 1,000 logs.
	steps := max(10, int(cfg.Duration.Seconds()*4000)/cfg.Logs)
	wl, err := load.NewWorkload(load.WorkloadConfig{Logs: cfg.Logs, Steps: steps})
	if err != nil {
		return nil, err
	}
	entries := make([]LogEntry, len(wl.Chains))
	for i, c := range wl.Chains {
		entries[i] = LogEntry{VKey: c.Log.VerifierKey()}
	}
	nw, err := Start(ctx, Options{Dir: cfg.Dir, Witnesses: cfg.Witnesses, Observers: cfg.Observers, Logs: entries, DisableAggregation: cfg.DisableAggregation, Logger: cfg.Logger,
		RosterKeys: cfg.RosterKeys, CosignatureTypes: allTypes(cfg.CosignatureTypes)})
	if err != nil {
		return nil, err
	}
	defer nw.Stop()
	if len(nw.Members) > 1 {
		if err := nw.WaitMeshed(ctx, 60*time.Second); err != nil {
			return nil, err
		}
	}
	m := nw.Members[0]
	r, err := load.Run(ctx, wl, load.Config{URL: m.URL, Concurrency: cfg.Concurrency, Duration: cfg.Duration})
	if err != nil {
		return nil, err
	}
	v, err := tlog.NewWitnessVerifier(m.VKey)
	if err != nil {
		return nil, err
	}
	if err := r.Verify(ctx, v); err != nil {
		return nil, err
	}
	out := &ThroughputResult{
		Nodes: len(nw.Members), PerSecond: r.Throughput(), P50: r.Percentile(0.50), P99: r.Percentile(0.99),
		Requests: r.Requests, Errors: r.Errors(), VerifyFailures: r.VerifyFailures,
	}
	if r.Cosigned > 0 {
		out.CPUPerCosign = r.CPU / time.Duration(r.Cosigned)
	}
	return out, nil
}

// allTypes gives every member the cosignature types t (nil for the default).
func allTypes(t string) func(int) string {
	if t == "" {
		return nil
	}
	return func(int) string { return t }
}

// RSSConfig configures MeasureRSS.
type RSSConfig struct {
	// Dir holds the network; Binary is the vigil binary (required: nodes
	// run as processes).
	Dir, Binary string
	// Witnesses and Observers make up the network (defaults 5 and 1).
	Witnesses, Observers int
	// Logs in the roster (default 1,000); each gets a checkpoint pushed to
	// every witness, Rounds times (default 2), growing each time.
	Logs, Rounds int
	// Settle bounds the wait for gossip to go quiet (default 60s).
	Settle time.Duration
	Logger *slog.Logger
}

// RSSResult is the resident memory of each member process.
type RSSResult struct {
	Logs int
	// Members' names, their VmRSS and VmHWM (peak) in bytes, in order.
	Names     []string
	RSS, Peak []int64
	// Cosigned counts the pushes witnesses cosigned.
	Cosigned int
	// Settled reports whether every member's cosigned-checkpoint count
	// stopped changing before Settle passed.
	Settled bool
}

// MeasureRSS starts the network as `vigil node` processes with a roster of
// cfg.Logs logs, pushes each log's checkpoint to every witness, waits for
// gossip to settle and reads each process's VmRSS and VmHWM.
func MeasureRSS(ctx context.Context, cfg RSSConfig) (*RSSResult, error) {
	if cfg.Binary == "" {
		return nil, errors.New("measure: RSS needs the vigil binary")
	}
	if cfg.Witnesses <= 0 {
		cfg.Witnesses, cfg.Observers = 5, 1
	}
	if cfg.Logs <= 0 {
		cfg.Logs = 1000
	}
	if cfg.Rounds <= 0 {
		cfg.Rounds = 2
	}
	if cfg.Settle <= 0 {
		cfg.Settle = 60 * time.Second
	}
	logs := make([]*scriptlog.Log, cfg.Logs)
	entries := make([]LogEntry, cfg.Logs)
	for i := range logs {
		lg, err := scriptlog.New(fmt.Sprintf("rss.testnet.vigil.example/%d", i))
		if err != nil {
			return nil, err
		}
		logs[i], entries[i] = lg, LogEntry{VKey: lg.VerifierKey()}
	}
	nw, err := Start(ctx, Options{Dir: cfg.Dir, Binary: cfg.Binary, Witnesses: cfg.Witnesses, Observers: cfg.Observers, Logs: entries, Logger: cfg.Logger})
	if err != nil {
		return nil, err
	}
	defer nw.Stop()
	res := &RSSResult{Logs: cfg.Logs}
	var mu sync.Mutex
	for round := range cfg.Rounds {
		jobs := make(chan int)
		var wg sync.WaitGroup
		for range 16 {
			wg.Go(func() {
				for i := range jobs {
					lg := logs[i]
					size := lg.Size()
					cp, err := lg.CheckpointAt(size)
					if err != nil {
						continue
					}
					for w := range cfg.Witnesses {
						old := size - 10
						if round == 0 {
							old = 0
						}
						c := &witness.Client{URL: nw.Members[w].URL}
						if _, err := c.Submit(ctx, &old, size, cp, lg); err == nil {
							mu.Lock()
							res.Cosigned++
							mu.Unlock()
						}
					}
				}
			})
		}
		for i, lg := range logs {
			lg.AppendN(10, fmt.Sprintf("round %d", round))
			select {
			case jobs <- i:
			case <-ctx.Done():
			}
		}
		close(jobs)
		wg.Wait()
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
	res.Settled = nw.waitQuiet(ctx, cfg.Settle) == nil
	for _, m := range nw.Members {
		rss, peak, err := ProcStatus(m.PID())
		if err != nil {
			return nil, fmt.Errorf("%s: %w", m.Name, err)
		}
		res.Names = append(res.Names, m.Name)
		res.RSS = append(res.RSS, rss)
		res.Peak = append(res.Peak, peak)
	}
	return res, nil
}

// waitQuiet waits until no member's vigil_gossip_validated_total changes
// for three polls a second apart (gossip has settled).
func (nw *Network) waitQuiet(ctx context.Context, d time.Duration) error {
	return nw.waitSteady(ctx, d, func(m *Member) (float64, error) {
		return scrapeCounter(ctx, m.URL, "vigil_gossip_validated_total")
	})
}

// ProcStatus returns a process's VmRSS and VmHWM in bytes (Linux).
func ProcStatus(pid int) (rss, peak int64, err error) {
	if pid <= 0 {
		return 0, 0, errors.New("no process")
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		f := strings.Fields(v)
		if len(f) != 2 || f[1] != "kB" {
			return 0, 0, fmt.Errorf("/proc/%d/status: odd %s line %q", pid, k, line)
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, 0, err
		}
		if k == "VmRSS" {
			rss = n << 10
		} else {
			peak = n << 10
		}
	}
	return rss, peak, nil
}
