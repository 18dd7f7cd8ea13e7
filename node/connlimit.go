package node

import (
	"container/list"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// connLimiter bounds the HTTP listener's connections, overall and per
// source address. It accepts every connection the kernel hands it (a
// connection left in the backlog is one that add-checkpoint waits behind)
// and, at a cap, sheds the least valuable connection to make room:
//
//  1. the oldest one without a request in its handler: still sending its
//     header (slowloris), idle between keep-alive requests, or new;
//  2. the oldest one whose handler is still reading a request body;
//  3. the oldest event stream;
//
// and if every connection is serving a request, it closes the new one at
// once. A fresh connection is never the oldest, so a client that sends its
// request promptly (add-checkpoint, /healthz) is answered while a flood of
// slow or idle ones churns through the cap. Event streams are capped lower
// than connections (feed.Config.MaxSubscribers), which keeps the rest of
// the cap for requests.
type connLimiter struct {
	max, perAddr int
	log          *slog.Logger
	// streamReq tells which requests become event streams.
	streamReq func(*http.Request) bool

	mu     sync.Mutex
	conns  list.List // of *trackedConn, oldest accepted first
	byAddr map[string]int
	phases [numPhases]int

	shed *prometheus.CounterVec
}

// connPhase is where a connection is in its life; phases before
// phaseBody are the cheapest to shed.
type connPhase int

const (
	phaseNew       connPhase = iota // accepted, no byte of a request yet
	phaseHeader                     // reading a request header
	phaseIdle                       // between keep-alive requests
	phaseBody                       // handler running, request body not read to its end
	phaseHandler                    // handler running, body read (or none)
	phaseStream                     // an event stream
	phaseFinishing                  // handler returned, response being flushed
	numPhases
)

var phaseNames = [numPhases]string{"new", "header", "idle", "body", "handler", "stream", "finishing"}

// Shed reasons, the values of the reason label of
// vigil_http_connections_shed_total.
const (
	shedHeader  = "no_request" // oldest connection without a request in its handler
	shedBody    = "slow_body"  // oldest request still reading its body
	shedStream  = "stream"     // oldest event stream
	shedRefused = "refused"    // the new connection itself: everything else is serving
)

func newConnLimiter(cfg HTTPConfig, log *slog.Logger, streamReq func(*http.Request) bool) *connLimiter {
	return &connLimiter{
		max:       cfg.MaxConns,
		perAddr:   cfg.MaxConnsPerAddr,
		log:       log,
		streamReq: streamReq,
		byAddr:    map[string]int{},
		shed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_http_connections_shed_total",
			Help: "HTTP connections closed by the connection caps, by reason (no_request, slow_body, stream, refused) and the cap reached (total, per_address).",
		}, []string{"reason", "limit"}),
	}
}

// trackedConn is a connection the limiter counts.
type trackedConn struct {
	net.Conn
	l     *connLimiter
	addr  string
	elem  *list.Element // nil once untracked
	phase connPhase
}

// Close untracks the connection and closes it.
func (c *trackedConn) Close() error {
	c.l.untrack(c)
	return c.Conn.Close()
}

var connDesc = prometheus.NewDesc("vigil_http_connections", "Open HTTP connections by state (new, header, idle, body, handler, stream, finishing).", []string{"state"}, nil)

// Describe implements prometheus.Collector.
func (l *connLimiter) Describe(ch chan<- *prometheus.Desc) { ch <- connDesc }

// Collect implements prometheus.Collector.
func (l *connLimiter) Collect(ch chan<- prometheus.Metric) {
	l.mu.Lock()
	phases := l.phases
	l.mu.Unlock()
	for p, n := range phases {
		ch <- prometheus.MustNewConstMetric(connDesc, prometheus.GaugeValue, float64(n), phaseNames[p])
	}
}

// Metrics returns the limiter's collectors.
func (l *connLimiter) Metrics() []prometheus.Collector {
	return []prometheus.Collector{l, l.shed}
}

// listener wraps ln so that every accepted connection is counted.
func (l *connLimiter) listener(ln net.Listener) net.Listener { return &limitListener{ln, l} }

type limitListener struct {
	net.Listener
	l *connLimiter
}

// Accept returns the next connection admitted under the caps.
func (ll *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := ll.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if tc := ll.l.admit(c); tc != nil {
			return tc, nil
		}
	}
}

// admit tracks c, shedding what the caps require; nil means c itself was
// refused (and closed).
func (l *connLimiter) admit(c net.Conn) *trackedConn {
	addr := hostOf(c.RemoteAddr())
	var victims []*trackedConn
	l.mu.Lock()
	refused := ""
	if l.byAddr[addr] >= l.perAddr {
		if v, reason := l.victim(addr); v != nil {
			victims = append(victims, v)
			l.shed.WithLabelValues(reason, "per_address").Inc()
		} else {
			refused = "per_address"
		}
	}
	if refused == "" && l.conns.Len() >= l.max {
		if v, reason := l.victim(""); v != nil {
			victims = append(victims, v)
			l.shed.WithLabelValues(reason, "total").Inc()
		} else {
			refused = "total"
		}
	}
	var tc *trackedConn
	if refused == "" {
		tc = &trackedConn{Conn: c, l: l, addr: addr}
		tc.elem = l.conns.PushBack(tc)
		l.byAddr[addr]++
		l.phases[phaseNew]++
	} else {
		l.shed.WithLabelValues(shedRefused, refused).Inc()
	}
	l.mu.Unlock()
	for _, v := range victims {
		abort(v.Conn)
	}
	if tc == nil {
		abort(c)
	}
	return tc
}

// victim picks and untracks the connection to shed, from addr only if addr
// is set; l.mu is held.
func (l *connLimiter) victim(addr string) (*trackedConn, string) {
	var body, stream *trackedConn
	for e := l.conns.Front(); e != nil; e = e.Next() {
		c := e.Value.(*trackedConn)
		if addr != "" && c.addr != addr {
			continue
		}
		switch c.phase {
		case phaseNew, phaseHeader, phaseIdle:
			l.removeLocked(c)
			return c, shedHeader
		case phaseBody:
			if body == nil {
				body = c
			}
		case phaseStream:
			if stream == nil {
				stream = c
			}
		}
	}
	if body != nil {
		l.removeLocked(body)
		return body, shedBody
	}
	if stream != nil {
		l.removeLocked(stream)
		return stream, shedStream
	}
	return nil, ""
}

// abort closes c at once, with a reset rather than a FIN, so that neither
// side keeps the socket in TIME_WAIT for a connection that served nothing.
func abort(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}

func (l *connLimiter) untrack(c *trackedConn) {
	l.mu.Lock()
	l.removeLocked(c)
	l.mu.Unlock()
}

func (l *connLimiter) removeLocked(c *trackedConn) {
	if c.elem == nil {
		return
	}
	l.conns.Remove(c.elem)
	c.elem = nil
	l.phases[c.phase]--
	if l.byAddr[c.addr]--; l.byAddr[c.addr] <= 0 {
		delete(l.byAddr, c.addr)
	}
}

func (l *connLimiter) setPhase(c *trackedConn, p connPhase) {
	l.mu.Lock()
	if c.elem != nil {
		l.phases[c.phase]--
		c.phase = p
		l.phases[p]++
	}
	l.mu.Unlock()
}

// connState is the server's ConnState hook.
func (l *connLimiter) connState(c net.Conn, s http.ConnState) {
	tc, ok := c.(*trackedConn)
	if !ok {
		return
	}
	switch s {
	case http.StateActive:
		// The first byte of a request arrived; the header may still be
		// arriving one byte at a time.
		l.setPhase(tc, phaseHeader)
	case http.StateIdle:
		l.setPhase(tc, phaseIdle)
	case http.StateClosed, http.StateHijacked:
		l.untrack(tc)
	}
}

type connKey struct{}

// connContext is the server's ConnContext hook: it lets the handler find
// the connection its request came on.
func (l *connLimiter) connContext(ctx context.Context, c net.Conn) context.Context {
	if tc, ok := c.(*trackedConn); ok {
		return context.WithValue(ctx, connKey{}, tc)
	}
	return ctx
}

// handler marks each connection with what its request is doing, so that
// shedding can tell a slow body from a prompt one and a stream from a
// request.
func (l *connLimiter) handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tc, _ := r.Context().Value(connKey{}).(*trackedConn)
		if tc == nil {
			next.ServeHTTP(w, r)
			return
		}
		switch {
		case l.streamReq(r):
			l.setPhase(tc, phaseStream)
		case r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0:
			l.setPhase(tc, phaseBody)
			r.Body = &bodyWatch{ReadCloser: r.Body, l: l, c: tc}
		default:
			l.setPhase(tc, phaseHandler)
		}
		defer l.setPhase(tc, phaseFinishing)
		next.ServeHTTP(w, r)
	})
}

// bodyWatch moves its connection out of phaseBody once the body has been
// read to its end (or failed).
type bodyWatch struct {
	io.ReadCloser
	l    *connLimiter
	c    *trackedConn
	done bool
}

func (b *bodyWatch) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && !b.done {
		b.done = true
		b.l.setPhase(b.c, phaseHandler)
	}
	return n, err
}

// isEventStream tells the requests that become GET /v1/events streams.
func isEventStream(r *http.Request) bool {
	return r.Method == http.MethodGet && r.URL.Path == "/v1/events"
}

// hostOf returns the IP of a remote address (the whole string if it has no
// port).
func hostOf(a net.Addr) string {
	if a == nil {
		return ""
	}
	s := a.String()
	if h, _, err := net.SplitHostPort(s); err == nil {
		return h
	}
	return s
}
