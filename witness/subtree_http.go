package witness

import (
	"errors"
	"fmt"
	"net/http"
)

// serveSignSubtree is POST /sign-subtree (c2sp.org/tlog-witness). It is
// routed only when the witness holds a subtree-capable key; otherwise the
// path is unknown (404), as transparency-dev/witness does.
func (w *Witness) serveSignSubtree(rw http.ResponseWriter, r *http.Request) {
	body, err := readBody(rw, r)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			w.fail(rw, r, http.StatusRequestEntityTooLarge, fmt.Errorf("request body larger than %d bytes", MaxRequestBytes))
			return
		}
		w.fail(rw, r, http.StatusBadRequest, fmt.Errorf("reading request: %v", err))
		return
	}
	req, err := ParseSignSubtreeRequest(body)
	if err != nil {
		w.fail(rw, r, http.StatusBadRequest, err)
		return
	}
	lines, err := w.SignSubtree(r.Context(), req)
	if err != nil {
		// statusOf: ErrMalformed 400, ErrUnauthenticated 403,
		// ErrUnknownLog 404, ErrInconsistent 422.
		w.fail(rw, r, statusOf(err), err)
		return
	}
	rw.Header().Set("Content-Type", "text/plain; charset=utf-8")
	rw.WriteHeader(http.StatusOK)
	rw.Write(lines)
}
