package feed_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigilnet/vigil/tlog"
	"github.com/vigilnet/vigil/witness"
)

// benchEnv is an env with nLogs logs, each cosigned by both witnesses.
func benchEnv(b *testing.B, nLogs int) *env {
	b.Helper()
	// The stream caps are lifted: BenchmarkSSESubscribers holds 1,000
	// streams from one address.
	e := newEnv(b, envOptions{logs: nLogs, witnesses: 2, maxSubscribers: 100000, maxSubscribersPerAddr: 100000})
	var wg sync.WaitGroup
	errs := make(chan error, nLogs)
	sem := make(chan struct{}, 64)
	for i, l := range e.logs {
		l.AppendN(10+i%50, "a")
		cp, _ := l.Checkpoint()
		for _, tw := range e.wits {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				if _, err := tw.w.AddCheckpoint(context.Background(), &witness.AddCheckpointRequest{Checkpoint: cp}); err != nil {
					errs <- err
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	// Build every view once, as a node does as soon as it serves.
	if code, _, body := e.get("/v1/logs"); code != 200 {
		b.Fatalf("/v1/logs: %d %s", code, body)
	}
	return e
}

// rawClient is a minimal HTTP/1.1 keep-alive client, so the load generator
// costs little of the two cores it shares with the server.
type rawClient struct {
	c  net.Conn
	br *bufio.Reader
}

func dialRaw(tb testing.TB, base string, bufSize int) *rawClient {
	tb.Helper()
	u, _ := url.Parse(base)
	c, err := net.Dial("tcp", u.Host)
	if err != nil {
		tb.Fatal(err)
	}
	return &rawClient{c: c, br: bufio.NewReaderSize(c, bufSize)}
}

// get sends one request and reads the response; it returns the status.
func (r *rawClient) get(req []byte) (int, error) {
	if _, err := r.c.Write(req); err != nil {
		return 0, err
	}
	line, err := r.br.ReadSlice('\n')
	if err != nil {
		return 0, err
	}
	code, _ := strconv.Atoi(string(line[9:12]))
	n := -1
	for {
		h, err := r.br.ReadSlice('\n')
		if err != nil {
			return 0, err
		}
		if len(h) <= 2 {
			break
		}
		if v, ok := bytes.CutPrefix(h, []byte("Content-Length: ")); ok {
			n, _ = strconv.Atoi(string(bytes.TrimSpace(v)))
		}
	}
	if n < 0 {
		return 0, fmt.Errorf("no Content-Length")
	}
	_, err = r.br.Discard(n)
	return code, err
}

// BenchmarkCheckpointEndpoint measures GET /v1/logs/{id}/checkpoint over
// loopback with 1,000 logs over 8 keep-alive connections ($FEED_BENCH_CONNS),
// spread over the logs and k = 0, 1, 2.
func BenchmarkCheckpointEndpoint(b *testing.B) {
	const nLogs = 1000
	conns := 8
	if v, err := strconv.Atoi(os.Getenv("FEED_BENCH_CONNS")); err == nil && v > 0 {
		conns = v
	}
	e := benchEnv(b, nLogs)
	reqs := make([][]byte, nLogs)
	for i, l := range e.logs {
		k := i % 3 // k=0, 1 and 2 all served from the cache
		reqs[i] = fmt.Appendf(nil, "GET /v1/logs/%s/checkpoint?k=%d HTTP/1.1\r\nHost: bench\r\n\r\n", tlog.LogID(l.Origin()), k)
	}
	calls := e.src.sourceCalls()
	clients := make([]*rawClient, conns)
	for i := range clients {
		clients[i] = dialRaw(b, e.url, 16<<10)
		defer clients[i].c.Close()
	}
	lat := make([][]time.Duration, conns)
	var wg sync.WaitGroup
	var failed sync.Once
	b.ResetTimer()
	start := time.Now()
	for w := range conns {
		n := b.N / conns
		if w < b.N%conns {
			n++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ls := make([]time.Duration, 0, n)
			for i := range n {
				t0 := time.Now()
				code, err := clients[w].get(reqs[(w*7919+i*31)%nLogs])
				ls = append(ls, time.Since(t0))
				if err != nil || code != 200 {
					failed.Do(func() { b.Errorf("status %d, %v", code, err) })
					return
				}
			}
			lat[w] = ls
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	all := slices.Concat(lat...)
	slices.Sort(all)
	if len(all) > 0 {
		b.ReportMetric(float64(len(all))/elapsed.Seconds(), "req/s")
		b.ReportMetric(float64(all[len(all)*99/100].Microseconds())/1000, "p99-ms")
		b.ReportMetric(float64(all[len(all)/2].Microseconds())/1000, "p50-ms")
	}
	if got := e.src.sourceCalls(); got != calls {
		b.Errorf("the hot path read the source %d times", got-calls)
	}
}

// BenchmarkSSESubscribers measures the memory of 1,000 concurrent event
// streams (server and the minimal clients together) and the fan-out of one
// event to all of them.
func BenchmarkSSESubscribers(b *testing.B) {
	const subs = 1000
	e := benchEnv(b, 10)
	for range b.N {
		before := memInUse()
		conns := make([]*rawClient, subs)
		for i := range conns {
			c := dialRaw(b, e.url, 1<<10) // the clients' share stays small
			if _, err := io.WriteString(c.c, "GET /v1/events HTTP/1.1\r\nHost: bench\r\n\r\n"); err != nil {
				b.Fatal(err)
			}
			readUntil(b, c.br, "retry: 2000\n\n")
			conns[i] = c
		}
		after := memInUse()
		// One new checkpoint reaches every subscriber.
		start := time.Now()
		e.logs[0].AppendN(1, "b")
		cp, _ := e.logs[0].Checkpoint()
		old := e.logs[0].Size() - 1
		p, _ := e.logs[0].ConsistencyProof(old, old+1)
		if _, err := e.wits[0].w.AddCheckpoint(context.Background(), &witness.AddCheckpointRequest{OldSize: old, Proof: p, Checkpoint: cp}); err != nil {
			b.Fatal(err)
		}
		for _, c := range conns {
			readUntil(b, c.br, "event: checkpoint\n")
		}
		fanout := time.Since(start)
		for _, c := range conns {
			c.c.Close()
		}
		b.ReportMetric(float64(after-before)/(1<<20), "MB-heap+stack")
		b.ReportMetric(float64(fanout.Microseconds())/1000, "fanout-ms")
	}
}

func readUntil(tb testing.TB, br *bufio.Reader, want string) {
	tb.Helper()
	var seen strings.Builder
	for seen.Len() < 1<<16 {
		s, err := br.ReadString('\n')
		seen.WriteString(s)
		if strings.Contains(seen.String(), want) {
			return
		}
		if err != nil {
			tb.Fatalf("reading events: %v after %q", err, seen.String())
		}
	}
	tb.Fatalf("%q not seen in %q", want, seen.String())
}

// memInUse is the Go heap and goroutine stacks in use after a GC.
func memInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse + m.StackInuse
}
