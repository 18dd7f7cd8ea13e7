package node

import (
	"bufio"
	"errors"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"syscall"
	"testing"
	"time"
)

// limitedServer serves h behind a connLimiter on 127.0.0.1:0.
type limitedServer struct {
	t    *testing.T
	l    *connLimiter
	addr string
}

func newLimitedServer(t *testing.T, cfg HTTPConfig, h http.Handler) *limitedServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := newConnLimiter(cfg, slog.New(slog.DiscardHandler), isEventStream)
	srv := &http.Server{Handler: l.handler(h), ConnState: l.connState, ConnContext: l.connContext, ReadHeaderTimeout: time.Minute}
	go srv.Serve(l.listener(ln))
	t.Cleanup(func() { srv.Close() })
	return &limitedServer{t: t, l: l, addr: ln.Addr().String()}
}

// dial connects from src and waits until the limiter has admitted the
// connection, or refused it: then the connection it returns is closed, or
// nil if the reset came before the dial returned.
func (s *limitedServer) dial(src string) net.Conn {
	s.t.Helper()
	s.l.mu.Lock()
	before := s.l.admits
	s.l.mu.Unlock()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	c, err := d.Dial("tcp", s.addr)
	switch {
	case errors.Is(err, syscall.ECONNRESET):
		c = nil
	case err != nil:
		s.t.Fatal(err)
	default:
		s.t.Cleanup(func() { c.Close() })
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		s.l.mu.Lock()
		n := s.l.admits
		s.l.mu.Unlock()
		if n > before {
			return c
		}
		if time.Now().After(deadline) {
			s.t.Fatal("connection not accepted")
		}
		time.Sleep(time.Millisecond) // polling the limiter's counter, not standing in for an event
	}
}

// get sends GET path on c and returns the status.
func get(t *testing.T, c net.Conn, path string) int {
	t.Helper()
	if _, err := io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// closedByServer reports whether the server has closed c: a read returns
// at once with an error other than a timeout.
func closedByServer(c net.Conn) bool {
	if c == nil {
		return true
	}
	c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	_, err := c.Read(make([]byte, 1))
	var ne net.Error
	return err != nil && !(errors.As(err, &ne) && ne.Timeout())
}

func TestConnLimiterShedding(t *testing.T) {
	release := make(chan struct{})
	h := http.NewServeMux()
	h.HandleFunc("GET /ok", func(w http.ResponseWriter, r *http.Request) {})
	h.HandleFunc("GET /block", func(w http.ResponseWriter, r *http.Request) { <-release })
	cfg := HTTPConfig{MaxConns: 3, MaxConnsPerAddr: 2, MaxEventStreams: 1, MaxEventStreamsPerAddr: 1, EventStreamLifetime: time.Minute}

	t.Run("the oldest connection without a request goes", func(t *testing.T) {
		s := newLimitedServer(t, cfg, h)
		c1, c2, c3 := s.dial("127.0.0.2"), s.dial("127.0.0.3"), s.dial("127.0.0.4")
		c4 := s.dial("127.0.0.5")
		if code := get(t, c4, "/ok"); code != 200 {
			t.Fatalf("new connection: %d", code)
		}
		if !closedByServer(c1) || closedByServer(c2) || closedByServer(c3) {
			t.Fatal("want the oldest idle connection shed, the others kept")
		}
	})
	t.Run("requests being served are not shed; the newcomer is", func(t *testing.T) {
		s := newLimitedServer(t, cfg, h)
		busy := make([]net.Conn, 3)
		for i := range busy {
			busy[i] = s.dial("127.0.0." + string(rune('2'+i)))
			io.WriteString(busy[i], "GET /block HTTP/1.1\r\nHost: x\r\n\r\n")
		}
		waitPhase(t, s.l, phaseHandler, 3)
		c := s.dial("127.0.0.9")
		if !closedByServer(c) {
			t.Fatal("newcomer kept although every connection is serving")
		}
		close(release)
		for _, b := range busy {
			b.SetReadDeadline(time.Now().Add(10 * time.Second))
			if resp, err := http.ReadResponse(bufio.NewReader(b), nil); err != nil || resp.StatusCode != 200 {
				t.Fatalf("blocked request: %v", err)
			}
		}
	})
	t.Run("per address", func(t *testing.T) {
		s := newLimitedServer(t, cfg, h)
		a1, a2 := s.dial("127.0.0.2"), s.dial("127.0.0.2")
		a3 := s.dial("127.0.0.2")
		if code := get(t, a3, "/ok"); code != 200 {
			t.Fatalf("new connection: %d", code)
		}
		if !closedByServer(a1) || closedByServer(a2) {
			t.Fatal("want the address's oldest connection shed")
		}
	})
	t.Run("a flooding address's connections go before a quiet one's", func(t *testing.T) {
		s := newLimitedServer(t, cfg, h)
		quiet := s.dial("127.0.0.2")
		// Five connections from one address, two allowed: three shed.
		var fl []net.Conn
		for range 5 {
			fl = append(fl, s.dial("127.0.0.3"))
		}
		g := s.dial("127.0.0.4")
		if code := get(t, g, "/ok"); code != 200 {
			t.Fatalf("new connection: %d", code)
		}
		if closedByServer(quiet) {
			t.Fatal("the quiet address's older connection was shed before the flooding address's")
		}
		if !closedByServer(fl[3]) || closedByServer(fl[4]) {
			t.Fatal("want the flooding address's oldest connection shed")
		}
	})
}

func waitPhase(t *testing.T, l *connLimiter, p connPhase, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		l.mu.Lock()
		got := l.phases[p]
		l.mu.Unlock()
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d connections in phase %s, want %d", got, phaseNames[p], n)
		}
		time.Sleep(time.Millisecond) // polling the limiter's state
	}
}

// TestConnLimiterInvariants drives the limiter with random arrivals from a
// few addresses, random phase changes and closes, over real TCP
// connections, and checks after every step: the caps hold, the counts add
// up, and a connection whose handler has its request is never shed.
func TestConnLimiterInvariants(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cfg := HTTPConfig{MaxConns: 12, MaxConnsPerAddr: 5, MaxEventStreams: 4, MaxEventStreamsPerAddr: 2, EventStreamLifetime: time.Minute}
	l := newConnLimiter(cfg, slog.New(slog.DiscardHandler), isEventStream)
	rng := rand.New(rand.NewPCG(1, 2))
	var held []*trackedConn
	phases := []connPhase{phaseNew, phaseIdle, phaseBody, phaseHandler, phaseStream, phaseFinishing}
	for step := range 600 {
		switch op := rng.IntN(10); {
		case op < 6: // a new connection from one of four addresses
			src := &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+rng.IntN(4)))}
			d := net.Dialer{LocalAddr: src}
			c, err := d.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			sc, err := ln.Accept()
			if err != nil {
				t.Fatal(err)
			}
			serving := map[*trackedConn]bool{}
			for _, h := range held {
				if h.elem != nil && (h.phase == phaseHandler || h.phase == phaseFinishing) {
					serving[h] = true
				}
			}
			if tc := l.admit(sc); tc != nil {
				held = append(held, tc)
			}
			for h := range serving {
				if h.elem == nil {
					t.Fatalf("step %d: a connection serving a request (%s) was shed", step, phaseNames[h.phase])
				}
			}
		case op < 9 && len(held) > 0: // a phase change
			h := held[rng.IntN(len(held))]
			l.setPhase(h, phases[rng.IntN(len(phases))])
		case len(held) > 0: // the server closes one
			i := rng.IntN(len(held))
			held[i].Close()
			held = slices.Delete(held, i, i+1)
		}
		l.mu.Lock()
		n, sum := l.conns.Len(), 0
		for _, p := range l.phases {
			sum += p
		}
		perAddr := map[string]int{}
		for e := l.conns.Front(); e != nil; e = e.Next() {
			perAddr[e.Value.(*trackedConn).addr]++
		}
		byAddr := maps.Clone(l.byAddr)
		l.mu.Unlock()
		switch {
		case n > cfg.MaxConns:
			t.Fatalf("step %d: %d connections, cap %d", step, n, cfg.MaxConns)
		case sum != n:
			t.Fatalf("step %d: phases add up to %d, %d connections", step, sum, n)
		case !maps.Equal(perAddr, byAddr):
			t.Fatalf("step %d: per-address counts %v, connections %v", step, byAddr, perAddr)
		}
		for a, k := range perAddr {
			if k > cfg.MaxConnsPerAddr {
				t.Fatalf("step %d: %d connections from %s, cap %d", step, k, a, cfg.MaxConnsPerAddr)
			}
		}
	}
}
