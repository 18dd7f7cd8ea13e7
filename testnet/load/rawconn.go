package load

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"time"
)

// The load generator shares the machine's cores with the witness it
// measures on a one-machine run, so every microsecond it spends is one the
// witness does not get. net/http's client costs ≈ 30 µs of CPU per request
// (two goroutines per connection, channels between them, header maps); this
// client writes one pre-built request per call on its own keep-alive
// connection and parses only what the runner needs, like wrk does. It is
// used for plain http:// targets; https:// goes through net/http.

// errMalformedResponse is returned (wrapped) for a response this client
// cannot parse. The connection is dropped after it.
var errMalformedResponse = errors.New("malformed HTTP response")

// wire carries one connection's requests and replies: send hands over a
// request (it may be written only when the reply is first read), and Read
// reads reply bytes.
type wire interface {
	io.Reader
	send(req []byte) error
}

// connWire is a wire through net.Conn's own Write and Read.
type connWire struct{ net.Conn }

func (w connWire) send(req []byte) error {
	_, err := w.Write(req)
	return err
}

// response is what the runner needs from one reply.
type response struct {
	code       int
	body       []byte
	retryAfter string
}

// poster sends one add-checkpoint body and returns the reply.
type poster interface {
	post(ctx context.Context, body []byte) (response, time.Duration, error)
	close()
}

// rawConn is one keep-alive HTTP/1.1 connection, used by one worker.
type rawConn struct {
	addr    string
	head    []byte // request line and headers up to "Content-Length: "
	timeout time.Duration

	c    net.Conn
	w    wire
	br   *bufio.Reader
	stop func() bool // unregisters the context's close hook
	req  []byte
	// renew is when the connection's deadline is next pushed forward:
	// moving it costs a runtime timer update, so it is moved once per
	// timeout/2 rather than per request, and every request gets between
	// timeout/2 and timeout.
	renew time.Time
	// bodies holds the response bodies, which the runner keeps for
	// verification after the run: one allocation per block, not per reply.
	bodies slab
}

// slab hands out byte slices carved from large blocks.
type slab struct{ free []byte }

const slabBlock = 64 << 10

// alloc returns a zeroed slice of n bytes, capacity n, that no later
// alloc overlaps; a nil slab allocates each slice on its own.
func (s *slab) alloc(n int) []byte {
	if s == nil || n > slabBlock/4 {
		return make([]byte, n)
	}
	if len(s.free) < n {
		s.free = make([]byte, slabBlock)
	}
	b := s.free[:n:n]
	s.free = s.free[n:]
	return b
}

// newRawConn returns a client for POST target (an http:// URL). It dials
// lazily, and again after any error.
func newRawConn(target string, timeout time.Duration) (*rawConn, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "http" || u.Host == "" {
		return nil, fmt.Errorf("raw client: %q is not an http:// URL", target)
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "80")
	}
	path := u.EscapedPath()
	if u.RawQuery != "" {
		path += "?" + u.RawQuery
	}
	head := fmt.Appendf(nil, "POST %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: vigil-bench\r\nContent-Type: text/plain\r\nContent-Length: ", path, u.Host)
	return &rawConn{addr: addr, head: head, timeout: timeout}, nil
}

func (r *rawConn) dial(ctx context.Context) error {
	d := net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	c, err := d.DialContext(ctx, "tcp", r.addr)
	if err != nil {
		return err
	}
	r.c, r.w = c, newWire(c)
	r.br = bufio.NewReaderSize(r.w, 4096)
	// Closing the connection is what interrupts a blocked read or write
	// when the run is cancelled.
	r.stop = context.AfterFunc(ctx, func() { c.Close() })
	return nil
}

func (r *rawConn) close() {
	if r.c != nil {
		r.stop()
		r.c.Close()
		r.c, r.w, r.br = nil, nil, nil
		r.renew = time.Time{}
	}
}

func (r *rawConn) post(ctx context.Context, body []byte) (response, time.Duration, error) {
	if r.c == nil {
		if err := r.dial(ctx); err != nil {
			if ctx.Err() != nil {
				err = ctx.Err()
			}
			return response{}, 0, err
		}
	}
	r.req = append(r.req[:0], r.head...)
	r.req = strconv.AppendInt(r.req, int64(len(body)), 10)
	r.req = append(r.req, "\r\n\r\n"...)
	r.req = append(r.req, body...)
	start := time.Now()
	if r.timeout > 0 && !start.Before(r.renew) {
		r.c.SetDeadline(start.Add(r.timeout))
		r.renew = start.Add(r.timeout / 2)
	}
	resp, keep, err := r.roundTrip()
	lat := time.Since(start)
	if err != nil || !keep {
		r.close()
	}
	if err != nil && ctx.Err() != nil {
		err = ctx.Err()
	}
	return resp, lat, err
}

func (r *rawConn) roundTrip() (response, bool, error) {
	if n := r.br.Buffered(); n > 0 {
		// One request is in flight at a time: bytes before it are
		// not a reply to anything.
		return response{}, false, fmt.Errorf("%w: %d bytes before the request", errMalformedResponse, n)
	}
	if err := r.w.send(r.req); err != nil {
		return response{}, false, err
	}
	return readResponse(r.br, &r.bodies)
}

// readResponse reads one HTTP/1.1 response: the status, Retry-After, and a
// body framed by Content-Length or chunked encoding (at most
// maxResponseBytes). keep is false if the server closes the connection.
// A body of known length is carved from bodies (nil: allocated alone).
func readResponse(br *bufio.Reader, bodies *slab) (response, bool, error) {
	// 1xx replies carry no body and precede the final one (the runner
	// sends no Expect, so these are a server's spontaneous 100 or 103);
	// a server sending nothing else is cut off.
	for range 8 {
		resp, keep, err := readOne(br, bodies)
		if err != nil || resp.code >= 200 {
			return resp, keep, err
		}
	}
	return response{}, false, fmt.Errorf("%w: too many 1xx responses", errMalformedResponse)
}

func readOne(br *bufio.Reader, bodies *slab) (resp response, keep bool, err error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return resp, false, err
	}
	// "HTTP/1.1 200 OK\r\n"
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' {
		return resp, false, fmt.Errorf("%w: status line %q", errMalformedResponse, bytes.TrimSpace(line))
	}
	if resp.code, err = strconv.Atoi(string(line[9:12])); err != nil || resp.code < 100 {
		return resp, false, fmt.Errorf("%w: status line %q", errMalformedResponse, bytes.TrimSpace(line))
	}
	keep = line[7] == '1' // HTTP/1.0 closes by default
	length, chunked := -1, false
	for {
		h, err := br.ReadSlice('\n')
		if err != nil {
			return resp, false, err
		}
		h = bytes.TrimRight(h, "\r\n")
		if len(h) == 0 {
			break
		}
		name, value, ok := bytes.Cut(h, []byte(":"))
		if !ok {
			return resp, false, fmt.Errorf("%w: header line %q", errMalformedResponse, h)
		}
		value = bytes.TrimSpace(value)
		switch {
		case asciiEqualFold(name, "Content-Length"):
			n, err := strconv.Atoi(string(value))
			if err != nil || n < 0 {
				return resp, false, fmt.Errorf("%w: Content-Length %q", errMalformedResponse, value)
			}
			length = n
		case asciiEqualFold(name, "Transfer-Encoding"):
			chunked = asciiEqualFold(value, "chunked")
		case asciiEqualFold(name, "Connection"):
			switch {
			case asciiEqualFold(value, "close"):
				keep = false
			case asciiEqualFold(value, "keep-alive"):
				keep = true
			}
		case asciiEqualFold(name, "Retry-After"):
			resp.retryAfter = string(value)
		}
	}
	switch {
	case resp.code < 200, resp.code == 204 || resp.code == 304:
	case chunked:
		resp.body, err = readChunked(br)
	case length >= 0:
		if length > maxResponseBytes {
			return resp, false, fmt.Errorf("%w: response body of %d bytes", errMalformedResponse, length)
		}
		resp.body = bodies.alloc(length)
		_, err = io.ReadFull(br, resp.body)
	default:
		// Delimited by the connection's end.
		resp.body, err = io.ReadAll(io.LimitReader(br, maxResponseBytes))
		keep = false
	}
	return resp, keep && err == nil, err
}

// readChunked reads a chunked body and its trailer.
func readChunked(br *bufio.Reader) ([]byte, error) {
	var body []byte
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return nil, err
		}
		sizeField, _, _ := bytes.Cut(bytes.TrimRight(line, "\r\n"), []byte(";"))
		n, err := strconv.ParseUint(string(bytes.TrimSpace(sizeField)), 16, 32)
		if err != nil {
			return nil, fmt.Errorf("%w: chunk size %q", errMalformedResponse, sizeField)
		}
		if n == 0 {
			break
		}
		if len(body)+int(n) > maxResponseBytes {
			return nil, fmt.Errorf("%w: response body over %d bytes", errMalformedResponse, maxResponseBytes)
		}
		start := len(body)
		body = append(body, make([]byte, n)...)
		if _, err := io.ReadFull(br, body[start:]); err != nil {
			return nil, err
		}
		if crlf, err := br.ReadSlice('\n'); err != nil || len(bytes.TrimRight(crlf, "\r\n")) != 0 {
			return nil, fmt.Errorf("%w: chunk not followed by CRLF", errMalformedResponse)
		}
	}
	for { // trailer
		line, err := br.ReadSlice('\n')
		if err != nil {
			return nil, err
		}
		if len(bytes.TrimRight(line, "\r\n")) == 0 {
			return body, nil
		}
	}
}

func asciiEqualFold(b []byte, s string) bool { return bytes.EqualFold(b, []byte(s)) }
