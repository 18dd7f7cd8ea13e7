//go:build unix

package load

import (
	"errors"
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
}

// newWire returns the cheapest wire the connection supports.
func newWire(c net.Conn) wire {
	if sc, ok := c.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			return &fdWire{c: c, raw: raw}
		}
	}
	return connWire{c}
}

func (w *fdWire) send(req []byte) error {
	w.out = req
	return nil
}

func (w *fdWire) Read(p []byte) (int, error) {
	var (
		n   int
		err error
	)
	rerr := w.raw.Read(func(fd uintptr) bool {
		if w.out != nil {
			m, werr := ignoringEINTR(func() (int, error) { return syscall.Write(int(fd), w.out) })
			switch {
			case werr == syscall.EAGAIN:
			case werr != nil:
				err = werr
				return true
			default:
				w.out = w.out[m:]
			}
			if len(w.out) > 0 {
				return true // the socket buffer is full: write the rest below
			}
			w.out = nil
			return false
		}
		n, err = ignoringEINTR(func() (int, error) { return syscall.Read(int(fd), p) })
		return err != syscall.EAGAIN
	})
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
		if !errors.Is(err, syscall.EINTR) {
			return max(n, 0), err
		}
	}
}
