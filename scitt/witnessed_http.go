package scitt

import (
	"errors"
	"net/http"
	"strings"

	"github.com/vigilnet/vigil/tlog/tlogproof"
)

// witnessedReceipt serves GET /entries/{id}/witnessed-receipt
// [?checkpoint=latest].
func (h *Handler) witnessedReceipt(w http.ResponseWriter, r *http.Request) error {
	id := strings.ToLower(r.PathValue("id"))
	var opts WitnessedReceiptOptions
	switch v := r.FormValue("checkpoint"); v {
	case "", "first":
	case "latest":
		opts.Latest = true
	default:
		return &httpError{400, &Problem{"Malformed request", "checkpoint must be first or latest"}}
	}
	wr, err := h.s.WitnessedReceipt(r.Context(), id, opts)
	if err := entryError(w, id, err); err != nil {
		return err
	}
	if wr == nil {
		return nil
	}
	b, err := wr.Marshal()
	if err != nil {
		return err
	}
	return writeBody(w, 200, WitnessedReceiptContentType, b)
}

// tlogProof serves GET /entries/{id}/tlog-proof.
func (h *Handler) tlogProof(w http.ResponseWriter, r *http.Request) error {
	id := strings.ToLower(r.PathValue("id"))
	b, err := h.s.TLogProof(r.Context(), id)
	if err := entryError(w, id, err); err != nil {
		return err
	}
	if b == nil {
		return nil
	}
	// The spec names no media type, only the file extension.
	w.Header().Set("Content-Disposition", `attachment; filename="`+id+tlogproof.FileExt+`"`)
	return writeBody(w, 200, "text/plain; charset=utf-8", b)
}

// entryError answers the states of an entry that has no proof to serve: 302
// while pending (written here; it returns nil), 404 for an unknown entry or
// one no witnessed checkpoint covers; other errors are returned as they are.
func entryError(w http.ResponseWriter, id string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrPending):
		// SPEC: still running: 302 Found + Location + Retry-After.
		w.Header().Set("Location", "/entries/"+id)
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusFound)
		return nil
	case errors.Is(err, ErrNotFound):
		return &httpError{404, &Problem{"Not Found", "no entry " + id}}
	case errors.Is(err, ErrNotWitnessed):
		return &httpError{404, &Problem{"Not Witnessed", err.Error()}}
	}
	return err
}
