package node

import (
	"container/list"
	"context"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// connLimiter bounds the HTTP listener's connections, overall and per
// source address. It accepts every connection the kernel hands it (a
// connection left in the backlog is one that add-checkpoint waits behind)
// and, at a cap, makes room by closing the least valuable connection:
//
//   - from the source address whose connections the caps have had to shed
//     most lately (a count that halves every penaltyHalfLife): a flood's
//     addresses pile up sheds, while a client that connects now and then
//     has none, so its connection goes only when no flood connection is
//     left to shed; a new connection from a worse address than every one
//     held is closed at once instead;
//   - within that address class, the oldest connection without a request in
//     its handler (new, or idle between keep-alive requests) that has had
//     shedGrace to send one; else whichever has waited longest of:
//     connections without a request, requests whose handler is still
//     reading the body, and event streams beyond their cap;
//   - passing over a connection whose request has arrived whole but not yet
//     been read (requestBytes unread in the kernel): on a busy machine the
//     server may not have run its goroutine yet, and that request is the
//     one the caps are there to protect.
//
// If every connection is serving a request (or is a stream within its cap),
// the new one is closed at once. Event streams are capped lower than
// connections (feed.Config.MaxSubscribers), which keeps the rest of the cap
// for requests.
type connLimiter struct {
	max, perAddr int
	maxStreams   int
	log          *slog.Logger
	// streamReq tells which requests become event streams.
	streamReq func(*http.Request) bool

	mu     sync.Mutex
	conns  list.List // of *trackedConn, oldest accepted first
	byAddr map[string]int
	phases [numPhases]int
	// penalty is the decaying count of sheds per source address.
	penalty map[string]*addrPenalty
	admits  int
	// warned is when the log last said the caps were shedding.
	warned time.Time

	shed *prometheus.CounterVec
}

// connPhase is where a connection is in its life; phases before
// phaseBody are the cheapest to shed.
type connPhase int

const (
	phaseNew       connPhase = iota // accepted, no whole request header yet
	phaseIdle                       // between keep-alive requests (or sending the next header)
	phaseBody                       // handler running, request body not read to its end
	phaseHandler                    // handler running, body read (or none)
	phaseStream                     // an event stream
	phaseFinishing                  // handler returned, response being flushed
	numPhases
)

var phaseNames = [numPhases]string{"new", "idle", "body", "handler", "stream", "finishing"}

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
		max:        cfg.MaxConns,
		maxStreams: cfg.MaxEventStreams,
		perAddr:    cfg.MaxConnsPerAddr,
		log:        log,
		streamReq:  streamReq,
		byAddr:     map[string]int{},
		penalty:    map[string]*addrPenalty{},
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
	since time.Time // when it entered phase
}

// requestBytes is the least unread data taken for a request that has
// arrived whole: more than a slowloris trickles between two reads, less
// than the shortest request line and Host header.
const requestBytes = 24

// maxSkips bounds the connections checked for unread requests per shed.
const maxSkips = 8

// shedGrace is how long a connection may take to send its request header
// before it is shed ahead of older slow bodies and streams.
const shedGrace = time.Second

// Close untracks the connection and closes it.
func (c *trackedConn) Close() error {
	c.l.untrack(c)
	return c.Conn.Close()
}

var connDesc = prometheus.NewDesc("vigil_http_connections", "Open HTTP connections by state: new (no whole request header yet), idle (between keep-alive requests), body (handler reading the request body), handler, stream (GET /v1/events), finishing.", []string{"state"}, nil)

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
	now := time.Now()
	l.mu.Lock()
	if l.admits++; l.admits%1024 == 0 {
		l.prunePenalties(now)
	}
	refused := ""
	if l.byAddr[addr] >= l.perAddr {
		if v, reason := l.victim(addr, -1, now); v != nil {
			victims = append(victims, v)
			l.shed.WithLabelValues(reason, "per_address").Inc()
		} else {
			refused = "per_address"
		}
	}
	if refused == "" && l.conns.Len() >= l.max {
		if v, reason := l.victim("", l.bucket(addr, now), now); v != nil {
			victims = append(victims, v)
			l.shed.WithLabelValues(reason, "total").Inc()
		} else {
			refused = "total"
		}
	}
	var tc *trackedConn
	if refused == "" {
		tc = &trackedConn{Conn: c, l: l, addr: addr, since: now}
		tc.elem = l.conns.PushBack(tc)
		l.byAddr[addr]++
		l.phases[phaseNew]++
	} else {
		l.shed.WithLabelValues(shedRefused, refused).Inc()
		l.penalize(addr, now)
	}
	for _, v := range victims {
		l.penalize(v.addr, now)
	}
	warn := (len(victims) > 0 || tc == nil) && now.Sub(l.warned) >= time.Minute
	if warn {
		l.warned = now
	}
	open := l.conns.Len()
	l.mu.Unlock()
	if warn {
		l.log.Warn("HTTP connection caps reached: closing the least valuable connections (vigil_http_connections_shed_total); logged at most once a minute",
			"open", open, "max_conns", l.max, "max_conns_per_addr", l.perAddr)
	}
	for _, v := range victims {
		abort(v.Conn)
	}
	if tc == nil {
		abort(c)
	}
	return tc
}

// victim picks and untracks the connection to shed, from addr only if addr
// is set; nil if there is none, or if every candidate's address is in a
// lower penalty bucket than newcomer (then the new connection goes; -1
// never prefers it). l.mu is held.
func (l *connLimiter) victim(addr string, newcomer int, now time.Time) (*trackedConn, string) {
	var skip []*trackedConn
	for {
		v, b := l.pick(addr, skip, now)
		if v == nil || b < newcomer {
			return nil, ""
		}
		switch v.phase {
		case phaseNew, phaseIdle:
			if len(skip) < maxSkips && pendingBytes(v.Conn) >= requestBytes {
				skip = append(skip, v)
				continue
			}
		}
		reason := shedHeader
		switch v.phase {
		case phaseBody:
			reason = shedBody
		case phaseStream:
			reason = shedStream
		}
		l.removeLocked(v)
		return v, reason
	}
}

// pick returns the connection to shed next, ignoring skip, and its
// address's penalty bucket: from the highest bucket, the oldest connection
// without a request that has had shedGrace to send one, else the one that
// has waited longest. l.mu is held.
func (l *connLimiter) pick(addr string, skip []*trackedConn, now time.Time) (*trackedConn, int) {
	cutoff := now.Add(-shedGrace)
	streamsOver := l.phases[phaseStream] > l.maxStreams
	var aged, oldest *trackedConn
	agedB, oldestB := -1, -1
	for e := l.conns.Front(); e != nil; e = e.Next() {
		c := e.Value.(*trackedConn)
		if addr != "" && c.addr != addr || slices.Contains(skip, c) {
			continue
		}
		isAged := false
		switch c.phase {
		case phaseNew, phaseIdle:
			isAged = !c.since.After(cutoff)
		case phaseBody:
		case phaseStream:
			if !streamsOver {
				continue
			}
		default:
			continue
		}
		b := l.bucket(c.addr, now)
		if isAged && (b > agedB || b == agedB && c.since.Before(aged.since)) {
			aged, agedB = c, b
		}
		if b > oldestB || b == oldestB && c.since.Before(oldest.since) {
			oldest, oldestB = c, b
		}
	}
	if aged != nil && agedB >= oldestB {
		return aged, agedB
	}
	return oldest, oldestB
}

// addrPenalty is a decaying count of an address's shed connections.
type addrPenalty struct {
	score float64
	at    time.Time
}

// Penalties halve every penaltyHalfLife; at most maxPenalties addresses are
// remembered (an address beyond them counts as clean).
const (
	penaltyHalfLife = 10 * time.Second
	maxPenalties    = 1 << 16
)

func (p *addrPenalty) decay(now time.Time) float64 {
	if d := now.Sub(p.at); d > 100*time.Millisecond {
		p.score *= math.Exp2(-float64(d) / float64(penaltyHalfLife))
		p.at = now
	}
	return p.score
}

// bucket is the penalty class of addr: 0 for under one recent shed, then
// one more per doubling. l.mu is held.
func (l *connLimiter) bucket(addr string, now time.Time) int {
	p := l.penalty[addr]
	if p == nil {
		return 0
	}
	return int(math.Log2(1 + p.decay(now)))
}

func (l *connLimiter) penalize(addr string, now time.Time) {
	p := l.penalty[addr]
	if p == nil {
		if len(l.penalty) >= maxPenalties {
			return
		}
		p = &addrPenalty{at: now}
		l.penalty[addr] = p
	}
	p.decay(now)
	p.score++
}

// prunePenalties forgets addresses whose penalty has decayed away.
func (l *connLimiter) prunePenalties(now time.Time) {
	for a, p := range l.penalty {
		if p.decay(now) < 0.5 {
			delete(l.penalty, a)
		}
	}
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
		c.phase, c.since = p, time.Now()
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
		// The server has read a request header and is about to call the
		// handler, which refines the phase.
		l.setPhase(tc, phaseHandler)
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
			r.Body = &bodyWatch{ReadCloser: r.Body, l: l, c: tc, left: r.ContentLength}
		default:
			l.setPhase(tc, phaseHandler)
		}
		defer l.setPhase(tc, phaseFinishing)
		next.ServeHTTP(w, r)
	})
}

// bodyWatch moves its connection out of phaseBody once the body has been
// received whole (its Content-Length read, or the end of a chunked body) or
// failed: a handler that has its request is not shed while it works on it.
type bodyWatch struct {
	io.ReadCloser
	l    *connLimiter
	c    *trackedConn
	left int64 // bytes of the Content-Length not read yet; negative: chunked
	done bool
}

func (b *bodyWatch) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if b.left > 0 {
		b.left -= int64(n)
	}
	if (err != nil || b.left == 0) && !b.done {
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
