package node

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"
)

// nodeListeners is the node's TLS and metrics-listener state, embedded in
// Node.
type nodeListeners struct {
	tls       *CertFiles
	metricsLn net.Listener
}

// setupListeners loads the TLS certificate, opens the metrics listener if
// one is configured and mounts GET /metrics: there, or on the main listener
// behind the feed tokens.
func (n *Node) setupListeners() error {
	if n.cfg.HTTP.TLSCert != "" {
		c, err := LoadCertFiles(n.cfg.HTTP.TLSCert, n.cfg.HTTP.TLSKey, n.log)
		if err != nil {
			return err
		}
		n.tls = c
	}
	metrics := promhttp.HandlerFor(n.reg, promhttp.HandlerOpts{Registry: n.reg})
	if n.cfg.HTTP.MetricsListen == "" {
		n.mux.Handle("GET /metrics", n.feed.Protect(metrics))
		return nil
	}
	ln, err := net.Listen("tcp", n.cfg.HTTP.MetricsListen)
	if err != nil {
		return fmt.Errorf("listening on http.metrics_listen %s: %w", n.cfg.HTTP.MetricsListen, err)
	}
	n.metricsLn = ln
	return nil
}

// MetricsAddr returns the address of the separate metrics listener, or nil
// when /metrics is served on the main listener.
func (n *Node) MetricsAddr() net.Addr {
	if n.metricsLn == nil {
		return nil
	}
	return n.metricsLn.Addr()
}

func (n *Node) scheme() string {
	if n.tls != nil {
		return "https"
	}
	return "http"
}

// configureTLS makes srv serve TLS with the node's certificate, HTTP/1.1
// only (the connection caps count connections, which HTTP/2 would
// multiplex), and lets the connection limiter see through the TLS layer.
func (n *Node) configureTLS(srv *http.Server) {
	if n.tls == nil {
		return
	}
	srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: n.tls.GetCertificate}
	p := new(http.Protocols)
	p.SetHTTP1(true)
	srv.Protocols = p
	state, connCtx := srv.ConnState, srv.ConnContext
	srv.ConnState = func(c net.Conn, s http.ConnState) { state(underTLS(c), s) }
	srv.ConnContext = func(ctx context.Context, c net.Conn) context.Context { return connCtx(ctx, underTLS(c)) }
}

func underTLS(c net.Conn) net.Conn {
	if tc, ok := c.(*tls.Conn); ok {
		return tc.NetConn()
	}
	return c
}

// serve runs srv on the node's listener, with TLS if configured.
func (n *Node) serve(srv *http.Server) error {
	ln := n.conns.listener(n.ln)
	if n.tls != nil {
		return srv.ServeTLS(ln, "", "")
	}
	return srv.Serve(ln)
}

// runMetricsListener serves GET /metrics on the metrics listener, if any,
// until ctx ends.
func (n *Node) runMetricsListener(ctx context.Context, g *errgroup.Group) {
	if n.metricsLn == nil {
		return
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(n.reg, promhttp.HandlerOpts{Registry: n.reg}))
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(n.log.Handler(), slog.LevelWarn),
	}
	g.Go(func() error {
		if err := srv.Serve(n.metricsLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("serving metrics: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return srv.Shutdown(sctx)
	})
}

// CertFiles serves a TLS certificate from PEM files and re-reads them when
// their modification time changes (checked at most once a minute), so a
// renewed certificate is picked up without a restart. A renewal that does
// not load keeps the previous certificate and is logged.
type CertFiles struct {
	certPath, keyPath string
	log               *slog.Logger

	mu      sync.Mutex
	cert    *tls.Certificate
	mtime   time.Time
	checked time.Time
}

// LoadCertFiles loads the certificate and key, failing if they do not load.
func LoadCertFiles(certPath, keyPath string, log *slog.Logger) (*CertFiles, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &CertFiles{certPath: certPath, keyPath: keyPath, log: log}
	mt, err := c.modTime()
	if err != nil {
		return nil, err
	}
	cert, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err != nil {
		return nil, fmt.Errorf("loading TLS certificate %s and key %s: %w", certPath, keyPath, err)
	}
	c.cert, c.mtime, c.checked = &cert, mt, time.Now()
	return c, nil
}

func (c *CertFiles) modTime() (time.Time, error) {
	var newest time.Time
	for _, p := range []string{c.certPath, c.keyPath} {
		st, err := os.Stat(p)
		if err != nil {
			return time.Time{}, fmt.Errorf("reading TLS files: %w", err)
		}
		if st.ModTime().After(newest) {
			newest = st.ModTime()
		}
	}
	return newest, nil
}

// GetCertificate is tls.Config's GetCertificate.
func (c *CertFiles) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if now := time.Now(); now.Sub(c.checked) >= time.Minute {
		c.checked = now
		if mt, err := c.modTime(); err == nil && !mt.Equal(c.mtime) {
			if cert, err := tls.LoadX509KeyPair(c.certPath, c.keyPath); err == nil {
				c.cert, c.mtime = &cert, mt
				c.log.Info("TLS certificate reloaded", "cert", c.certPath)
			} else {
				c.log.Warn("TLS certificate changed but does not load; serving the previous one", "cert", c.certPath, "err", err)
			}
		}
	}
	return c.cert, nil
}
