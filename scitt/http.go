package scitt

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/transparency-dev/tessera"
	"github.com/transparency-dev/tessera/api/layout"
	"golang.org/x/time/rate"
)

// HandlerOptions configure the SCRAPI handler. Zero values mean defaults.
type HandlerOptions struct {
	// SyncWait is how long POST /entries waits for the entry to be in a
	// published checkpoint before answering 303 instead of 201 (default 2s).
	SyncWait time.Duration
	// RatePerClient limits POST /entries per client IP (default 1000/s,
	// burst 2x); negative disables the limit.
	RatePerClient rate.Limit
	// RejectRatePerClient limits rejected registrations per client IP
	// (default 20/s, burst 2x): once it is spent, the client's
	// registrations are answered 429 with Retry-After until it refills.
	// Negative disables the limit.
	RejectRatePerClient rate.Limit
	// AdminToken, if set, lets requests with "Authorization: Bearer
	// <AdminToken>" read GET /audit, client addresses included. Without it
	// (and without PublicAudit) GET /audit answers 404.
	AdminToken string
	// PublicAudit serves GET /audit to anyone, without client addresses.
	PublicAudit bool
	Logger      *slog.Logger
}

// Handler serves SCRAPI and the log's tiles (tlog-tiles) at the root of its
// mux; mount it under a prefix with http.StripPrefix.
type Handler struct {
	s    *Service
	opts HandlerOptions
	mux  *http.ServeMux
	log  *slog.Logger

	limMu   sync.Mutex
	clients map[string]*clientState
}

// NewHandler returns the HTTP handler of s.
func NewHandler(s *Service, opts HandlerOptions) *Handler {
	if opts.SyncWait == 0 {
		opts.SyncWait = 2 * time.Second
	}
	if opts.RatePerClient == 0 {
		opts.RatePerClient = 1000
	}
	if opts.RejectRatePerClient == 0 {
		opts.RejectRatePerClient = 20
	}
	if opts.Logger == nil {
		opts.Logger = s.log
	}
	h := &Handler{s: s, opts: opts, mux: http.NewServeMux(), log: opts.Logger, clients: map[string]*clientState{}}
	h.handle("GET /.well-known/scitt-keys", "keys", h.keys)
	h.handle("GET /.well-known/scitt-keys/{kid}", "key", h.key)
	h.handle("GET /.well-known/transparency-configuration", "configuration", h.configuration)
	h.handle("POST /entries", "register", h.register)
	// Both cost CPU per request (a receipt signature, a scan of the audit
	// trail), so they share the per-client limit with registrations.
	h.handle("GET /entries/{id}", "entry", h.limited(h.entry))
	h.handle("GET /entries/{id}/witnessed-receipt", "witnessed-receipt", h.limited(h.witnessedReceipt))
	h.handle("GET /entries/{id}/tlog-proof", "tlog-proof", h.limited(h.tlogProof))
	h.handle("GET /audit", "audit", h.limited(h.auditQuery))
	h.handle("GET /checkpoint", "checkpoint", h.checkpoint)
	h.handle("GET /tile/{rest...}", "tile", h.tile)
	h.handle("/", "other", func(w http.ResponseWriter, r *http.Request) error {
		return &httpError{404, &Problem{"Not Found", "no such resource " + r.URL.Path}}
	})
	return h
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) { w.code = code; w.ResponseWriter.WriteHeader(code) }

func (h *Handler) handle(pattern, route string, f func(http.ResponseWriter, *http.Request) error) {
	h.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w, code: 200}
		if err := f(sw, r); err != nil {
			h.writeError(sw, r, err)
		}
		h.s.metrics.httpRequests.WithLabelValues(route, strconv.Itoa(sw.code)).Inc()
	})
}

// httpError carries a status and problem chosen by a handler.
type httpError struct {
	code int
	p    *Problem
}

func (e *httpError) Error() string { return e.p.Error() }

// writeError maps err to a status and concise problem details. This switch
// is the only place statuses for errors are chosen.
func (h *Handler) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var he *httpError
	var mbe *http.MaxBytesError
	code, title, retry := http.StatusInternalServerError, "Internal Error", false
	switch {
	case errors.As(err, &he):
		code, title = he.code, he.p.Title
		if he.code == http.StatusTooManyRequests && w.Header().Get("Retry-After") == "" {
			retry = true
		}
	case errors.Is(err, ErrUnsupportedMediaType):
		code, title = http.StatusUnsupportedMediaType, "Unsupported Media Type"
	case errors.Is(err, ErrUnknownCritical):
		code, title = http.StatusBadRequest, "Unknown Critical Header"
	case errors.As(err, &mbe), errors.Is(err, ErrTooLarge):
		code, title = http.StatusRequestEntityTooLarge, "Payload Too Large"
	case errors.Is(err, ErrPayloadMissing):
		code, title = http.StatusBadRequest, "Payload Missing"
	case errors.Is(err, ErrMalformed):
		code, title = http.StatusBadRequest, "Malformed request"
	case errors.Is(err, ErrBadAlgorithm):
		code, title = http.StatusBadRequest, "Bad Signature Algorithm"
	case errors.Is(err, ErrBadSignature), errors.Is(err, ErrRejected):
		code, title = http.StatusBadRequest, "Rejected"
	case errors.Is(err, ErrNotFound):
		code, title = http.StatusNotFound, "Not Found"
	case errors.Is(err, tessera.ErrPushback):
		code, title, retry = http.StatusTooManyRequests, "Too Many Requests", true
	case errors.Is(err, ErrClosed), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		code, title, retry = http.StatusServiceUnavailable, "Service Unavailable", true
	default:
		h.log.ErrorContext(r.Context(), "request failed", "path", r.URL.Path, "err", err)
	}
	detail := err.Error()
	if he != nil {
		detail = he.p.Detail
	}
	if retry {
		w.Header().Set("Retry-After", "1")
	}
	w.Header().Set("Content-Type", ProblemContentType)
	w.WriteHeader(code)
	_, _ = w.Write((&Problem{Title: title, Detail: detail}).encode())
}

func writeBody(w http.ResponseWriter, code int, ctype string, b []byte) error {
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(code)
	_, _ = w.Write(b)
	return nil
}

func (h *Handler) keys(w http.ResponseWriter, r *http.Request) error {
	b, err := coreEnc.Marshal([]rawCBOR{h.s.ReceiptKey().COSEKey()})
	if err != nil {
		return err
	}
	return writeBody(w, 200, "application/cbor", b)
}

type rawCBOR []byte

func (r rawCBOR) MarshalCBOR() ([]byte, error) { return r, nil }

func (h *Handler) key(w http.ResponseWriter, r *http.Request) error {
	k := h.s.ReceiptKey()
	kid := r.PathValue("kid")
	// SPEC: kids that are not URL-safe are sent base64url without padding;
	// Vigil also accepts hex.
	b, err := base64.RawURLEncoding.DecodeString(kid)
	if err != nil || string(b) != string(k.KID()) {
		if b, err = hex.DecodeString(kid); err != nil || string(b) != string(k.KID()) {
			return &httpError{404, &Problem{"No such key", "no receipt key with kid " + kid}}
		}
	}
	return writeBody(w, 200, "application/cbor", k.COSEKey())
}

// TransparencyConfiguration is the (vendor-specific) body of
// /.well-known/transparency-configuration (SCRAPI -05). Algorithms are
// those accepted for signed statements, ReceiptAlgorithms the one receipts
// are signed with.
type TransparencyConfiguration struct {
	Issuer               string   `cbor:"issuer"`
	Origin               string   `cbor:"origin"`
	RegistrationEndpoint string   `cbor:"registration_endpoint"`
	KeysEndpoint         string   `cbor:"scitt_keys"`
	CheckpointEndpoint   string   `cbor:"checkpoint"`
	Algorithms           []string `cbor:"supported_signature_algorithms"`
	ReceiptAlgorithms    []string `cbor:"receipt_signature_algorithms"`
	VDS                  []int    `cbor:"receipt_vds"`
	// Kinds are the content types (or patterns such as application/*+json)
	// the registration policy accepts from some issuer.
	Kinds []string `cbor:"statement_content_types"`
}

func (h *Handler) configuration(w http.ResponseWriter, r *http.Request) error {
	c := TransparencyConfiguration{
		Issuer: h.s.ReceiptKey().Name, Origin: h.s.Origin(),
		RegistrationEndpoint: "/entries", KeysEndpoint: "/.well-known/scitt-keys", CheckpointEndpoint: "/checkpoint",
		Algorithms: statementAlgorithms, ReceiptAlgorithms: []string{h.s.ReceiptKey().Algorithm().String()}, VDS: []int{1},
	}
	// What the policy accepts: its content types and patterns.
	if h.s.cfg.Policy != nil {
		c.Kinds = h.s.cfg.Policy.ContentTypes()
	}
	b, err := coreEnc.Marshal(c)
	if err != nil {
		return err
	}
	return writeBody(w, 200, "application/cbor", b)
}

func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func (h *Handler) register(w http.ResponseWriter, r *http.Request) error {
	ip := clientIP(r)
	if wait := h.admitRegistration(r.Context(), ip); wait > 0 {
		// SPEC: rate-limited clients SHOULD get 429 + Retry-After (SCRAPI).
		w.Header().Set("Retry-After", strconv.Itoa(int((wait+time.Second-1)/time.Second)))
		return &httpError{http.StatusTooManyRequests, &Problem{"Too Many Requests", "registration rate limit exceeded for this address"}}
	}
	reg, err := h.parseAndRegister(w, r, ip)
	if err != nil && !errors.Is(err, tessera.ErrPushback) && !errors.Is(err, ErrClosed) {
		h.chargeRejection(ip)
	}
	if err != nil {
		return err
	}
	loc := "/entries/" + reg.ID
	w.Header().Set("Location", loc)
	ctx, cancel := context.WithTimeout(r.Context(), h.opts.SyncWait)
	defer cancel()
	rcpt, err := h.s.Wait(ctx, reg)
	switch {
	case errors.Is(err, ErrPending):
		// Answer only once the entry is durable, so a 303 is never lost
		// to a crash.
		dctx, dcancel := context.WithTimeout(r.Context(), 30*time.Second)
		defer dcancel()
		if err := h.s.Durable(dctx, reg); err != nil {
			w.Header().Del("Location")
			return err
		}
		// SPEC: asynchronous registration: 303 See Other + Location.
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusSeeOther)
		return nil
	case err != nil:
		w.Header().Del("Location")
		return err
	}
	// A repeated registration gets the same answer as the first: 201, the
	// entry's Location and its receipt.
	return writeBody(w, http.StatusCreated, "application/cose", rcpt)
}

// parseAndRegister reads the request body and registers it; every
// rejection is in the audit trail.
func (h *Handler) parseAndRegister(w http.ResponseWriter, r *http.Request, ip string) (*Registration, error) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/cose" {
		err := fmt.Errorf("%w: Content-Type %q, want application/cose", ErrUnsupportedMediaType, r.Header.Get("Content-Type"))
		h.s.RecordRejection(r.Context(), err, ip)
		return nil, err
	}
	limit := int64(DefaultMaxStatementBytes)
	if h.s.cfg.Policy != nil {
		limit = int64(h.s.cfg.Policy.MaxStatementBytes)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		h.s.RecordRejection(r.Context(), err, ip)
		return nil, err
	}
	return h.s.Register(r.Context(), body, ip)
}

func (h *Handler) entry(w http.ResponseWriter, r *http.Request) error {
	id := strings.ToLower(r.PathValue("id"))
	rcpt, err := h.s.Receipt(r.Context(), id)
	loc := "/entries/" + id
	switch {
	case errors.Is(err, ErrPending):
		// SPEC: still running: 302 Found + Location + Retry-After.
		w.Header().Set("Location", loc)
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusFound)
		return nil
	case errors.Is(err, ErrNotFound):
		return &httpError{404, &Problem{"Not Found", "no entry " + id}}
	case err != nil:
		return err
	}
	w.Header().Set("Location", loc)
	return writeBody(w, 200, "application/cose", rcpt)
}

func (h *Handler) checkpoint(w http.ResponseWriter, r *http.Request) error {
	cp, err := h.s.reader.ReadCheckpoint(r.Context())
	if errors.Is(err, os.ErrNotExist) || (err == nil && len(cp) == 0) {
		return &httpError{404, &Problem{"Not Found", "no checkpoint published yet"}}
	}
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-cache")
	return writeBody(w, 200, "text/plain; charset=utf-8", cp)
}

// tile serves tile/<L>/<N>[.p/<W>] and tile/entries/<N>[.p/<W>].
func (h *Handler) tile(w http.ResponseWriter, r *http.Request) error {
	rest := r.PathValue("rest")
	level, index, ok := strings.Cut(rest, "/")
	notFound := &httpError{404, &Problem{"Not Found", "no such tile " + rest}}
	if !ok {
		return notFound
	}
	var b []byte
	var err error
	if level == "entries" {
		var n uint64
		var p uint8
		if n, p, err = layout.ParseTileIndexPartial(index); err != nil {
			return notFound
		}
		b, err = h.s.reader.ReadEntryBundle(r.Context(), n, p)
	} else {
		var l, n uint64
		var p uint8
		if l, n, p, err = layout.ParseTileLevelIndexPartial(level, index); err != nil {
			return notFound
		}
		b, err = h.s.reader.ReadTile(r.Context(), l, n, p)
	}
	if errors.Is(err, os.ErrNotExist) || (err == nil && len(b) == 0) {
		return notFound
	}
	if err != nil {
		return fmt.Errorf("reading tile: %w", err)
	}
	w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	if level == "entries" && acceptsGzip(r) {
		// SPEC: entry bundles SHOULD be HTTP-compressed (tlog-tiles).
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		_, _ = zw.Write(b)
		if err := zw.Close(); err == nil {
			w.Header().Set("Content-Encoding", "gzip")
			w.Header().Add("Vary", "Accept-Encoding")
			b = buf.Bytes()
		}
	}
	return writeBody(w, 200, "application/octet-stream", b)
}

func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		enc, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(enc), "gzip") && strings.ReplaceAll(params, " ", "") != "q=0" {
			return true
		}
	}
	return false
}
