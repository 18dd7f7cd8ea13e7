package scitt_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigilnet/vigil/scitt"
)

// benchStatements pre-signs n statements (signing is the issuers' cost).
func benchStatements(b *testing.B, e *testEnv, n int) [][]byte {
	stmts := make([][]byte, n)
	for i := range stmts {
		stmts[i] = sign(b, e.issuer, scitt.KindConfiguration, i, scitt.SignOptions{})
	}
	return stmts
}

func reportLatencies(b *testing.B, elapsed time.Duration, lat []time.Duration) {
	slices.Sort(lat)
	b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "registrations/s")
	b.ReportMetric(float64(lat[len(lat)/2].Milliseconds()), "p50-receipt-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Milliseconds()), "p99-receipt-ms")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkRegister measures registrations/s through the service API with
// the POSIX driver and many concurrent submitters, each waiting for its
// receipt; it reports receipt latency (registration → receipt) p50/p99.
func BenchmarkRegister(b *testing.B) { benchRegister(b, newEnv) }

// BenchmarkRegisterMySQL is BenchmarkRegister with the MySQL driver
// (VIGIL_TEST_MYSQL_DSN; make test-mysql TEST_MYSQL_ARGS='-run ^$$ -bench MySQL').
func BenchmarkRegisterMySQL(b *testing.B) { benchRegister(b, mysqlEnv(b)) }

func benchRegister(b *testing.B, mk envMaker) {
	// Closed loop: latency = submitters / throughput (Little's law), so
	// this is enough to saturate the pipeline without queueing for nothing.
	submitters := 2048
	if n, err := strconv.Atoi(os.Getenv("VIGIL_BENCH_SUBMITTERS")); err == nil && n > 0 {
		submitters = n // e.g. MySQL, whose 1 s checkpoints need more in flight
	}
	e := mk(b)
	e.policy, _ = scitt.ParsePolicy(fmt.Appendf(nil, "issuers:\n  - name: provider.example\n    keys: [%q]\n    kinds: [configuration]\n", e.issuer.Public().String()))
	cfg := e.config(b)
	if v, err := time.ParseDuration(os.Getenv("VIGIL_BENCH_BATCH_AGE")); err == nil {
		cfg.BatchMaxAge = v // for tuning experiments
	}
	svc, srv := e.startWith(b, cfg, scitt.HandlerOptions{})
	defer srv.Close()
	stmts := benchStatements(b, e, b.N)
	lat := make([]time.Duration, b.N)
	var next atomic.Int64
	var failed atomic.Int64
	ctx := context.Background()
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for range min(submitters, b.N) {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= b.N {
					return
				}
				t0 := time.Now()
				reg, err := svc.Register(ctx, stmts[i], "bench")
				if err != nil {
					failed.Add(1)
					continue
				}
				wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
				_, err = svc.Wait(wctx, reg)
				cancel()
				if err != nil {
					failed.Add(1)
					continue
				}
				lat[i] = time.Since(t0)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d registrations failed", n)
	}
	reportLatencies(b, elapsed, lat)
}

// BenchmarkRegisterHTTP is BenchmarkRegister over real HTTP (POST /entries,
// synchronous 201 with the receipt), client and server on the same cores.
func BenchmarkRegisterHTTP(b *testing.B) {
	e := newEnv(b)
	e.policy, _ = scitt.ParsePolicy(fmt.Appendf(nil, "issuers:\n  - name: provider.example\n    keys: [%q]\n    kinds: [configuration]\n", e.issuer.Public().String()))
	benchRegisterHTTP(b, e)
}

// BenchmarkRegisterHTTPS is BenchmarkRegisterHTTP over TLS with a general
// registration policy: a content-type rule with a payload schema on top of
// the kind's built-in one, as a deployment with the policy and TLS on runs.
func BenchmarkRegisterHTTPS(b *testing.B) {
	e := newEnv(b)
	e.tls = true
	var err error
	e.policy, err = scitt.ParsePolicy(fmt.Appendf(nil, `issuers:
  - name: provider.example
    keys: [%q]
    content_types:
      - type: application/vnd.vigil.configuration+json
        schema: {format: json, required: [resource, as_of, config]}
      - application/vnd.cyclonedx+json
`, e.issuer.Public().String()))
	if err != nil {
		b.Fatal(err)
	}
	benchRegisterHTTP(b, e)
}

func benchRegisterHTTP(b *testing.B, e *testEnv) {
	const submitters = 2048
	_, srv := e.startWith(b, e.config(b), scitt.HandlerOptions{RatePerClient: -1, SyncWait: 30 * time.Second})
	stmts := benchStatements(b, e, b.N)
	lat := make([]time.Duration, b.N)
	tr := &http.Transport{MaxIdleConns: submitters, MaxIdleConnsPerHost: submitters}
	if e.tls {
		tr.TLSClientConfig = srv.Client().Transport.(*http.Transport).TLSClientConfig
	}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: time.Minute}
	// Every submitter's connection (and TLS handshake) is made before the
	// timer starts: the figure is registrations on open connections, as
	// long-lived clients make them, not a storm of 2,048 handshakes.
	var warm sync.WaitGroup
	for range min(submitters, b.N) {
		warm.Go(func() {
			resp, err := c.Get(srv.URL + "/.well-known/transparency-configuration")
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		})
	}
	warm.Wait()
	var next, failed atomic.Int64
	var firstErr atomic.Value
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for range min(submitters, b.N) {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= b.N {
					return
				}
				t0 := time.Now()
				resp, err := c.Post(srv.URL+"/entries", "application/cose", bytes.NewReader(stmts[i]))
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				var buf bytes.Buffer
				_, _ = buf.ReadFrom(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusCreated {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, resp.Status+": "+buf.String())
					continue
				}
				lat[i] = time.Since(t0)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d registrations failed, the first: %v", n, firstErr.Load())
	}
	reportLatencies(b, elapsed, lat)
}
