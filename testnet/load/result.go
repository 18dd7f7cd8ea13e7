package load

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/vigilnet/vigil/tlog"
)

// cosig is a 200 response kept for verification after the run.
type cosig struct {
	chain, step int
	lines       []byte
}

// stats is one client's tally; merged into a Result at the end. Counting
// into an array and appending to slices sized for the client's share of
// the workload keeps map updates and slice growth out of the timed loop.
type stats struct {
	// status counts responses by code: both clients return three-digit
	// codes (rawconn.go reads three digits; net/http rejects others).
	status    [1000]int
	transport int
	stale     int
	lat       []time.Duration
	cosigs    []cosig
}

// newStats returns a tally with room for n successful requests.
func newStats(n int) *stats {
	return &stats{lat: make([]time.Duration, 0, n), cosigs: make([]cosig, 0, n)}
}

// Result is what Run measured.
type Result struct {
	// Elapsed is the time from the first request to the last reply.
	Elapsed time.Duration
	// CPU is the CPU time (user and system) this process used during the
	// run: the load generator's, plus the witness's if it runs in-process.
	CPU time.Duration
	// Clients and Logs are the concurrency and log count actually used.
	Clients, Logs int
	// Requests counts HTTP exchanges that got a status; Cosigned counts
	// 200 responses.
	Requests, Cosigned int
	// Status counts responses by HTTP status code.
	Status map[int]int
	// Transport counts requests that got no HTTP response.
	Transport int
	// Stale counts 409s whose size was not the one the chain expected: the
	// witness lost or skipped state (or something else fed it these logs).
	Stale int
	// Latency holds the latency of every 200 response, sorted.
	Latency []time.Duration
	// Exhausted reports that every chain was used up (or failed) before a
	// duration or request limit ended the run.
	Exhausted bool
	// Verified and VerifyFailures are filled by Verify.
	Verified       int
	VerifyFailures int
	// Target is what the witness's own process used during the run, when
	// Config.TargetPID named it.
	Target *TargetStats

	wl     *Workload
	cosigs []cosig
}

func (r *Result) merge(s *stats) {
	if r.Status == nil {
		r.Status = map[int]int{}
	}
	for code, n := range s.status {
		if n > 0 {
			r.Status[code] += n
			r.Requests += n
		}
	}
	r.Cosigned += s.status[200]
	r.Transport += s.transport
	r.Stale += s.stale
	r.Latency = append(r.Latency, s.lat...)
	r.cosigs = append(r.cosigs, s.cosigs...)
}

func (r *Result) finish() { slices.Sort(r.Latency) }

// TargetStats is what the witness used over the timed window: its own
// process (the embedded ProcStats) and the processes working for it
// (Config.HelperPIDs).
type TargetStats struct {
	ProcStats
	Helpers []ProcStats
}

// TotalCPU is the CPU time of the witness process and its helpers.
func (t *TargetStats) TotalCPU() time.Duration {
	cpu := t.CPU
	for _, h := range t.Helpers {
		cpu += h.CPU
	}
	return cpu
}

// TotalRSS is the resident memory of the witness process and its helpers
// at the end of the window, in bytes.
func (t *TargetStats) TotalRSS() int64 {
	rss := t.RSS
	for _, h := range t.Helpers {
		rss += h.RSS
	}
	return rss
}

// TargetCPUPerCosignature is the witness process's own CPU time per
// cosignature over the window, or 0 if it was not measured.
func (r *Result) TargetCPUPerCosignature() time.Duration {
	if r.Target == nil || r.Cosigned == 0 {
		return 0
	}
	return r.Target.CPU / time.Duration(r.Cosigned)
}

// TargetTotalCPUPerCosignature is the CPU time per cosignature of the
// witness process and its helpers together (its signer, when that is
// another process), or 0 if it was not measured.
func (r *Result) TargetTotalCPUPerCosignature() time.Duration {
	if r.Target == nil || r.Cosigned == 0 {
		return 0
	}
	return r.Target.TotalCPU() / time.Duration(r.Cosigned)
}

// Throughput is cosignatures per second.
func (r *Result) Throughput() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Cosigned) / r.Elapsed.Seconds()
}

// Percentile returns the p-th percentile (0 < p ≤ 100) of 200-response
// latency, nearest rank; 0 if nothing was cosigned.
func (r *Result) Percentile(p float64) time.Duration {
	if len(r.Latency) == 0 {
		return 0
	}
	i := int(float64(len(r.Latency))*p/100+0.999999) - 1
	return r.Latency[min(max(i, 0), len(r.Latency)-1)]
}

// Errors counts every request that did not get a 200.
func (r *Result) Errors() int { return r.Requests - r.Cosigned + r.Transport }

// Verify checks every returned cosignature against the witness's verifier
// keys vs (one per cosignature type it signs with): each 200 body must be
// signature lines that, appended to the submitted checkpoint, verify as a
// cosignature by every key in vs over that exact checkpoint, with a
// non-zero timestamp. It runs on all CPUs and returns an error describing
// the first failure, if any.
func (r *Result) Verify(ctx context.Context, vs ...note.Verifier) error {
	if len(vs) == 0 {
		return errors.New("no witness verifier key to check cosignatures with")
	}
	workers := runtime.GOMAXPROCS(0)
	var (
		mu    sync.Mutex
		first error
		fails int
		wg    sync.WaitGroup
	)
	for k := range workers {
		wg.Go(func() {
			nf := 0
			var ferr error
			for i := k; i < len(r.cosigs) && ctx.Err() == nil; i += workers {
				c := r.cosigs[i]
				st := r.wl.Chains[c.chain].Steps[c.step]
				for _, v := range vs {
					if err := VerifyCosignature(st.Checkpoint, c.lines, v); err != nil {
						nf++
						if ferr == nil {
							ferr = fmt.Errorf("%s size %d, key %s: %w", r.wl.Chains[c.chain].Log.Origin(), st.Size, v.Name(), err)
						}
						break
					}
				}
			}
			mu.Lock()
			fails += nf
			if first == nil {
				first = ferr
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return err
	}
	r.VerifyFailures = fails
	r.Verified = len(r.cosigs) - fails
	return first
}

// VerifyCosignature checks an add-checkpoint 200 body (one or more note
// signature lines) as a cosignature by v over the signed checkpoint.
// SPEC: the simplest client parse appends the body to the checkpoint note
// and runs note verification with the witness key; lines from other keys
// are ignored.
func VerifyCosignature(checkpoint, lines []byte, v note.Verifier) error {
	if len(lines) == 0 || lines[len(lines)-1] != '\n' {
		return errors.New("response is not signature lines")
	}
	for _, l := range bytes.SplitAfter(lines[:len(lines)-1], []byte("\n")) {
		if !bytes.HasPrefix(l, []byte("— ")) {
			return fmt.Errorf("response line %q is not a signature line", l)
		}
	}
	msg := make([]byte, 0, len(checkpoint)+len(lines))
	msg = append(append(msg, checkpoint...), lines...)
	n, err := note.Open(msg, note.VerifierList(v))
	if err != nil {
		return fmt.Errorf("cosignature does not verify: %w", err)
	}
	for _, s := range n.Sigs {
		if s.Name == v.Name() && s.Hash == v.KeyHash() {
			if ts, err := tlog.CosignatureTimestamp(s); err != nil || ts == 0 {
				return errors.New("cosignature has no timestamp")
			}
			return nil
		}
	}
	return errors.New("no cosignature by the witness key")
}

// Report writes a human-readable summary.
func (r *Result) Report(w io.Writer) {
	fmt.Fprintf(w, "%d logs, %d clients, %d requests in %s\n", r.Logs, r.Clients, r.Requests, r.Elapsed.Round(time.Millisecond))
	fmt.Fprintf(w, "throughput: %.0f cosignatures/s\n", r.Throughput())
	if r.CPU > 0 && r.Requests > 0 {
		fmt.Fprintf(w, "CPU of this process: %.2f cores busy, %.0fµs per request\n",
			r.CPU.Seconds()/r.Elapsed.Seconds(), float64(r.CPU.Microseconds())/float64(r.Requests))
	}
	if t := r.Target; t != nil && r.Elapsed > 0 {
		fmt.Fprintf(w, "CPU of the witness process %d (%s): %.2f cores busy, %.0fµs per cosignature; RSS %.1f MB, peak %.1f MB\n",
			t.PID, t.Name, t.CPU.Seconds()/r.Elapsed.Seconds(), float64(r.TargetCPUPerCosignature().Nanoseconds())/1e3,
			float64(t.RSS)/1e6, float64(t.PeakRSS)/1e6)
		for _, h := range t.Helpers {
			fmt.Fprintf(w, "CPU of its helper process %d (%s): %.2f cores busy, %.0fµs per cosignature; RSS %.1f MB, peak %.1f MB\n",
				h.PID, h.Name, h.CPU.Seconds()/r.Elapsed.Seconds(), perCosig(h.CPU, r.Cosigned), float64(h.RSS)/1e6, float64(h.PeakRSS)/1e6)
		}
		if len(t.Helpers) > 0 {
			fmt.Fprintf(w, "CPU of the witness with its helpers: %.2f cores busy, %.0fµs per cosignature; RSS %.1f MB\n",
				t.TotalCPU().Seconds()/r.Elapsed.Seconds(), float64(r.TargetTotalCPUPerCosignature().Nanoseconds())/1e3, float64(t.TotalRSS())/1e6)
		}
	}
	fmt.Fprintf(w, "latency (200s): p50 %s  p90 %s  p99 %s  max %s\n",
		fmtDur(r.Percentile(50)), fmtDur(r.Percentile(90)), fmtDur(r.Percentile(99)), fmtDur(r.Percentile(100)))
	codes := slices.Sorted(maps.Keys(r.Status))
	parts := make([]string, 0, len(codes)+1)
	for _, c := range codes {
		parts = append(parts, fmt.Sprintf("%d=%d", c, r.Status[c]))
	}
	if r.Transport > 0 {
		parts = append(parts, fmt.Sprintf("transport=%d", r.Transport))
	}
	fmt.Fprintf(w, "responses: %s\n", strings.Join(parts, " "))
	if r.Stale > 0 {
		fmt.Fprintf(w, "stale: %d chains got a 409 with an unexpected size\n", r.Stale)
	}
	fmt.Fprintf(w, "cosignatures verified: %d of %d (%d failures)\n", r.Verified, r.Cosigned, r.VerifyFailures)
	if r.Exhausted {
		fmt.Fprintln(w, "note: the pre-generated workload ran out before the limit")
	}
}

// perCosig is cpu per cosignature in µs, or 0 with none.
func perCosig(cpu time.Duration, cosigned int) float64 {
	if cosigned == 0 {
		return 0
	}
	return float64(cpu.Nanoseconds()) / 1e3 / float64(cosigned)
}

func fmtDur(d time.Duration) string {
	return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
}
