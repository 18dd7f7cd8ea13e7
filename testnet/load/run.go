package load

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// maxTransportErrors stops a client after this many consecutive transport
// failures (the target is gone), so a run against a dead witness ends.
const maxTransportErrors = 100

// requestTimeout bounds one request on the lean client, as
// NewHTTPClient's Timeout does on net/http's.
const requestTimeout = 30 * time.Second

// maxResponseBytes bounds how much of a response body a client reads.
const maxResponseBytes = 64 << 10

// Config configures Run. URL is required.
type Config struct {
	// URL is the witness's submission prefix, e.g. http://127.0.0.1:7380;
	// requests go to URL + "/add-checkpoint".
	URL string
	// Concurrency is the number of concurrent clients, each owning a
	// disjoint subset of the logs; default 64, capped at the number of logs.
	Concurrency int
	// Duration stops issuing requests after this long; 0 means no limit.
	Duration time.Duration
	// Requests stops after this many requests in total; 0 means no limit.
	// With neither limit the run ends when the workload is used up.
	Requests int
	// Client, if set, sends every request through net/http. Nil means
	// each client has its own lean HTTP/1.1 keep-alive connection
	// (rawconn.go) for an http:// URL, and NewHTTPClient(Concurrency) for
	// https://.
	Client *http.Client
	// TargetPID, if set, is the witness's process: Run samples its CPU
	// time and memory from /proc at the start and end of the timed
	// window (Result.Target).
	TargetPID int
	// HelperPIDs are processes doing the witness's work outside its own
	// process, such as the ssh-agent litewitness signs through. With
	// TargetPID set they are sampled with it (Result.Target.Helpers), so
	// the witness's cost can be reported alone and in total.
	HelperPIDs []int
}

// NewHTTPClient returns a client tuned for load: keep-alive connections,
// one idle connection kept per concurrent client (the default of 2 per host
// would make most clients dial a new connection per request), no
// compression, and a request timeout.
func NewHTTPClient(concurrency int) *http.Client {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        concurrency + 16,
		MaxIdleConnsPerHost: concurrency + 16,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// Run drives the workload against the witness at cfg.URL and returns what it
// measured. Each chain is submitted in order by the one client that owns it,
// so a request is stale only if the witness lost or skipped state. Run does
// not verify cosignatures; call Result.Verify afterwards, outside any timing.
func Run(ctx context.Context, wl *Workload, cfg Config) (*Result, error) {
	if cfg.URL == "" {
		return nil, errors.New("load: no witness URL")
	}
	if len(wl.Chains) == 0 {
		return nil, errors.New("load: empty workload")
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 64
	}
	cfg.Concurrency = min(cfg.Concurrency, len(wl.Chains))
	endpoint := strings.TrimSuffix(cfg.URL, "/") + "/add-checkpoint"
	newPoster := func() (poster, error) { return newRawConn(endpoint, requestTimeout) }
	if client := cfg.Client; client != nil || !strings.HasPrefix(endpoint, "http://") {
		if client == nil {
			client = NewHTTPClient(cfg.Concurrency)
			defer client.CloseIdleConnections()
		}
		newPoster = func() (poster, error) { return httpPoster{endpoint: endpoint, client: client}, nil }
	}
	r := &runner{
		wl:     wl,
		budget: int64(cfg.Requests),
	}
	workers := make([]*worker, cfg.Concurrency)
	for i := range workers {
		p, err := newPoster()
		if err != nil {
			return nil, err
		}
		workers[i] = &worker{r: r, p: p}
	}
	for i, w := range workers {
		steps := 0
		for j := i; j < len(wl.Chains); j += cfg.Concurrency {
			w.chains = append(w.chains, &cursor{chain: j})
			steps += len(wl.Chains[j].Steps)
		}
		w.stats = newStats(steps)
	}
	if cfg.TargetPID == 0 && len(cfg.HelperPIDs) > 0 {
		return nil, errors.New("load: helper processes given without the witness's own (TargetPID)")
	}
	var pids []int
	if cfg.TargetPID != 0 {
		pids = append([]int{cfg.TargetPID}, cfg.HelperPIDs...)
	}
	target0, err := SampleProcs(pids)
	if err != nil {
		return nil, err
	}
	cpu0 := ProcessCPU()
	start := time.Now()
	if cfg.Duration > 0 {
		r.deadline = start.Add(cfg.Duration)
	}
	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Go(func() {
			defer w.p.close()
			w.run(ctx)
		})
	}
	wg.Wait()
	res := &Result{Elapsed: time.Since(start), CPU: ProcessCPU() - cpu0, Clients: cfg.Concurrency, Logs: len(wl.Chains), wl: wl}
	if len(pids) > 0 {
		end, err := SampleProcs(pids)
		if err != nil {
			return nil, err
		}
		procs, err := StatsSince(end, target0)
		if err != nil {
			return nil, err
		}
		res.Target = &TargetStats{ProcStats: procs[0], Helpers: procs[1:]}
	}
	exhausted := true
	for _, w := range workers {
		res.merge(w.stats)
		for _, c := range w.chains {
			if !c.dead && c.next < len(wl.Chains[c.chain].Steps) {
				exhausted = false
			}
		}
	}
	res.Exhausted = exhausted
	res.finish()
	return res, ctx.Err()
}

type runner struct {
	wl       *Workload
	deadline time.Time
	budget   int64 // 0: unlimited
	issued   atomic.Int64
}

// cursor is a client's position in one chain.
type cursor struct {
	chain     int
	next      int       // index of the next step to submit
	notBefore time.Time // set by 429/503 Retry-After
	dead      bool      // the witness's state no longer matches the chain
}

type worker struct {
	r      *runner
	p      poster
	chains []*cursor
	rr     int
	stats  *stats
}

// pick returns the next chain to submit to, round-robin, skipping finished,
// dead and backing-off chains. If all live chains are backing off it returns
// the earliest time one becomes available.
func (w *worker) pick(now time.Time) (*cursor, time.Time) {
	var wait time.Time
	for range len(w.chains) {
		c := w.chains[w.rr]
		w.rr = (w.rr + 1) % len(w.chains)
		if c.dead || c.next >= len(w.r.wl.Chains[c.chain].Steps) {
			continue
		}
		if now.Before(c.notBefore) {
			if wait.IsZero() || c.notBefore.Before(wait) {
				wait = c.notBefore
			}
			continue
		}
		return c, time.Time{}
	}
	return nil, wait
}

func (w *worker) run(ctx context.Context) {
	transportErrs := 0
	for ctx.Err() == nil {
		now := time.Now()
		if !w.r.deadline.IsZero() && !now.Before(w.r.deadline) {
			return
		}
		c, wait := w.pick(now)
		if c == nil {
			if wait.IsZero() {
				return // every chain finished or dead
			}
			if !w.r.deadline.IsZero() && wait.After(w.r.deadline) {
				return
			}
			t := time.NewTimer(time.Until(wait))
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			continue
		}
		if w.r.budget > 0 && w.r.issued.Add(1) > w.r.budget {
			return
		}
		step := &w.r.wl.Chains[c.chain].Steps[c.next]
		resp, lat, err := w.p.post(ctx, step.Body)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			w.stats.transport++
			if transportErrs++; transportErrs >= maxTransportErrors {
				return
			}
			continue
		}
		transportErrs = 0
		w.stats.status[resp.code]++
		switch resp.code {
		case http.StatusOK:
			w.stats.lat = append(w.stats.lat, lat)
			w.stats.cosigs = append(w.stats.cosigs, cosig{chain: c.chain, step: c.next, lines: resp.body})
			c.next++
		case http.StatusConflict:
			// SPEC: 409 carries the witness's size. If it is this step's
			// size, an earlier attempt landed without its reply reaching us.
			size, perr := strconv.ParseUint(strings.TrimSpace(string(resp.body)), 10, 64)
			switch {
			case perr == nil && size == step.Size:
				c.next++
			default:
				c.dead = true
				w.stats.stale++
			}
		case http.StatusTooManyRequests, http.StatusServiceUnavailable:
			c.notBefore = time.Now().Add(retryAfter(resp.retryAfter))
		case http.StatusInternalServerError, http.StatusBadGateway, http.StatusGatewayTimeout:
			// Unknown outcome: retry the step; a 409 then tells.
		default:
			c.dead = true
		}
	}
}

// retryAfter reads Retry-After in seconds, defaulting to 100 ms and capped
// at 10 s.
func retryAfter(v string) time.Duration {
	s, err := strconv.Atoi(v)
	if err != nil || s < 0 {
		return 100 * time.Millisecond
	}
	return min(time.Duration(s)*time.Second, 10*time.Second)
}

// httpPoster posts through a net/http client: for https:// targets and
// callers that bring their own client.
type httpPoster struct {
	endpoint string
	client   *http.Client
}

func (p httpPoster) close() {}

// post sends one add-checkpoint request and returns the reply and latency.
func (p httpPoster) post(ctx context.Context, body []byte) (response, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.endpoint, bytes.NewReader(body))
	if err != nil {
		return response{}, 0, err
	}
	start := time.Now()
	resp, err := p.client.Do(req)
	if err != nil {
		return response{}, 0, err
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	resp.Body.Close()
	lat := time.Since(start)
	if err != nil {
		return response{}, 0, fmt.Errorf("reading response: %w", err)
	}
	return response{code: resp.StatusCode, body: b, retryAfter: resp.Header.Get("Retry-After")}, lat, nil
}

// WaitReady waits until the witness at url knows the workload's logs (it
// answers a harmless probe for the first and last log with 400 rather than
// 404), polling every interval until ctx ends. It changes no witness state.
func WaitReady(ctx context.Context, client *http.Client, url string, wl *Workload, interval time.Duration) error {
	if client == nil {
		client = http.DefaultClient
	}
	p := httpPoster{endpoint: strings.TrimSuffix(url, "/") + "/add-checkpoint", client: client}
	probes := make([][]byte, 0, 2)
	for _, c := range []*Chain{wl.Chains[0], wl.Chains[len(wl.Chains)-1]} {
		b, err := c.probeBody()
		if err != nil {
			return err
		}
		probes = append(probes, b)
	}
	var last error
	waited := func() error { return fmt.Errorf("waiting for the witness: %w (last: %v)", ctx.Err(), last) }
	for {
		ready := true
		for _, probe := range probes {
			resp, _, err := p.post(ctx, probe)
			switch {
			case err != nil && ctx.Err() != nil && last != nil:
				// The wait's own deadline cut this probe off: the last
				// answer the witness gave says more than that it was cut.
				return waited()
			case err != nil:
				last, ready = err, false
			case resp.code == http.StatusNotFound:
				last, ready = errors.New("the witness does not know the workload's logs yet"), false
			case resp.code != http.StatusBadRequest:
				return fmt.Errorf("probe answered %d: %s", resp.code, bytes.TrimSpace(resp.body))
			}
			if !ready {
				break
			}
		}
		if ready {
			return nil
		}
		t := time.NewTimer(interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return waited()
		case <-t.C:
		}
	}
}
