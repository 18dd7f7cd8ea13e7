package testnet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
)

// nodeProfiler collects CPU profiles of the member processes, each as a
// series of one-second profiles (GET /debug/pprof/profile?seconds=1, the
// member's config having pprof on) until stop: a profile's length is fixed
// when it starts, and the repetitions' is not known in advance. `go tool
// pprof DIR/*.prof` merges them. It also saves each member's /metrics
// when it starts and stops (DIR/<member>-metrics-{start,end}.txt), whose
// difference is what the members counted meanwhile.
type nodeProfiler struct {
	nw     *Network
	dir    string
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	errs   []error
}

// profileNodes starts profiling every running member into dir.
func (nw *Network) profileNodes(ctx context.Context, dir string) *nodeProfiler {
	ctx, cancel := context.WithCancel(ctx)
	p := &nodeProfiler{nw: nw, dir: dir, cancel: cancel}
	p.saveMetrics(ctx, "start")
	for _, m := range nw.Members {
		if !m.Running() || m.PID() == 0 {
			continue
		}
		p.wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				// The piece under way is finished, not cut short: a
				// cancelled request loses the whole profile.
				if err := fetchProfile(context.WithoutCancel(ctx), m.URL, filepath.Join(dir, fmt.Sprintf("%s-%03d.prof", m.Name, i))); err != nil {
					p.mu.Lock()
					p.errs = append(p.errs, fmt.Errorf("%s: %w", m.Name, err))
					p.mu.Unlock()
					return
				}
			}
		})
	}
	return p
}

// stop ends the profiling once every member's piece under way is written.
func (p *nodeProfiler) stop() error {
	p.cancel()
	p.wg.Wait()
	p.saveMetrics(context.Background(), "end")
	p.mu.Lock()
	defer p.mu.Unlock()
	return errors.Join(p.errs...)
}

// saveMetrics writes every running member's /metrics to
// DIR/<member>-metrics-<when>.txt.
func (p *nodeProfiler) saveMetrics(ctx context.Context, when string) {
	for _, m := range p.nw.Members {
		if !m.Running() || m.URL == "" {
			continue
		}
		if err := fetchTo(ctx, m.URL+"/metrics", filepath.Join(p.dir, fmt.Sprintf("%s-metrics-%s.txt", m.Name, when))); err != nil {
			p.mu.Lock()
			p.errs = append(p.errs, fmt.Errorf("%s: metrics: %w", m.Name, err))
			p.mu.Unlock()
		}
	}
}

func fetchProfile(ctx context.Context, url, path string) error {
	return fetchTo(ctx, url+"/debug/pprof/profile?seconds=1", path)
}

// fetchTo saves the body of a GET of url to path.
func fetchTo(ctx context.Context, url, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: status %d", url, resp.StatusCode)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
