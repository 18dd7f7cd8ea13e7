package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/vigilnet/vigil/node"
	"github.com/vigilnet/vigil/testnet/load"
	"github.com/vigilnet/vigil/tlog"
)

// runBench dispatches `vigil bench <target>`; only "witness" exists so far.
func runBench(ctx context.Context, env *cliEnv, args []string) error {
	if len(args) == 0 || args[0] != "witness" {
		fmt.Fprintln(env.stderr, "usage: vigil bench witness [flags]   (vigil bench witness -h for the flags)")
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			return nil
		}
		return errUsage
	}
	return runBenchWitness(ctx, env, args[1:])
}

// runBenchWitness drives C2SP add-checkpoint load against a witness.
func runBenchWitness(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlagSet(env, "bench witness", "(--url URL --witness-vkey VKEY --roster-out FILE | --spawn) [flags]\n"+
		"  Creates scripted logs, writes a tlog-policy roster listing them (--roster-out) for the target\n"+
		"  witness to load (start it with --roster FILE, or send it SIGHUP), waits until it knows them,\n"+
		"  then submits pre-generated checkpoint chains with concurrent keep-alive clients, each owning\n"+
		"  a disjoint set of logs, and verifies every returned cosignature.\n"+
		"  --spawn runs an in-process witness on 127.0.0.1 with a temporary store and keys instead.")
	url := fs.String("url", "", "witness submission prefix (POST URL/add-checkpoint)")
	spawn := fs.Bool("spawn", false, "start an in-process witness node on 127.0.0.1:0 (temporary data dir and keys)")
	var vkeyArgs stringList
	fs.Var(&vkeyArgs, "witness-vkey", "the witness's cosigner verifier key, or a file holding it (required with --url); repeat it for a witness that signs with both key types: every response must carry a valid cosignature by each, and the roster lists the first")
	cosignTypes := fs.String("cosignature-types", "", "with --spawn: what the spawned witness cosigns with (witness.cosignature_types): ed25519, mldsa or both (default: the node's default, both)")
	logs := fs.Int("logs", 1000, "number of scripted logs")
	concurrency := fs.Int("concurrency", 64, "concurrent clients (each owns logs/concurrency logs)")
	duration := fs.Duration("duration", 10*time.Second, "how long to send requests (0: until --requests or the workload ends)")
	requests := fs.Int("requests", 0, "stop after this many requests (0: no limit; sizes the workload if set)")
	maxRate := fs.Float64("max-rate", 25000, "highest rate (requests/s) to pre-generate checkpoints for when bounded by --duration")
	rosterOut := fs.String("roster-out", "", "write the roster (C2SP tlog-policy) listing the generated logs to FILE")
	wait := fs.Duration("wait", 5*time.Minute, "how long to wait for the witness to load the roster")
	logLevel := fs.String("log-level", "warn", "log level of a --spawn node")
	pidFile := fs.String("pid-file", "", "with --url: a file holding the witness's process ID, then on further lines (one per line) those of processes doing its work outside it, such as the ssh-agent litewitness signs through; read once the witness knows the logs. The CPU and memory of each over the timed window are measured from /proc and reported for the witness process alone and with its helpers")
	jsonOut := fs.String("json", "", "also write the result as JSON to FILE")
	procs := fs.Int("procs", 1, "with --url: GOMAXPROCS of this process while it drives the witness (0: leave it). The generator needs a fraction of a core, and with one P its goroutines hand the CPU to each other instead of waking other threads, which costs it less CPU per request; it is restored for the verification after the run")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile (pprof) of this process over the timed window to FILE: the load generator's own cost, plus a --spawn witness's")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	switch {
	case fs.NArg() != 0, *spawn == (*url != ""), *logs <= 0, *concurrency <= 0, *duration < 0, *requests < 0, *maxRate <= 0, *procs < 0:
		fs.Usage()
		return errUsage
	case *duration == 0 && *requests == 0:
		return errors.New("give --duration or --requests")
	case !*spawn && len(vkeyArgs) == 0:
		return errors.New("--witness-vkey is required with --url: every cosignature is verified")
	case !*spawn && *rosterOut == "":
		return errors.New("--roster-out is required with --url: the witness must be given the generated logs")
	case *spawn && *pidFile != "":
		return errors.New("--pid-file goes with --url: a --spawn witness runs in this process")
	case *spawn && len(vkeyArgs) > 0:
		return errors.New("--witness-vkey goes with --url: a --spawn witness makes its own keys")
	case !*spawn && *cosignTypes != "":
		return errors.New("--cosignature-types goes with --spawn: a --url witness signs as its own configuration says (witness.cosignature_types)")
	}
	switch *cosignTypes {
	case "", node.CosignEd25519, node.CosignMLDSA, node.CosignBoth:
	default:
		fmt.Fprintf(env.stderr, "vigil bench witness: --cosignature-types %q: want ed25519, mldsa or both\n", *cosignTypes)
		return errUsage
	}

	var vkeys []string
	for _, a := range vkeyArgs {
		vkey := a
		if b, err := os.ReadFile(a); err == nil {
			vkey = strings.TrimSpace(string(b))
		}
		if _, err := tlog.NewWitnessVerifier(vkey); err != nil {
			return fmt.Errorf("--witness-vkey %s: %w", a, err)
		}
		vkeys = append(vkeys, vkey)
	}

	steps := *requests
	if steps == 0 || (*duration > 0 && float64(steps) > *maxRate*duration.Seconds()) {
		steps = int(math.Ceil(*maxRate * duration.Seconds()))
	}
	steps = (steps + *logs - 1) / *logs
	fmt.Fprintf(env.stdout, "pre-generating %d logs × %d checkpoints with consistency proofs...\n", *logs, steps)
	start := time.Now()
	wl, err := load.NewWorkload(load.WorkloadConfig{Logs: *logs, Steps: steps})
	if err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "generated %d requests in %s\n", wl.Requests(), time.Since(start).Round(time.Millisecond))

	witnessName := "witness"
	if *spawn {
		witnessName = load.WitnessName
	}
	writeRoster := func() error {
		if *rosterOut == "" {
			return nil
		}
		if err := os.WriteFile(*rosterOut, wl.Policy(witnessName, vkeys[0]), 0o644); err != nil {
			return fmt.Errorf("writing roster: %w", err)
		}
		fmt.Fprintf(env.stdout, "wrote roster with %d logs to %s\n", *logs, *rosterOut)
		return nil
	}

	target := *url
	if *spawn {
		dir, err := os.MkdirTemp("", "vigil-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		n, err := load.StartNodeWith(dir, wl.Policy(witnessName, ""), newLogger(env, *logLevel), func(c *node.Config) {
			c.Witness.CosignatureTypes = *cosignTypes
		})
		if err != nil {
			return err
		}
		defer n.Close()
		target, vkeys = n.URL, n.VKeys
		fmt.Fprintf(env.stdout, "spawned witness %s (store %s, SyncWrites)\n", target, dir)
		if err := writeRoster(); err != nil {
			return err
		}
	} else {
		if err := writeRoster(); err != nil {
			return err
		}
		fmt.Fprintf(env.stdout, "waiting up to %s for %s to know the logs (start it with --roster %s, or send it SIGHUP)...\n", *wait, target, *rosterOut)
		wctx, cancel := context.WithTimeout(ctx, *wait)
		err := load.WaitReady(wctx, nil, target, wl, 500*time.Millisecond)
		cancel()
		if err != nil {
			return err
		}
	}
	var vs []note.Verifier
	var types []string
	for _, k := range vkeys {
		v, err := tlog.NewWitnessVerifier(k)
		if err != nil {
			return err
		}
		vs = append(vs, v)
		types = append(types, keyTypeName(k))
	}
	fmt.Fprintf(env.stdout, "checking every response for a cosignature of each type: %s\n", strings.Join(types, ", "))

	var pids []int
	if *pidFile != "" {
		if pids, err = readPIDFile(*pidFile); err != nil {
			return err
		}
	}
	fmt.Fprintf(env.stdout, "driving %s/add-checkpoint: %d clients, %s\n", strings.TrimSuffix(target, "/"), min(*concurrency, *logs), limitString(*duration, *requests))
	stopProfile, err := startCPUProfile(*cpuProfile)
	if err != nil {
		return err
	}
	restoreProcs := func() {}
	if !*spawn && *procs > 0 {
		// A --spawn witness runs in this process and keeps every P.
		prev := runtime.GOMAXPROCS(*procs)
		restoreProcs = func() { runtime.GOMAXPROCS(prev) }
	}
	res, err := load.Run(ctx, wl, load.Config{URL: target, Concurrency: *concurrency, Duration: *duration, Requests: *requests, TargetPID: firstOr0(pids), HelperPIDs: rest(pids)})
	restoreProcs()
	if perr := stopProfile(); err == nil {
		err = perr
	}
	if err != nil {
		return err
	}
	verr := res.Verify(ctx, vs...)
	res.Report(env.stdout)
	if !*spawn && *procs > 0 && res.Elapsed > 0 && res.CPU.Seconds() > 0.8*float64(*procs)*res.Elapsed.Seconds() {
		fmt.Fprintf(env.stdout, "note: the load generator kept %.2f of its %d P busy (--procs) and may have limited the rate; give it more with --procs\n",
			res.CPU.Seconds()/res.Elapsed.Seconds(), *procs)
	}
	if *jsonOut != "" {
		if err := writeBenchJSON(*jsonOut, target, types, res); err != nil {
			return err
		}
	}
	switch {
	case verr != nil:
		return fmt.Errorf("%d cosignatures failed to verify; first: %w", res.VerifyFailures, verr)
	case res.Stale > 0:
		return fmt.Errorf("%d logs got a 409 with an unexpected size: the witness lost or skipped state", res.Stale)
	case res.Cosigned == 0:
		return errors.New("no checkpoint was cosigned")
	}
	return nil
}

// startCPUProfile starts a CPU profile written to path ("": none) and
// returns the function that stops it and closes the file.
func startCPUProfile(path string) (func() error, error) {
	if path == "" {
		return func() error { return nil }, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	return func() error {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			return fmt.Errorf("--cpuprofile: %w", err)
		}
		return nil
	}, nil
}

func limitString(d time.Duration, n int) string {
	switch {
	case n > 0 && d > 0:
		return fmt.Sprintf("up to %d requests or %s", n, d)
	case n > 0:
		return fmt.Sprintf("%d requests", n)
	default:
		return d.String()
	}
}

// readPIDFile reads process IDs written by a service manager or a script,
// one per line (blank lines are skipped): the witness's first, then its
// helpers'.
func readPIDFile(path string) ([]int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--pid-file: %w", err)
	}
	var pids []int
	for line := range strings.Lines(string(b)) {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		pid, err := strconv.Atoi(line)
		if err != nil || pid <= 0 {
			return nil, fmt.Errorf("--pid-file %s: %q is not a process ID", path, line)
		}
		if slices.Contains(pids, pid) {
			return nil, fmt.Errorf("--pid-file %s: process %d is listed twice", path, pid)
		}
		pids = append(pids, pid)
	}
	if len(pids) == 0 {
		return nil, fmt.Errorf("--pid-file %s: no process ID", path)
	}
	return pids, nil
}

func firstOr0(pids []int) int {
	if len(pids) == 0 {
		return 0
	}
	return pids[0]
}

func rest(pids []int) []int {
	if len(pids) < 2 {
		return nil
	}
	return pids[1:]
}

// benchJSON is `vigil bench witness --json`'s output: one run's figures,
// for scripts that tabulate several.
type benchJSON struct {
	URL string `json:"url"`
	// KeyTypes are the cosignature types checked in every response
	// (ed25519, mldsa): what the witness signs with.
	KeyTypes      []string `json:"key_types"`
	Logs          int      `json:"logs"`
	Clients       int      `json:"clients"`
	Requests      int      `json:"requests"`
	Cosigned      int      `json:"cosigned"`
	Verified      int      `json:"verified"`
	ElapsedS      float64  `json:"elapsed_s"`
	PerSecond     float64  `json:"cosignatures_per_s"`
	P50ms         float64  `json:"p50_ms"`
	P99ms         float64  `json:"p99_ms"`
	ClientCPUus   float64  `json:"client_cpu_us_per_request"`
	TargetPID     int      `json:"target_pid,omitempty"`
	TargetCPUus   float64  `json:"target_cpu_us_per_cosignature,omitempty"`
	TargetRSSMB   float64  `json:"target_rss_mb,omitempty"`
	TargetPeakMB  float64  `json:"target_peak_rss_mb,omitempty"`
	TargetCPUBusy float64  `json:"target_cores_busy,omitempty"`
	// The target_* fields above are the witness process alone; the
	// target_total_* fields add its helper processes (--pid-file's further
	// lines, such as litewitness's ssh-agent signer), and equal them when
	// there are none.
	TargetHelpers      []benchProcJSON `json:"target_helpers,omitempty"`
	TargetTotalCPUus   float64         `json:"target_total_cpu_us_per_cosignature,omitempty"`
	TargetTotalCPUBusy float64         `json:"target_total_cores_busy,omitempty"`
	TargetTotalRSSMB   float64         `json:"target_total_rss_mb,omitempty"`
}

// benchProcJSON is one helper process's figures over the timed window.
type benchProcJSON struct {
	PID       int     `json:"pid"`
	Name      string  `json:"name"`
	CPUus     float64 `json:"cpu_us_per_cosignature"`
	CPUBusy   float64 `json:"cores_busy"`
	RSSMB     float64 `json:"rss_mb"`
	PeakRSSMB float64 `json:"peak_rss_mb"`
}

func writeBenchJSON(path, url string, types []string, r *load.Result) error {
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	out := benchJSON{
		URL: url, KeyTypes: types, Logs: r.Logs, Clients: r.Clients, Requests: r.Requests, Cosigned: r.Cosigned, Verified: r.Verified,
		ElapsedS: r.Elapsed.Seconds(), PerSecond: r.Throughput(), P50ms: ms(r.Percentile(50)), P99ms: ms(r.Percentile(99)),
	}
	if r.Requests > 0 {
		out.ClientCPUus = float64(r.CPU.Nanoseconds()) / 1e3 / float64(r.Requests)
	}
	if t := r.Target; t != nil {
		out.TargetPID = t.PID
		out.TargetCPUus = float64(r.TargetCPUPerCosignature().Nanoseconds()) / 1e3
		out.TargetRSSMB, out.TargetPeakMB = float64(t.RSS)/1e6, float64(t.PeakRSS)/1e6
		out.TargetTotalCPUus = float64(r.TargetTotalCPUPerCosignature().Nanoseconds()) / 1e3
		out.TargetTotalRSSMB = float64(t.TotalRSS()) / 1e6
		busy := func(cpu time.Duration) float64 {
			if r.Elapsed <= 0 {
				return 0
			}
			return cpu.Seconds() / r.Elapsed.Seconds()
		}
		out.TargetCPUBusy, out.TargetTotalCPUBusy = busy(t.CPU), busy(t.TotalCPU())
		for _, h := range t.Helpers {
			hj := benchProcJSON{PID: h.PID, Name: h.Name, CPUBusy: busy(h.CPU), RSSMB: float64(h.RSS) / 1e6, PeakRSSMB: float64(h.PeakRSS) / 1e6}
			if r.Cosigned > 0 {
				hj.CPUus = float64(h.CPU.Nanoseconds()) / 1e3 / float64(r.Cosigned)
			}
			out.TargetHelpers = append(out.TargetHelpers, hj)
		}
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("--json: %w", err)
	}
	return nil
}

// keyTypeName names a witness verifier key's cosignature type.
func keyTypeName(vkey string) string {
	switch t, _ := tlog.CosignatureKeyType(vkey); t {
	case tlog.AlgCosignatureV1:
		return node.CosignEd25519
	case tlog.AlgCosignatureMLDSA:
		return node.CosignMLDSA
	default:
		return fmt.Sprintf("type 0x%02x", t)
	}
}
