// Package connflood holds many idle HTTP connections open against a node,
// the way a connection-exhaustion attack does, while a well-behaved client
// measures whether add-checkpoint and /healthz are still answered.
//
// It only ever connects to 127.0.0.0/8, from many loopback source addresses
// (Linux routes all of 127/8 to the loopback interface), so a node's
// per-address cap does not simply refuse the whole flood.
package connflood

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// Kind is what a flood connection does once connected.
type Kind int

const (
	// HeaderSlowloris sends a request header one byte per Interval and
	// never ends it.
	HeaderSlowloris Kind = iota
	// BodySlowloris sends a whole add-checkpoint header announcing a body,
	// then the body one byte per Interval, never finishing it.
	BodySlowloris
	// EventStream opens GET /v1/events and reads it.
	EventStream
	numKinds
)

var kindNames = [numKinds]string{"header-slowloris", "body-slowloris", "event-stream"}

func (k Kind) String() string { return kindNames[k] }

// Config configures a flood.
type Config struct {
	// Target is the node's host:port; its host must be in 127.0.0.0/8.
	Target string
	// Conns is how many connections the flood tries to hold; half are
	// slowloris (header and body alternately), half event streams.
	Conns int
	// Sources is how many loopback source addresses the connections are
	// spread over, from 127.0.1.1 up (127.0.0.1 is left to the measuring
	// client).
	Sources int
	// DialRate bounds new connections per second (first dials and redials
	// together); 0 means 5,000.
	DialRate float64
	// Redial is how long a connection the node closed waits before it is
	// dialled again (with up to 50 % jitter); 0 means 2 s.
	Redial time.Duration
	// Interval paces the slowloris bytes; 0 means 3 s.
	Interval time.Duration
	// Duration stops the flood by itself after this long; required.
	Duration time.Duration
}

// Stats count what the flood saw.
type Stats struct {
	// Dials and DialErrors count connection attempts and their failures.
	Dials, DialErrors int64
	// Held is how many connections are open at the moment, by kind.
	Held [numKinds]int64
	// Closed counts connections the node closed (or reset), by kind.
	Closed [numKinds]int64
}

// HeldTotal is the number of connections open at the moment.
func (s Stats) HeldTotal() int64 { return s.Held[0] + s.Held[1] + s.Held[2] }

// ClosedTotal is the number of connections the node closed.
func (s Stats) ClosedTotal() int64 { return s.Closed[0] + s.Closed[1] + s.Closed[2] }

// Flood is a running flood.
type Flood struct {
	cfg    Config
	lim    *rate.Limiter
	cancel context.CancelFunc
	wg     sync.WaitGroup

	dials, dialErrs atomic.Int64
	held, closed    [numKinds]atomic.Int64
}

// Start starts a flood; it stops after cfg.Duration or at Stop.
func Start(ctx context.Context, cfg Config) (*Flood, error) {
	host, _, err := net.SplitHostPort(cfg.Target)
	if err != nil {
		return nil, fmt.Errorf("flood target: %w", err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() || ip.To4() == nil {
		return nil, fmt.Errorf("flood target %s is not in 127.0.0.0/8", cfg.Target)
	}
	switch {
	case cfg.Conns <= 0, cfg.Sources <= 0, cfg.Duration <= 0:
		return nil, errors.New("flood: Conns, Sources and Duration must be positive")
	case cfg.Sources > 250*250:
		return nil, errors.New("flood: at most 62,500 sources")
	}
	if cfg.DialRate <= 0 {
		cfg.DialRate = 5000
	}
	if cfg.Redial <= 0 {
		cfg.Redial = 2 * time.Second
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 3 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Duration)
	f := &Flood{cfg: cfg, lim: rate.NewLimiter(rate.Limit(cfg.DialRate), 100), cancel: cancel}
	for i := range cfg.Conns {
		kind := EventStream
		if i%2 == 0 {
			kind = Kind(i / 2 % 2) // header and body slowloris alternately
		}
		src := &net.TCPAddr{IP: net.IPv4(127, 0, byte(1+i%cfg.Sources/250), byte(1+i%cfg.Sources%250))}
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			f.hold(ctx, kind, src)
		}()
	}
	return f, nil
}

// Stats returns the counts so far.
func (f *Flood) Stats() Stats {
	s := Stats{Dials: f.dials.Load(), DialErrors: f.dialErrs.Load()}
	for k := range numKinds {
		s.Held[k] = f.held[k].Load()
		s.Closed[k] = f.closed[k].Load()
	}
	return s
}

// Stop ends the flood, closes its connections and returns the final counts.
func (f *Flood) Stop() Stats {
	f.cancel()
	f.wg.Wait()
	return f.Stats()
}

// hold keeps one connection of kind open from src, dialling again after
// the node closes it, until ctx ends.
func (f *Flood) hold(ctx context.Context, kind Kind, src *net.TCPAddr) {
	d := net.Dialer{LocalAddr: src, Timeout: 5 * time.Second}
	for {
		if err := f.lim.Wait(ctx); err != nil {
			return
		}
		f.dials.Add(1)
		c, err := d.DialContext(ctx, "tcp", f.cfg.Target)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			f.dialErrs.Add(1)
		} else {
			f.held[kind].Add(1)
			closedByNode := f.use(ctx, kind, c)
			f.held[kind].Add(-1)
			c.Close()
			if closedByNode {
				f.closed[kind].Add(1)
			}
		}
		wait := f.cfg.Redial + rand.N(f.cfg.Redial/2+1)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// use plays kind on c until the node closes it (true) or ctx ends (false).
// It wakes only to send a slowloris byte: a held connection costs the
// flood no CPU in between, so the flood's own load stays small.
func (f *Flood) use(ctx context.Context, kind Kind, c net.Conn) bool {
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	var head, trickle string
	switch kind {
	case HeaderSlowloris:
		trickle = "POST /add-checkpoint HTTP/1.1\r\nHost: vigil\r\nX-Padding: " +
			"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	case BodySlowloris:
		head = "POST /add-checkpoint HTTP/1.1\r\nHost: vigil\r\nContent-Type: text/plain\r\nContent-Length: 4096\r\n\r\nold 0\n"
		trickle = "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
	case EventStream:
		head = "GET /v1/events HTTP/1.1\r\nHost: vigil\r\nAccept: text/event-stream\r\n\r\n"
	}
	if head != "" {
		c.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write([]byte(head)); err != nil {
			return ctx.Err() == nil
		}
	}
	buf := make([]byte, 512)
	for i := 0; ; i++ {
		if trickle != "" {
			c.SetWriteDeadline(time.Now().Add(5 * time.Second))
			if _, err := c.Write([]byte{trickle[i%len(trickle)]}); err != nil {
				return ctx.Err() == nil
			}
			c.SetReadDeadline(time.Now().Add(f.cfg.Interval))
		}
		// Until the next byte is due (or, for a stream, for good), drain
		// what the node sends and notice when it closes the connection.
		for {
			_, err := c.Read(buf)
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && ctx.Err() == nil {
				break
			}
			if err != nil {
				return ctx.Err() == nil
			}
		}
	}
}
