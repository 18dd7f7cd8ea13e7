package witness

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/mod/sumdb/note"

	"github.com/vigilnet/vigil/roster"
	"github.com/vigilnet/vigil/tlog"
)

// Cosigner is what the follower feeds in pull mode; *Witness is one.
type Cosigner interface {
	AddCheckpoint(ctx context.Context, req *AddCheckpointRequest) ([]byte, error)
}

// FollowerConfig configures a Follower. Zero durations mean the documented
// defaults.
type FollowerConfig struct {
	// Logs lists the logs to follow; only those with a URL are polled. It
	// is called again every Interval (roster reloads).
	Logs func() []*roster.Log
	// URLFor returns the tlog-tiles prefix to read a log from; nil means the
	// roster URL. (Tests use it to show different nodes different views.)
	URLFor func(*roster.Log) string
	// Cosigner, if set, is asked to cosign every new checkpoint (witness
	// nodes); observers leave it nil.
	Cosigner Cosigner
	// OnCheckpoint, if set, receives every new log-signed checkpoint the
	// follower reads (before cosigning), e.g. to gossip it. It must not block.
	OnCheckpoint func(origin string, signedNote []byte)
	// Interval between polls of one log (default 10s).
	Interval time.Duration
	// MaxBackoff caps the delay after consecutive failures (default 5m);
	// the delay doubles from Interval on each failure.
	MaxBackoff time.Duration
	// Timeout bounds one poll, including proof building (default 30s).
	Timeout    time.Duration
	HTTPClient *http.Client
	Logger     *slog.Logger
}

// Follower polls logs' checkpoints (pull mode), builds consistency proofs
// from their tiles and feeds the witness core, so a node witnesses logs that
// never push to it.
type Follower struct {
	cfg     FollowerConfig
	log     *slog.Logger
	metrics *followerMetrics

	mu    sync.Mutex
	state map[string]*followState
}

type followState struct {
	mu       sync.Mutex
	client   *TileClient
	lastSize uint64
	lastRoot [32]byte
	seen     bool
	// cosigned is the size the cosigner last accepted (its stored size).
	cosigned uint64
	failures int
}

// NewFollower returns a Follower; call Run to start polling.
func NewFollower(cfg FollowerConfig) (*Follower, error) {
	if cfg.Logs == nil {
		return nil, errors.New("follower: Logs is required")
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 10 * time.Second
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 5 * time.Minute
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: cfg.Timeout}
	}
	if cfg.URLFor == nil {
		cfg.URLFor = func(l *roster.Log) string { return l.URL }
	}
	lg := cfg.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	return &Follower{cfg: cfg, log: lg, metrics: newFollowerMetrics(), state: map[string]*followState{}}, nil
}

// Metrics returns the follower's Prometheus collectors.
func (f *Follower) Metrics() []prometheus.Collector { return f.metrics.collectors() }

// Run polls every log that has a URL until ctx ends, one goroutine per log.
// It re-reads Logs every Interval, so logs added to or removed from the
// roster (or whose URL changes) are picked up without a restart.
func (f *Follower) Run(ctx context.Context) error {
	type running struct {
		url    string
		cancel context.CancelFunc
	}
	var wg sync.WaitGroup
	active := map[string]running{}
	defer func() {
		for _, r := range active {
			r.cancel()
		}
		wg.Wait()
	}()
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		want := map[string]*roster.Log{}
		for _, l := range f.cfg.Logs() {
			if f.cfg.URLFor(l) != "" {
				want[l.Origin] = l
			}
		}
		for origin, r := range active {
			if l, ok := want[origin]; !ok || f.cfg.URLFor(l) != r.url {
				r.cancel()
				delete(active, origin)
			}
		}
		for origin, l := range want {
			if _, ok := active[origin]; ok {
				continue
			}
			lctx, cancel := context.WithCancel(ctx)
			active[origin] = running{url: f.cfg.URLFor(l), cancel: cancel}
			wg.Add(1)
			go func() {
				defer wg.Done()
				f.follow(lctx, l)
			}()
		}
		t.Reset(f.cfg.Interval)
	}
}

func (f *Follower) follow(ctx context.Context, l *roster.Log) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := f.Poll(ctx, l)
		delay := f.cfg.Interval
		if err != nil && ctx.Err() == nil {
			st := f.stateOf(l)
			st.mu.Lock()
			st.failures++
			n := st.failures
			st.mu.Unlock()
			for i := 1; i < n && delay < f.cfg.MaxBackoff; i++ {
				delay *= 2
			}
			delay = min(delay, f.cfg.MaxBackoff)
			f.log.Warn("polling log", "origin", l.Origin, "err", err, "retry_in", delay)
		}
		t.Reset(delay)
	}
}

func (f *Follower) stateOf(l *roster.Log) *followState {
	f.mu.Lock()
	defer f.mu.Unlock()
	st, ok := f.state[l.Origin]
	if !ok {
		st = &followState{}
		f.state[l.Origin] = st
	}
	return st
}

// Poll reads l's checkpoint once and, if it is new, hands it to
// OnCheckpoint and the Cosigner. It is safe to call concurrently with Run.
func (f *Follower) Poll(ctx context.Context, l *roster.Log) (err error) {
	ctx, cancel := context.WithTimeout(ctx, f.cfg.Timeout)
	defer cancel()
	defer func() { f.metrics.polls.WithLabelValues(result(err)).Inc() }()
	st := f.stateOf(l)
	st.mu.Lock()
	defer st.mu.Unlock()
	u := f.cfg.URLFor(l)
	if st.client == nil || st.client.URL() != u && st.client.URL() != u+"/" {
		if st.client, err = NewTileClient(u, f.cfg.HTTPClient); err != nil {
			return err
		}
	}
	raw, err := st.client.Checkpoint(ctx)
	if err != nil {
		return err
	}
	cp, _, err := tlog.VerifyCheckpoint(raw, l.Origin, []note.Verifier{l.Verifier})
	if err != nil {
		return fmt.Errorf("checkpoint of %s: %w", l.Origin, err)
	}
	st.failures = 0
	if st.seen && cp.Size == st.lastSize && cp.Root == st.lastRoot {
		return nil
	}
	st.seen, st.lastSize, st.lastRoot = true, cp.Size, cp.Root
	f.metrics.checkpoints.Inc()
	if f.cfg.OnCheckpoint != nil {
		f.cfg.OnCheckpoint(l.Origin, raw)
	}
	if f.cfg.Cosigner == nil {
		return nil
	}
	return f.cosign(ctx, st, cp, raw)
}

// cosign submits cp to the cosigner with a proof from the size it last
// cosigned; on a 409-style conflict it learns that size and retries once.
func (f *Follower) cosign(ctx context.Context, st *followState, cp tlog.Checkpoint, raw []byte) error {
	for attempt := 0; attempt < 2; attempt++ {
		if st.cosigned > cp.Size {
			return nil // the witness is ahead of what the log serves us
		}
		proof, err := st.client.ConsistencyProof(ctx, st.cosigned, cp.Size)
		if err != nil {
			return err
		}
		_, err = f.cfg.Cosigner.AddCheckpoint(ctx, &AddCheckpointRequest{OldSize: st.cosigned, Proof: proof, Checkpoint: raw})
		var ce *ConflictError
		switch {
		case err == nil:
			st.cosigned = cp.Size
			return nil
		case errors.As(err, &ce):
			st.cosigned = ce.Size
			continue
		default:
			return fmt.Errorf("cosigning %s at %d: %w", cp.Origin, cp.Size, err)
		}
	}
	return fmt.Errorf("cosigning %s at %d: witness state keeps moving", cp.Origin, cp.Size)
}

func result(err error) string {
	if err != nil {
		return "error"
	}
	return "ok"
}

type followerMetrics struct {
	polls       *prometheus.CounterVec
	checkpoints prometheus.Counter
}

func newFollowerMetrics() *followerMetrics {
	return &followerMetrics{
		polls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_follower_polls_total",
			Help: "Checkpoint polls of followed logs, by result.",
		}, []string{"result"}),
		checkpoints: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vigil_follower_new_checkpoints_total",
			Help: "New log-signed checkpoints read by the follower.",
		}),
	}
}

func (m *followerMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.polls, m.checkpoints}
}
