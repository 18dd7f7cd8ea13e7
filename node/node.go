package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"

	"github.com/vigilnet/vigil/gossip"
	"github.com/vigilnet/vigil/notify"
	"github.com/vigilnet/vigil/roster"
	"github.com/vigilnet/vigil/store"
	"github.com/vigilnet/vigil/witness"
)

// Deps are what a node is given rather than creating itself, so the testnet
// can run many nodes in one process.
type Deps struct {
	// Listener serves the node's HTTP API; nil means listen on cfg.Listen.
	Listener net.Listener
	// Store is the node's open store; nil means open cfg.DataDir. A store
	// passed in is not closed by the node.
	Store *store.DB
	// Keys are the node's keys; nil means load them from cfg.KeysDir.
	Keys   *Keys
	Logger *slog.Logger
	// Now is the feed's clock (freshness, event times); nil means time.Now.
	Now func() time.Time
}

// Node is a running Vigil node.
type Node struct {
	cfg     Config
	log     *slog.Logger
	keys    *Keys
	store   *store.DB
	ownsDB  bool
	ln      net.Listener
	roster  atomic.Pointer[roster.Roster]
	witness *witness.Witness
	mux     *http.ServeMux
	reg     *prometheus.Registry
	logsG   prometheus.GaugeFunc
	// sigs remembers signatures that verified, for gossip and the feed.
	sigs *gossip.SignatureCache
	// conns bounds the HTTP listener's connections.
	conns *connLimiter
	// notifier sends alerts.webhooks notifications (nil without webhooks).
	notifier *notify.Notifier
	// evReg registers evidence with a transparency service (nil: off).
	evReg *evidenceRegistrar
	nodeFeed
	nodeGossip
	nodeLists
	nodeListeners
}

// New builds a node from cfg and deps without serving yet.
func New(cfg Config, deps Deps) (_ *Node, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	n := &Node{cfg: cfg, log: deps.Logger, keys: deps.Keys, store: deps.Store, ln: deps.Listener, mux: http.NewServeMux(), reg: prometheus.NewRegistry(), sigs: gossip.NewSignatureCache()}
	n.feedNow = deps.Now
	n.nodeLists = newNodeLists()
	if n.log == nil {
		n.log = slog.New(slog.DiscardHandler)
	}
	defer func() {
		if err != nil {
			n.closeResources()
		}
	}()
	if err := n.ReloadRoster(); err != nil {
		return nil, err
	}
	if err := checkWatchesLogs(cfg, n.roster.Load(), n.log); err != nil {
		return nil, err
	}
	if n.keys == nil {
		if n.keys, err = LoadKeysWith(cfg.KeysDir, KeyOptions{Observer: cfg.Observer, AllowReadable: cfg.AllowReadableKeys, Logger: n.log}); err != nil {
			return nil, err
		}
	}
	if n.store == nil {
		if n.store, err = store.Open(cfg.DataDir, cfg.storeOptions(n.log)); err != nil {
			return nil, err
		}
		n.ownsDB = true
	}
	if n.ln == nil {
		if n.ln, err = net.Listen("tcp", cfg.Listen); err != nil {
			return nil, fmt.Errorf("listening on %s: %w", cfg.Listen, err)
		}
		// A listener the node opened is closed if the rest of New fails.
		ln := n.ln
		defer func() {
			if err != nil {
				ln.Close()
			}
		}()
	}
	if cfg.Evidence.RegisterTo != "" {
		if n.evReg, err = newEvidenceRegistrar(cfg.Evidence, cfg.DataDir, n.store, n.log.With("component", "evidence-registrar")); err != nil {
			return nil, err
		}
	}
	n.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	n.reg.MustRegister(n.store.Metrics()...)
	n.logsG = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "vigil_roster_logs",
		Help: "Logs in the roster this node follows.",
	}, func() float64 { return float64(len(n.roster.Load().Logs())) })
	n.reg.MustRegister(n.logsG)
	n.reg.MustRegister(n.listMetrics()...)
	n.conns = newConnLimiter(cfg.HTTP, n.log, isEventStream)
	n.reg.MustRegister(n.conns.Metrics()...)

	if !cfg.Observer && n.keys.Cosigner != nil {
		signers, err := n.keys.Signers(cfg.Witness.CosignatureTypes)
		if err != nil {
			return nil, err
		}
		own, err := n.newOwnHistory()
		if err != nil {
			return nil, err
		}
		n.witness, err = witness.New(witness.Config{
			Signers:     noteSigners(signers),
			Logs:        rosterView{&n.roster},
			Store:       n.store,
			History:     own,
			Limits:      witness.RateLimits{PerLog: cfg.Witness.RatePerLog, Burst: cfg.Witness.Burst},
			Logger:      n.log.With("component", "witness"),
			AfterCosign: n.afterCosignGossip,
			AfterRefuse: n.gossipRefused,
		})
		if err != nil {
			return nil, err
		}
		n.reg.MustRegister(n.witness.Metrics()...)
		n.mountWitness()
	}
	if err := n.mountFeed(); err != nil {
		return nil, err
	}
	if err := n.startNotify(); err != nil {
		return nil, err
	}
	if err := n.startGossip(); err != nil {
		return nil, err
	}
	n.mux.HandleFunc("GET /healthz", n.serveHealth)
	if cfg.Pprof {
		n.mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		n.mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
		n.mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		n.mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		n.mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	n.mux.Handle("GET /v1/info", n.feed.Protect(http.HandlerFunc(n.serveInfo)))
	if err := n.setupListeners(); err != nil {
		return nil, err
	}
	return n, nil
}

// rosterView lets the witness follow roster reloads.
type rosterView struct {
	p *atomic.Pointer[roster.Roster]
}

func (v rosterView) Log(origin string) (*roster.Log, bool) { return v.p.Load().Log(origin) }

// ReloadRoster re-reads the roster file and re-fetches the log lists; on
// error the old roster stays. Logs adopted from a list stay configured, as
// they are, whatever the list says now, and a list URL that cannot be
// fetched is logged and retried (monitor_loglists.go). State is untouched:
// the store keeps every log's witness state.
func (n *Node) ReloadRoster() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := n.reloadRoster(ctx, true)
	return err
}

// Roster returns the current roster.
func (n *Node) Roster() *roster.Roster { return n.roster.Load() }

// Addr returns the HTTP listen address.
func (n *Node) Addr() net.Addr { return n.ln.Addr() }

// URL returns the node's base URL (https:// when the listener serves TLS).
func (n *Node) URL() string { return n.scheme() + "://" + n.ln.Addr().String() }

// Witness returns the co-signing core, or nil for an observer.
func (n *Node) Witness() *witness.Witness { return n.witness }

// Store returns the node's store.
func (n *Node) Store() *store.DB { return n.store }

// Handler returns the node's HTTP handler.
func (n *Node) Handler() http.Handler { return n.mux }

// serveHealth answers "ok", or 503 with what degrades the node: a store
// refusing writes (disk pressure, a disk fault) or logs whose witness state
// was rolled back. Reads and gossip go on while degraded.
func (n *Node) serveHealth(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	reason, derr := n.store.Degraded()
	rolled := n.store.RolledBack()
	if derr == nil && len(rolled) == 0 {
		fmt.Fprintln(w, "ok")
		return
	}
	w.WriteHeader(http.StatusServiceUnavailable)
	fmt.Fprintln(w, "degraded")
	if derr != nil {
		fmt.Fprintf(w, "reason: %s\ndetail: %s\n", reason, derr)
	}
	if len(rolled) > 0 {
		fmt.Fprintf(w, "reason: rolled_back\nrolled_back_logs: %d\nfix: %s\n", len(rolled), store.RecoverHint)
		for i, rb := range rolled {
			if i == 20 {
				fmt.Fprintf(w, "log: ... %d more\n", len(rolled)-i)
				break
			}
			fmt.Fprintf(w, "log: %s %q %s\n", rb.LogID, rb.Origin, rb.Reason)
		}
	}
}

// Run serves until ctx ends, then shuts down gracefully and closes the store
// if the node opened it.
func (n *Node) Run(ctx context.Context) error {
	srv := &http.Server{
		Handler: n.conns.handler(n.mux),
		// A header must arrive within 5 s and a whole request within
		// 30 s (event streams lift the read deadline once admitted);
		// connLimiter bounds how many may be doing so at once.
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		ConnState:         n.conns.connState,
		ConnContext:       n.conns.connContext,
		ErrorLog:          slog.NewLogLogger(n.log.Handler(), slog.LevelWarn),
	}
	n.configureTLS(srv)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		n.log.Info("serving", "addr", n.ln.Addr().String(), "tls", n.tls != nil, "witness", n.witness != nil)
		if err := n.serve(srv); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("serving HTTP: %w", err)
		}
		return nil
	})
	n.runMetricsListener(gctx, g)
	g.Go(func() error { return n.runLogLists(gctx) })
	g.Go(func() error { return n.runFeed(gctx) })
	g.Go(func() error { return n.runNotify(gctx) })
	g.Go(func() error { return n.runGossip(gctx) })
	if n.evReg != nil {
		g.Go(func() error { return n.evReg.run(gctx) })
	}
	g.Go(func() error {
		<-gctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return srv.Shutdown(sctx)
	})
	err := g.Wait()
	n.closeResources()
	n.log.Info("stopped")
	return err
}

func (n *Node) closeResources() {
	n.closeGossip()
	if n.ownsDB && n.store != nil {
		if err := n.store.Close(); err != nil {
			n.log.Error("closing store", "err", err)
		}
		n.store = nil
	}
}
