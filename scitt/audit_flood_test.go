package scitt_test

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigilnet/vigil/scitt"
)

// TestRejectedFloodSoak floods the service with rejected registrations from
// one address (127.0.0.2) at 1,000/s while another address (127.0.0.1)
// registers valid statements. The flooder must be answered 429 with
// Retry-After once its rejection budget is spent; the other client's
// receipt latency must stay within 2x of the quiet figure; the audit trail
// must stay under its cap. A few seconds by default, a minute with
// VIGIL_SOAK=1.
func TestRejectedFloodSoak(t *testing.T) {
	flood := 3 * time.Second
	if os.Getenv("VIGIL_SOAK") == "1" {
		flood = time.Minute
	}
	const auditCap = 256 << 10
	e := newEnv(t)
	cfg := e.config(t)
	cfg.AuditMaxBytes = auditCap
	svc, srv := e.startWith(t, cfg, scitt.HandlerOptions{})

	flooder := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext:         (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}).DialContext,
		MaxIdleConnsPerHost: 64,
	}}
	if _, err := flooder.Get(srv.URL + "/checkpoint"); err != nil {
		t.Skipf("cannot send from 127.0.0.2: %v", err)
	}

	n := 0
	measure := func(count int) time.Duration {
		var lat []time.Duration
		for range count {
			n++
			stmt := sign(t, e.issuer, scitt.KindInventory, n, scitt.SignOptions{})
			start := time.Now()
			register(t, srv.URL, stmt)
			lat = append(lat, time.Since(start))
		}
		slices.Sort(lat)
		return lat[len(lat)/2]
	}
	measure(3) // warm up
	quiet := measure(15)

	junk := sign(t, e.stranger, scitt.KindInventory, 0, scitt.SignOptions{}) // unknown issuer: rejected
	var sent, limited, rejected, other atomic.Int64
	var badRetry atomic.Int64
	floodStart := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), flood)
	defer cancel()
	tick := time.NewTicker(10 * time.Millisecond) // 10 requests a tick: 1,000/s
	defer tick.Stop()
	jobs := make(chan struct{}, 256)
	var wg sync.WaitGroup
	const workers = 48
	for range workers {
		wg.Go(func() {
			for range jobs {
				req, _ := http.NewRequest("POST", srv.URL+"/entries", bytes.NewReader(junk))
				req.Header.Set("Content-Type", "application/cose")
				resp, err := flooder.Do(req)
				if err != nil {
					other.Add(1)
					continue
				}
				resp.Body.Close()
				switch resp.StatusCode {
				case http.StatusTooManyRequests:
					limited.Add(1)
					if resp.Header.Get("Retry-After") == "" {
						badRetry.Add(1)
					}
				case http.StatusBadRequest:
					rejected.Add(1)
				default:
					other.Add(1)
				}
			}
		})
	}
	floodDone := make(chan struct{})
	go func() {
		defer close(floodDone)
		defer close(jobs)
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				for range 10 {
					select {
					case jobs <- struct{}{}:
						sent.Add(1)
					default: // the workers are behind; the rate is a ceiling
					}
				}
			}
		}
	}()
	var loaded []time.Duration
	for ctx.Err() == nil {
		loaded = append(loaded, measure(1))
	}
	<-floodDone
	wg.Wait()
	elapsed := time.Since(floodStart).Seconds()
	slices.Sort(loaded)
	under := loaded[len(loaded)/2]
	secs := flood.Seconds()
	t.Logf("flood %v: sent %d (%.0f/s), 429 %d, 400 %d, other %d; receipt latency median quiet %v, under flood %v (%d samples); audit %d bytes",
		flood, sent.Load(), float64(sent.Load())/secs, limited.Load(), rejected.Load(), other.Load(), quiet, under, len(loaded), svc.AuditLog().Size())

	if other.Load() != 0 || badRetry.Load() != 0 {
		t.Errorf("%d unexpected answers, %d 429s without Retry-After", other.Load(), badRetry.Load())
	}
	// The rejection budget is 20/s with a burst of 41; rejections are
	// charged when they are decided, so those admitted together (at most
	// one per flood worker in flight) can overdraw it once.
	if max := int64(41 + 20*elapsed + workers); rejected.Load() > max {
		t.Errorf("%d rejections processed, the limit allows about %d", rejected.Load(), max)
	}
	if limited.Load() < sent.Load()/2 {
		t.Errorf("only %d of %d flood requests were answered 429", limited.Load(), sent.Load())
	}
	// A floor keeps scheduling noise on a tiny quiet figure from failing the run.
	if limit := 2 * max(quiet, 50*time.Millisecond); under > limit {
		t.Errorf("receipt latency under flood %v, more than 2x the quiet %v", under, quiet)
	}
	if size := svc.AuditLog().Size(); size > auditCap {
		t.Errorf("audit trail %d bytes, cap %d", size, auditCap)
	}
	page, err := svc.AuditLog().Query(scitt.AuditQuery{Decision: scitt.DecisionRateLimited})
	if err != nil || len(page.Records) == 0 || page.Records[0].Count == 0 || page.Records[0].Remote != "127.0.0.2" {
		t.Fatalf("rate_limited records: %+v %v", page, err)
	}
	if int64(len(page.Records)) > int64(secs)+2 {
		t.Errorf("%d rate_limited records in %v, want at most one a second", len(page.Records), flood)
	}
}
