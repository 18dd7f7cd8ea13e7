package load_test

// Witness benchmarks for issue 3's Performance targets. The load generator
// and the node share the machine's cores, so the HTTP figures are a lower
// bound on what the witness alone can do. Results: docs/BENCHMARKS.md.

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilnet/vigil/node"
	"github.com/vigilnet/vigil/roster"
	"github.com/vigilnet/vigil/store"
	"github.com/vigilnet/vigil/testnet/load"
	"github.com/vigilnet/vigil/tlog"
	"github.com/vigilnet/vigil/witness"
)

// benchHTTP runs b.N add-checkpoint requests against a fresh node (Badger on
// disk, SyncWrites) over loopback HTTP and reports cosignatures/s and
// latency percentiles. Workload generation and cosignature verification are
// outside the timed region.
func benchHTTP(b *testing.B, logs, clients int) { benchHTTPWith(b, logs, clients, nil) }

func benchHTTPWith(b *testing.B, logs, clients int, tune func(*node.Config)) {
	b.StopTimer()
	wl, err := load.NewWorkload(load.WorkloadConfig{Logs: logs, Steps: (b.N+logs-1)/logs + 1})
	if err != nil {
		b.Fatal(err)
	}
	n := startNodeWith(b, wl.Policy("", ""), tune)
	ctx := context.Background()
	b.StartTimer()
	// VIGIL_BENCH_CPUPROFILE=FILE profiles the timed window only (the
	// workload's generation and the verification afterwards are left out).
	if f := os.Getenv("VIGIL_BENCH_CPUPROFILE"); f != "" {
		pf, err := os.Create(f)
		if err != nil {
			b.Fatal(err)
		}
		defer pf.Close()
		if err := pprof.StartCPUProfile(pf); err != nil {
			b.Fatal(err)
		}
		defer pprof.StopCPUProfile()
	}
	res, err := load.Run(ctx, wl, load.Config{URL: n.URL, Concurrency: clients, Requests: b.N})
	pprof.StopCPUProfile()
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	if res.Errors() != 0 || res.Cosigned != b.N {
		b.Fatalf("cosigned %d of %d; status %v, transport errors %d", res.Cosigned, b.N, res.Status, res.Transport)
	}
	if err := res.Verify(ctx, verifier(b, n.VKey)); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(meanCommitBatch(b, n), "batch")
	b.ReportMetric(res.Throughput(), "cosigs/s")
	b.ReportMetric(float64(res.Percentile(50))/float64(time.Millisecond), "p50-ms")
	b.ReportMetric(float64(res.Percentile(99))/float64(time.Millisecond), "p99-ms")
	// CPU of client and node together: with both on the same cores, this
	// bounds throughput at cores / (cpu-µs/op).
	b.ReportMetric(float64(res.CPU.Microseconds())/float64(b.N), "cpu-µs/op")
}

// meanCommitBatch is the mean number of updates per group commit (one sync
// each) over the node's life, from the store's own histogram.
func meanCommitBatch(b *testing.B, n *load.Node) float64 {
	b.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(n.Node.Store().Metrics()...)
	mfs, err := reg.Gather()
	if err != nil {
		b.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "vigil_store_commit_batch_size" {
			h := mf.GetMetric()[0].GetHistogram()
			return h.GetSampleSum() / float64(h.GetSampleCount())
		}
	}
	b.Fatal("no vigil_store_commit_batch_size")
	return 0
}

// BenchmarkWitnessThroughput: many concurrent clients across 1,000 logs.
// Target: ≥ 12,000 durable cosignatures/s.
func BenchmarkWitnessThroughput(b *testing.B) {
	for _, clients := range []int{8, 64, 256} {
		b.Run(fmt.Sprintf("logs=1000/clients=%d", clients), func(b *testing.B) { benchHTTP(b, 1000, clients) })
	}
	// The same without the group committer's linger, for comparison.
	for _, clients := range []int{8, 64, 256} {
		b.Run(fmt.Sprintf("logs=1000/clients=%d/linger=off", clients), func(b *testing.B) {
			benchHTTPWith(b, 1000, clients, func(c *node.Config) { c.Witness.CommitLinger = -1 })
		})
	}
}

// BenchmarkWitnessSingleLogLatency: sequential requests to one log, each
// durable before the next. Targets: p50 < 2 ms, p99 < 10 ms.
func BenchmarkWitnessSingleLogLatency(b *testing.B) { benchHTTP(b, 1, 1) }

// memStore is an in-memory witness.StateStore: the CPU floor without Badger.
type memStore struct {
	mu sync.Mutex
	m  map[string]store.WitnessState
}

func (s *memStore) WitnessState(_ context.Context, origin string) (store.WitnessState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.m[origin]
	if !ok {
		return st, store.ErrNotFound
	}
	return st, nil
}

func (s *memStore) UpdateWitnessState(_ context.Context, origin string, fn func(store.WitnessState, bool) (store.WitnessState, error)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.m[origin]
	next, err := fn(old, ok)
	if err != nil {
		return err
	}
	s.m[origin] = next
	return nil
}

// BenchmarkWitnessCore is the in-process floor: request parsing, log
// signature verification, consistency proof, cosigning and an in-memory
// compare-and-swap, without HTTP or Badger. Parallel uses every core with
// each goroutine owning its own logs.
func BenchmarkWitnessCore(b *testing.B) {
	const logs = 1000
	setup := func(b *testing.B, steps int) (*witness.Witness, *load.Workload) {
		b.Helper()
		wl, err := load.NewWorkload(load.WorkloadConfig{Logs: logs, Steps: steps})
		if err != nil {
			b.Fatal(err)
		}
		r, err := roster.ParsePolicy(wl.Policy("", ""))
		if err != nil {
			b.Fatal(err)
		}
		skey, _, err := tlog.GenerateCosignerKey(rand.Reader, load.WitnessName)
		if err != nil {
			b.Fatal(err)
		}
		signer, err := tlog.NewCosignatureSigner(skey, nil)
		if err != nil {
			b.Fatal(err)
		}
		w, err := witness.New(witness.Config{Signer: signer, Logs: r, Store: &memStore{m: map[string]store.WitnessState{}}})
		if err != nil {
			b.Fatal(err)
		}
		return w, wl
	}
	add := func(b *testing.B, w *witness.Witness, body []byte) {
		req, err := witness.ParseAddCheckpointRequest(body)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := w.AddCheckpoint(context.Background(), req); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("sequential", func(b *testing.B) {
		w, wl := setup(b, (b.N+logs-1)/logs)
		b.ResetTimer()
		for i := range b.N {
			add(b, w, wl.Chains[i%logs].Steps[i/logs].Body)
		}
	})
	b.Run("parallel", func(b *testing.B) {
		// Each goroutine owns its logs; pre-generate twice the fair share in
		// case the goroutines' shares of b.N are uneven.
		w, wl := setup(b, 2*((b.N+logs-1)/logs)+1)
		var next atomic.Int32
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			g := int(next.Add(1)) - 1
			var mine []*load.Chain
			for j := g; j < logs; j += runtime.GOMAXPROCS(0) {
				mine = append(mine, wl.Chains[j])
			}
			for i := 0; pb.Next(); i++ {
				c := mine[i%len(mine)]
				add(b, w, c.Steps[i/len(mine)].Body)
			}
		})
	})
}

// BenchmarkEd25519VerifySign is the cryptographic floor of one
// add-checkpoint: verify the log's signature, then sign the cosignature.
func BenchmarkEd25519VerifySign(b *testing.B) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	msg := []byte("bench.vigil.example/log\n123456\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n")
	sig := ed25519.Sign(priv, msg)
	op := func() {
		if !ed25519.Verify(pub, msg, sig) {
			b.Fatal("verify failed")
		}
		ed25519.Sign(priv, msg)
	}
	b.Run("sequential", func(b *testing.B) {
		for b.Loop() {
			op()
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				op()
			}
		})
	})
}
