//go:build unix

package load

import (
	"io"
	"net"
	"syscall"
)

// fdWire sends a request and reads its reply with raw system calls on the
// connection's descriptor, inside the runtime poller's RawConn.Read. It
// writes the request inside the read call, after the poller has reset the
// descriptor's readiness, and then waits for the reply without trying a
// read first: the reply cannot be there yet, and the read that would say
// so (EAGAIN) is one system call per request saved, besides the locking
// net.Conn's Read and Write do. Readiness that arrives after the reset
// wakes the wait, so no reply is missed.
type fdWire struct {
	c   net.Conn
	raw syscall.RawConn
	out []byte // the request, written by the next Read

	// The state of one Read, kept here so that the callback given to
	// raw.Read (bound once, in step) allocates nothing per call.
	p    []byte
	n    int
	err  error
	step func(fd uintptr) bool
}

// newWire returns the cheapest wire the connection supports.
func newWire(c net.Conn) wire {
	if sc, ok := c.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			w := &fdWire{c: c, raw: raw}
			w.step = w.onReady
			return w
		}
	}
	return connWire{c}
}

func (w *fdWire) send(req []byte) error {
	w.out = req
	return nil
}

// onReady is raw.Read's callback: it writes a pending request and asks to
// wait for the reply, or reads; true ends the raw.Read.
func (w *fdWire) onReady(fd uintptr) bool {
	if w.out != nil {
		m, err := ignoringEINTR(func() (int, error) { return syscall.Write(int(fd), w.out) })
		switch {
		case err == syscall.EAGAIN:
		case err != nil:
			w.err = err
			return true
		default:
			w.out = w.out[m:]
		}
		if len(w.out) > 0 {
			return true // the socket buffer is full: Read writes the rest
		}
		w.out = nil
		return false
	}
	w.n, w.err = ignoringEINTR(func() (int, error) { return syscall.Read(int(fd), w.p) })
	return w.err != syscall.EAGAIN
}

func (w *fdWire) Read(p []byte) (int, error) {
	w.p, w.n, w.err = p, 0, nil
	rerr := w.raw.Read(w.step)
	n, err := w.n, w.err
	w.p, w.err = nil, nil
	switch {
	case rerr != nil:
		return 0, rerr
	case err != nil:
		return 0, err
	case w.out != nil:
		// Rare: the request did not fit the socket buffer. net.Conn
		// writes the rest (waiting for room), then the reply is read.
		out := w.out
		w.out = nil
		if _, err := w.c.Write(out); err != nil {
			return 0, err
		}
		return w.Read(p)
	case n == 0 && len(p) > 0:
		return 0, io.EOF
	}
	return n, nil
}

func ignoringEINTR(fn func() (int, error)) (int, error) {
	for {
		n, err := fn()
		if err != syscall.EINTR {
			return max(n, 0), err
		}
	}
}
