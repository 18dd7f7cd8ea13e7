package scitt

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// auditAccess reports whether r may read the audit trail and whether it
// sees client addresses.
func (h *Handler) auditAccess(r *http.Request) (ok, admin bool) {
	if h.opts.AdminToken != "" {
		tok, found := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		a, b := sha256.Sum256([]byte(tok)), sha256.Sum256([]byte(h.opts.AdminToken))
		if found && subtle.ConstantTimeCompare(a[:], b[:]) == 1 {
			return true, true
		}
	}
	return h.opts.PublicAudit, false
}

func (h *Handler) auditQuery(w http.ResponseWriter, r *http.Request) error {
	ok, admin := h.auditAccess(r)
	switch {
	case !ok && h.opts.AdminToken == "":
		return &httpError{404, &Problem{"Not Found", "the audit trail is not served (no admin token is configured)"}}
	case !ok:
		w.Header().Set("WWW-Authenticate", `Bearer realm="vigil-audit"`)
		return &httpError{401, &Problem{"Unauthorized", "GET /audit needs the admin bearer token"}}
	}
	q := AuditQuery{Issuer: r.FormValue("issuer"), Decision: r.FormValue("decision"), EntryID: r.FormValue("entry_id")}
	if v := r.FormValue("since"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return &httpError{400, &Problem{"Malformed request", "since must be RFC 3339"}}
		}
		q.Since = t
	}
	if v := r.FormValue("after"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return &httpError{400, &Problem{"Malformed request", "after must be a record seq (the previous page's next)"}}
		}
		q.After = n
	}
	if v := r.FormValue("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return &httpError{400, &Problem{"Malformed request", "limit must be a non-negative integer"}}
		}
		q.Limit = min(n, MaxAuditPage)
	}
	page, err := h.s.AuditLog().Query(q)
	if err != nil {
		return err
	}
	if !admin {
		for i := range page.Records {
			page.Records[i].Remote = ""
		}
	}
	b, err := json.Marshal(page)
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	return writeBody(w, 200, "application/json", b)
}
