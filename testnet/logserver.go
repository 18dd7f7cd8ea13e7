package testnet

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/vigilnet/vigil/testnet/scriptlog"
)

// LogMode is how a served scripted log behaves towards readers.
type LogMode int32

// Log behaviours.
const (
	// Honest serves the checkpoint and every tile.
	Honest LogMode = iota
	// WithholdProofs serves the checkpoint but no tiles, so nobody can
	// build a consistency proof: a suspicion, never evidence.
	WithholdProofs
	// Slow delays every response by the server's Delay.
	Slow
	// Offline answers 503 to everything.
	Offline
)

func (m LogMode) String() string {
	return [...]string{"honest", "withhold-proofs", "slow", "offline"}[m]
}

// ParseLogMode parses a LogMode name.
func ParseLogMode(s string) (LogMode, error) {
	for m := Honest; m <= Offline; m++ {
		if m.String() == s {
			return m, nil
		}
	}
	return 0, fmt.Errorf("log mode %q: want honest, withhold-proofs, slow or offline", s)
}

// LogServer serves a scripted log over C2SP tlog-tiles on 127.0.0.1, with a
// behaviour that can change while it runs.
type LogServer struct {
	Log *scriptlog.Log
	// URL is the log's tiles prefix.
	URL   string
	mode  atomic.Int32
	delay atomic.Int64
	srv   *http.Server
}

// ServeLog starts serving l.
func ServeLog(l *scriptlog.Log) (*LogServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &LogServer{Log: l, URL: "http://" + ln.Addr().String()}
	s.delay.Store(int64(2 * time.Second))
	inner := l.Handler()
	s.srv = &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch LogMode(s.mode.Load()) {
		case Offline:
			http.Error(w, "log offline", http.StatusServiceUnavailable)
			return
		case WithholdProofs:
			if strings.HasPrefix(r.URL.Path, "/tile/") {
				http.NotFound(w, r)
				return
			}
		case Slow:
			t := time.NewTimer(time.Duration(s.delay.Load()))
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				return
			}
		}
		inner.ServeHTTP(w, r)
	})}
	go s.srv.Serve(ln)
	return s, nil
}

// SetMode changes the log's behaviour; delay applies to Slow.
func (s *LogServer) SetMode(m LogMode, delay time.Duration) {
	if delay > 0 {
		s.delay.Store(int64(delay))
	}
	s.mode.Store(int32(m))
}

// Mode returns the current behaviour.
func (s *LogServer) Mode() LogMode { return LogMode(s.mode.Load()) }

// Close stops serving.
func (s *LogServer) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return s.srv.Shutdown(ctx)
}
