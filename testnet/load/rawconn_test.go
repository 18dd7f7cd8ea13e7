package load

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestReadResponse(t *testing.T) {
	for _, tc := range []struct {
		name, in   string
		code       int
		body       string
		retryAfter string
		keep       bool
		err        error // errors.Is target; nil means success
		anyErr     bool
	}{
		{name: "content-length", in: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", code: 200, body: "hello", keep: true},
		{name: "header case", in: "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nhi", code: 200, body: "hi", keep: true},
		{name: "409 size", in: "HTTP/1.1 409 Conflict\r\nContent-Type: text/x.tlog.size\r\nContent-Length: 3\r\n\r\n42\n", code: 409, body: "42\n", keep: true},
		{name: "retry-after", in: "HTTP/1.1 429 Too Many Requests\r\nRetry-After:  3 \r\nContent-Length: 0\r\n\r\n", code: 429, retryAfter: "3", keep: true},
		{name: "connection close", in: "HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 3\r\n\r\nbad", code: 400, body: "bad"},
		{name: "http/1.0", in: "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx", code: 200, body: "x"},
		{name: "http/1.0 keep-alive", in: "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\nx", code: 200, body: "x", keep: true},
		{name: "chunked", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nTrailer: x\r\n\r\n", code: 200, body: "abcde", keep: true},
		{name: "until close", in: "HTTP/1.1 200 OK\r\n\r\nrest of stream", code: 200, body: "rest of stream"},
		{name: "1xx first", in: "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok", code: 201, body: "ok", keep: true},
		{name: "endless 1xx", in: strings.Repeat("HTTP/1.1 103 Early Hints\r\n\r\n", 9), err: errMalformedResponse},
		{name: "204", in: "HTTP/1.1 204 No Content\r\n\r\n", code: 204, keep: true},
		{name: "not http", in: "SSH-2.0-OpenSSH\r\n\r\n", err: errMalformedResponse},
		{name: "bad code", in: "HTTP/1.1 2x0 OK\r\n\r\n", err: errMalformedResponse},
		{name: "code below 100", in: "HTTP/1.1 099 Odd\r\n\r\n", err: errMalformedResponse},
		{name: "bad content-length", in: "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", err: errMalformedResponse},
		{name: "oversized", in: fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", maxResponseBytes+1), err: errMalformedResponse},
		{name: "header without colon", in: "HTTP/1.1 200 OK\r\nbogus\r\n\r\n", err: errMalformedResponse},
		{name: "bad chunk size", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", err: errMalformedResponse},
		{name: "chunk without crlf", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n0\r\n\r\n", err: errMalformedResponse},
		{name: "truncated body", in: "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", err: io.ErrUnexpectedEOF},
		{name: "truncated headers", in: "HTTP/1.1 200 OK\r\nContent-Le", anyErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, keep, err := readResponse(bufio.NewReader(strings.NewReader(tc.in)), &slab{})
			switch {
			case tc.err != nil || tc.anyErr:
				if err == nil || (tc.err != nil && !errors.Is(err, tc.err)) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
				return
			case err != nil:
				t.Fatal(err)
			}
			if resp.code != tc.code || string(resp.body) != tc.body || resp.retryAfter != tc.retryAfter || keep != tc.keep {
				t.Errorf("got code %d body %q retry-after %q keep %v; want %d %q %q %v", resp.code, resp.body, resp.retryAfter, keep, tc.code, tc.body, tc.retryAfter, tc.keep)
			}
		})
	}
}

// TestSlab: bodies carved from one block stay apart, even when a caller
// appends to one, and sizes past a block's quarter get their own array.
func TestSlab(t *testing.T) {
	var s slab
	var got [][]byte
	for i, n := range []int{0, 1, 7, 300, slabBlock / 4, slabBlock/4 + 1, slabBlock / 3, 5, slabBlock / 4, slabBlock / 4, 9} {
		b := s.alloc(n)
		if len(b) != n || cap(b) != n {
			t.Fatalf("alloc(%d): len %d cap %d", n, len(b), cap(b))
		}
		for j := range b {
			if b[j] != 0 {
				t.Fatalf("alloc(%d) is not zeroed", n)
			}
			b[j] = byte(i + 1)
		}
		_ = append(b, 0xff) // must not write into the next slice
		got = append(got, b)
	}
	for i, b := range got {
		for _, c := range b {
			if c != byte(i+1) {
				t.Fatalf("slice %d (len %d) was overwritten", i, len(b))
			}
		}
	}
	var none *slab
	if b := none.alloc(3); len(b) != 3 {
		t.Fatalf("nil slab: %d bytes", len(b))
	}
}

// FuzzReadResponse: any bytes from a server give a response or an error,
// never a panic or a body over the cap.
func FuzzReadResponse(f *testing.F) {
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"))
	f.Add([]byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		resp, _, err := readResponse(bufio.NewReader(strings.NewReader(string(in))), &slab{})
		if err == nil && len(resp.body) > maxResponseBytes {
			t.Fatalf("body of %d bytes", len(resp.body))
		}
	})
}

// TestRawConnAgainstNetHTTP drives the lean client against a real net/http
// server: keep-alive reuse, a server that closes after each reply, and a
// cancelled context interrupting a request the server never answers.
func TestRawConnAgainstNetHTTP(t *testing.T) {
	var conns atomic.Int32
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	mux := http.NewServeMux()
	mux.HandleFunc("POST /keep/add-checkpoint", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "echo %s", b)
	})
	mux.HandleFunc("POST /close/add-checkpoint", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	mux.HandleFunc("POST /hang/add-checkpoint", func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	srv := httptest.NewUnstartedServer(mux)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	defer close(release)

	ctx := context.Background()
	rc, err := newRawConn(srv.URL+"/keep/add-checkpoint", 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		resp, _, err := rc.post(ctx, fmt.Appendf(nil, "body %d", i))
		if err != nil || resp.code != 200 || string(resp.body) != fmt.Sprintf("echo body %d", i) {
			t.Fatalf("request %d: %v %d %q", i, err, resp.code, resp.body)
		}
	}
	rc.close()
	if n := conns.Load(); n != 1 {
		t.Fatalf("keep-alive: %d connections for 20 requests, want 1", n)
	}

	conns.Store(0)
	rc, _ = newRawConn(srv.URL+"/close/add-checkpoint", 10*time.Second)
	for i := range 5 {
		resp, _, err := rc.post(ctx, []byte("x"))
		if err != nil || resp.code != 503 || resp.retryAfter != "1" {
			t.Fatalf("request %d: %v %d %q", i, err, resp.code, resp.retryAfter)
		}
	}
	rc.close()
	if n := conns.Load(); n != 5 {
		t.Fatalf("Connection: close: %d connections for 5 requests, want 5", n)
	}

	rc, _ = newRawConn(srv.URL+"/hang/add-checkpoint", 0)
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		_, _, err := rc.post(cctx, []byte("x"))
		done <- err
	}()
	<-entered // the request is in flight: only cancellation can end it
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled request: err = %v, want context.Canceled", err)
	}
}

// TestRawConnLargeRequest sends requests larger than a socket buffer
// takes at once, so the first write is partial and the rest is written
// while the server reads; then small ones on the same connection.
func TestRawConnLargeRequest(t *testing.T) {
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		fmt.Fprintf(w, "%d %v", n, err)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	rc, err := newRawConn(srv.URL+"/add-checkpoint", 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.close()
	for _, size := range []int{32 << 20, 10, 32<<20 + 1, 0} {
		resp, _, err := rc.post(context.Background(), make([]byte, size))
		if err != nil || resp.code != 200 || string(resp.body) != fmt.Sprintf("%d <nil>", size) {
			t.Fatalf("%d-byte request: %v %d %q", size, err, resp.code, resp.body)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("%d connections, want 1", n)
	}
}

func TestNewRawConnRefusesOtherSchemes(t *testing.T) {
	for _, u := range []string{"https://example.com/add-checkpoint", "unix:///x", "http:///nohost", "::"} {
		if _, err := newRawConn(u, 0); err == nil {
			t.Errorf("newRawConn(%q) accepted", u)
		}
	}
}
