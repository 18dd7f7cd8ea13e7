package feed_test

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// rawStream is a GET /v1/events read line by line, from a chosen loopback
// source address.
type rawStream struct {
	lines chan string // closed when the server ends the stream
}

func (e *env) openFrom(t *testing.T, src string) *rawStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	client := &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
	req, _ := http.NewRequestWithContext(ctx, "GET", e.url+"/v1/events", nil)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("events from %s: status %d", src, resp.StatusCode)
	}
	br := bufio.NewReader(resp.Body)
	if first, err := br.ReadString('\n'); err != nil || !strings.HasPrefix(first, "retry: ") {
		t.Fatalf("events: first line %q, %v", first, err)
	}
	s := &rawStream{lines: make(chan string, 64)}
	go func() {
		defer resp.Body.Close()
		defer close(s.lines)
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			if line = strings.TrimSuffix(line, "\n"); line != "" {
				s.lines <- line
			}
		}
	}()
	return s
}

// ended waits for the server to end the stream and returns its last line.
func (s *rawStream) ended(t *testing.T) string {
	t.Helper()
	last := ""
	timeout := time.After(deadline)
	for {
		select {
		case line, ok := <-s.lines:
			if !ok {
				return last
			}
			last = line
		case <-timeout:
			t.Fatal("the stream did not end")
		}
	}
}

// open reports whether the stream is still open.
func (s *rawStream) open() bool {
	for {
		select {
		case _, ok := <-s.lines:
			if !ok {
				return false
			}
		default:
			return true
		}
	}
}

// Past the caps, the oldest stream (of the address, or of all) is ended
// with a long retry, and the newer ones stay.
func TestEventsCapsOldestOut(t *testing.T) {
	t.Run("per address", func(t *testing.T) {
		e := newEnv(t, envOptions{logs: 1, maxSubscribers: 10, maxSubscribersPerAddr: 2})
		a1 := e.openFrom(t, "127.0.0.2")
		a2 := e.openFrom(t, "127.0.0.2")
		b := e.openFrom(t, "127.0.0.3")
		a3 := e.openFrom(t, "127.0.0.2")
		if last := a1.ended(t); last != "retry: 30000" {
			t.Fatalf("displaced stream ended with %q, want a retry line", last)
		}
		if !a2.open() || !a3.open() || !b.open() {
			t.Fatal("a stream within the caps was ended")
		}
	})
	t.Run("total", func(t *testing.T) {
		e := newEnv(t, envOptions{logs: 1, maxSubscribers: 2, maxSubscribersPerAddr: 2})
		s1 := e.openFrom(t, "127.0.0.2")
		s2 := e.openFrom(t, "127.0.0.3")
		s3 := e.openFrom(t, "127.0.0.4")
		if last := s1.ended(t); last != "retry: 30000" {
			t.Fatalf("displaced stream ended with %q, want a retry line", last)
		}
		if !s2.open() || !s3.open() {
			t.Fatal("a stream within the caps was ended")
		}
	})
}

// A stream ends at its maximum lifetime with a retry line, so EventSource
// reconnects (and resumes with Last-Event-ID).
func TestEventsLifetime(t *testing.T) {
	e := newEnv(t, envOptions{logs: 1, streamLifetime: 300 * time.Millisecond})
	start := time.Now()
	s := e.openFrom(t, "127.0.0.2")
	if last := s.ended(t); last != "retry: 2000" {
		t.Fatalf("stream ended with %q, want a retry line", last)
	}
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Fatalf("stream ended after %v, before its lifetime", d)
	}
}
