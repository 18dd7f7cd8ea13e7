package witness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/vigilnet/vigil/roster"
	"github.com/vigilnet/vigil/store"
	"github.com/vigilnet/vigil/tlog"
)

// MaxRequestBytes caps an add-checkpoint or sign-subtree body: a checkpoint
// note of up to tlog.MaxNoteBytes (dozens of signatures, ML-DSA-44 lines
// being ~3.3 KB each) plus the request head (an old or subtree line, a
// subtree hash and up to 63 proof lines of 45 bytes). transparency-dev's
// 16 KiB would hold only four ML-DSA lines.
const MaxRequestBytes = tlog.MaxNoteBytes + 4<<10

// Handler returns the C2SP tlog-witness submission API:
// POST /add-checkpoint, and POST /sign-subtree when the witness has a
// subtree-capable (ML-DSA-44) key.
func (w *Witness) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("POST /add-checkpoint", http.HandlerFunc(w.serveAddCheckpoint))
	if len(w.subtreeSigners) > 0 {
		mux.Handle("POST /sign-subtree", http.HandlerFunc(w.serveSignSubtree))
	}
	return mux
}

// LogIndex finds a log by its ID, the lowercase hex SHA-256 of its origin
// (tlog.LogID). The node passes a view that follows roster reloads.
type LogIndex interface {
	LogByID(id string) (*roster.Log, bool)
}

// MonitoringHandler returns the C2SP tlog-witness monitoring API, to be
// mounted under the monitoring prefix with the prefix stripped:
// GET /{logID}/checkpoint, where logID is the lowercase hex SHA-256 of the
// origin. The body is the newest checkpoint this witness cosigned for the
// log: the log's signature(s) it verified and its own cosignature(s).
func (w *Witness) MonitoringHandler(idx LogIndex) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{logID}/checkpoint", func(rw http.ResponseWriter, r *http.Request) {
		w.serveMonitoring(rw, r, idx)
	})
	mux.HandleFunc("/", func(rw http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/checkpoint") && strings.Count(r.URL.Path, "/") == 2 {
			rw.Header().Set("Allow", "GET, HEAD")
			monitoringError(rw, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed: use GET")
			return
		}
		monitoringError(rw, http.StatusNotFound, "not found: the monitoring API serves /<lowercase hex SHA-256 of the origin>/checkpoint")
	})
	return mux
}

func (w *Witness) serveMonitoring(rw http.ResponseWriter, r *http.Request, idx LogIndex) {
	id := r.PathValue("logID")
	if !validLogID(id) {
		monitoringError(rw, http.StatusNotFound, "not found: "+strconv.Quote(id)+" is not a lowercase hex SHA-256 of an origin")
		return
	}
	lg, ok := idx.LogByID(id)
	if !ok {
		monitoringError(rw, http.StatusNotFound, "unknown log: no configured log has ID "+id)
		return
	}
	note, err := w.Latest(r.Context(), lg.Origin)
	switch {
	case errors.Is(err, store.ErrNotFound) || err == nil && len(note) == 0:
		// SPEC (tlog-witness, monitoring): a log the witness never
		// cosigned is a 404.
		monitoringError(rw, http.StatusNotFound, "this witness has never cosigned "+lg.Origin)
		return
	case err != nil:
		w.log.Warn("monitoring: reading witness state", "origin", lg.Origin, "err", err)
		rw.Header().Set("Retry-After", "1")
		monitoringError(rw, http.StatusServiceUnavailable, "reading the witness state failed; try again")
		return
	}
	h := rw.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	// The state changes with every cosignature; a short shared lifetime
	// keeps CDNs useful (the spec lets the endpoint lag up to an hour).
	h.Set("Cache-Control", "public, max-age=10")
	h.Set("Content-Length", strconv.Itoa(len(note)))
	rw.Write(note)
}

// validLogID reports whether id is 64 lowercase hex digits.
func validLogID(id string) bool {
	if len(id) != 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func monitoringError(rw http.ResponseWriter, code int, reason string) {
	h := rw.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	rw.WriteHeader(code)
	fmt.Fprintln(rw, reason)
}

func (w *Witness) serveAddCheckpoint(rw http.ResponseWriter, r *http.Request) {
	start := time.Now()
	code := w.addCheckpoint(rw, r)
	w.metrics.requests.WithLabelValues(strconv.Itoa(code)).Inc()
	w.metrics.latency.Observe(time.Since(start).Seconds())
}

func (w *Witness) addCheckpoint(rw http.ResponseWriter, r *http.Request) int {
	body, err := readBody(rw, r)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return w.fail(rw, r, http.StatusRequestEntityTooLarge, fmt.Errorf("request body larger than %d bytes", MaxRequestBytes))
		}
		return w.fail(rw, r, http.StatusBadRequest, fmt.Errorf("reading request: %v", err))
	}
	req, err := ParseAddCheckpointRequest(body)
	if err != nil {
		return w.fail(rw, r, http.StatusBadRequest, err)
	}
	cosig, err := w.AddCheckpoint(r.Context(), req)
	if err != nil {
		return w.fail(rw, r, statusOf(err), err)
	}
	// One write of a response whose length is known: net/http sends the
	// head and the body in one segment, never chunked.
	h := rw.Header()
	h["Content-Type"] = textPlain
	h["Content-Length"] = []string{strconv.Itoa(len(cosig))}
	rw.WriteHeader(http.StatusOK)
	rw.Write(cosig)
	return http.StatusOK
}

// textPlain is the Content-Type of cosignature responses, shared: net/http
// only reads header values.
var textPlain = []string{"text/plain; charset=utf-8"}

// readBody reads the request body, at most MaxRequestBytes. A declared
// Content-Length sizes the buffer at once (io.ReadAll would grow it several
// times for a typical 1 KB request); the length is still only a hint, the
// bytes read are what counts.
func readBody(rw http.ResponseWriter, r *http.Request) ([]byte, error) {
	body := http.MaxBytesReader(rw, r.Body, MaxRequestBytes)
	if n := r.ContentLength; n > 0 && n <= MaxRequestBytes {
		buf := make([]byte, n+1) // +1: room to see a body longer than declared
		got, err := io.ReadFull(body, buf)
		switch {
		case err == io.ErrUnexpectedEOF && int64(got) == n:
			return buf[:got], nil
		case err == io.ErrUnexpectedEOF, err == io.EOF:
			return nil, fmt.Errorf("body of %d bytes, %d declared: %w", got, n, io.ErrUnexpectedEOF)
		case err != nil:
			return nil, err
		}
		// More than declared (net/http stops at Content-Length, so only a
		// body reader that does not): read the rest under the cap.
		rest, err := io.ReadAll(body)
		return append(buf, rest...), err
	}
	return io.ReadAll(body)
}

// statusOf maps the witness's errors to C2SP tlog-witness status codes.
func statusOf(err error) int {
	switch {
	case errors.Is(err, ErrMalformed), errors.Is(err, ErrOldSizeTooLarge):
		return http.StatusBadRequest
	case errors.Is(err, ErrUnauthenticated):
		return http.StatusForbidden
	case errors.Is(err, ErrUnknownLog):
		return http.StatusNotFound
	case errors.Is(err, ErrConflict):
		return http.StatusConflict
	case errors.Is(err, ErrInconsistent):
		return http.StatusUnprocessableEntity
	case errors.Is(err, ErrRateLimited):
		return http.StatusTooManyRequests
	case errors.Is(err, ErrUnavailable), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

func (w *Witness) fail(rw http.ResponseWriter, r *http.Request, code int, err error) int {
	var conflict *ConflictError
	var limited *RateLimitError
	var unavailable *UnavailableError
	switch {
	case errors.As(err, &conflict):
		// SPEC: 409 carries the latest cosigned size as text/x.tlog.size.
		rw.Header().Set("Content-Type", "text/x.tlog.size")
		rw.WriteHeader(code)
		fmt.Fprintf(rw, "%d\n", conflict.Size)
		w.logReject(r, code, err)
		return code
	case errors.As(err, &limited):
		rw.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(limited.RetryAfter.Seconds()))))
	case errors.As(err, &unavailable) && unavailable.RetryAfter > 0:
		rw.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(unavailable.RetryAfter.Seconds()))))
	case code == http.StatusServiceUnavailable:
		rw.Header().Set("Retry-After", "1")
	}
	if code == http.StatusInternalServerError {
		w.log.Error("add-checkpoint failed", "err", err)
		err = errors.New("internal error")
	} else {
		w.logReject(r, code, err)
	}
	// The reason is one line even when a library's error text is not
	// (transparency-dev/merkle's proof errors span several lines).
	http.Error(rw, strings.Join(strings.Fields(err.Error()), " "), code)
	return code
}

// logReject logs rejected requests at most a few times a second so a flood
// of bad input cannot flood the log; the suppressed count is reported.
func (w *Witness) logReject(r *http.Request, code int, err error) {
	if !w.rejectLimiter.Allow() {
		w.suppressed.Add(1)
		return
	}
	w.log.Info("add-checkpoint rejected", "status", code, "remote", r.RemoteAddr, "reason", err.Error(), "suppressed", w.suppressed.Swap(0))
}
