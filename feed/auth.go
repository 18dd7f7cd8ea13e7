package feed

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// TokenCookie carries a bearer token for browsers (the dashboard and its
// EventSource cannot send an Authorization header). POST /feed/login sets it.
const TokenCookie = "vigil_feed_token"

// access decides who may read the feed and which browser origins may read it
// cross-origin. The zero configuration is public, with CORS off.
type access struct {
	tokens  [][32]byte // SHA-256 of each token: compared in constant time
	origins []string
	anyOrig bool

	checkpointCache []string // Cache-Control of the checkpoint hot path
}

func newAccess(tokens, origins []string) (*access, error) {
	a := &access{}
	for _, t := range tokens {
		if len(t) < 16 {
			return nil, errors.New("feed: every token must be at least 16 characters")
		}
		a.tokens = append(a.tokens, sha256.Sum256([]byte(t)))
	}
	for _, o := range origins {
		if o == "*" {
			a.anyOrig = true
			continue
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
			return nil, fmt.Errorf("feed: CORS origin %q is not * or scheme://host[:port]", o)
		}
		a.origins = append(a.origins, strings.TrimSuffix(o, "/"))
	}
	a.checkpointCache = []string{a.cacheControl(checkpointMaxAge)}
	return a, nil
}

func (a *access) public() bool { return len(a.tokens) == 0 }

// allowed reports whether r may read the feed: always when no tokens are
// configured, else with "Authorization: Bearer <token>" or the token cookie.
func (a *access) allowed(r *http.Request) bool {
	if a.public() {
		return true
	}
	if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		return a.valid(strings.TrimSpace(tok))
	}
	if c, err := r.Cookie(TokenCookie); err == nil {
		return a.valid(c.Value)
	}
	return false
}

func (a *access) valid(tok string) bool {
	h := sha256.Sum256([]byte(tok))
	ok := 0
	for _, t := range a.tokens {
		ok |= subtle.ConstantTimeCompare(h[:], t[:])
	}
	return ok == 1
}

func (a *access) challenge(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="vigil feed"`)
}

// cacheControl returns a Cache-Control value: shared caches may keep public
// responses, never token-protected ones.
func (a *access) cacheControl(maxAge time.Duration) string {
	scope := "public"
	if !a.public() {
		scope = "private"
	}
	if maxAge <= 0 {
		return "no-cache"
	}
	return scope + ", max-age=" + strconv.Itoa(int(maxAge/time.Second))
}

func (a *access) corsEnabled() bool { return a.anyOrig || len(a.origins) > 0 }

// allowOrigin returns the Access-Control-Allow-Origin value for origin, or "".
func (a *access) allowOrigin(origin string) string {
	switch {
	case origin == "":
		return ""
	case slices.Contains(a.origins, origin):
		return origin
	case a.anyOrig && a.public():
		return "*"
	case a.anyOrig:
		// With tokens, reflect the origin so credentials can be used.
		return origin
	}
	return ""
}

// cors adds the CORS response headers for an allowed origin. With no
// configured origins it adds nothing: browsers then refuse cross-origin reads.
func (a *access) cors(w http.ResponseWriter, r *http.Request) {
	if !a.corsEnabled() {
		return
	}
	h := w.Header()
	h.Add("Vary", "Origin")
	if allow := a.allowOrigin(r.Header.Get("Origin")); allow != "" {
		h.Set("Access-Control-Allow-Origin", allow)
		h.Set("Access-Control-Expose-Headers", "ETag, Link, Retry-After")
		if !a.public() {
			h.Set("Access-Control-Allow-Credentials", "true")
		}
	}
}

// preflight answers CORS preflight requests for the read API.
func (a *access) preflight(w http.ResponseWriter, r *http.Request) {
	a.cors(w, r)
	if a.allowOrigin(r.Header.Get("Origin")) != "" {
		h := w.Header()
		h.Set("Access-Control-Allow-Methods", "GET, OPTIONS")
		h.Set("Access-Control-Allow-Headers", "Authorization, Last-Event-ID, If-None-Match, Accept")
		h.Set("Access-Control-Max-Age", "600")
	}
	w.WriteHeader(http.StatusNoContent)
}

// serveLogin exchanges a token typed into the dashboard's form for a cookie.
func (f *Feed) serveLogin(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
	tok := strings.TrimSpace(r.PostFormValue("token"))
	if f.auth.public() || !f.auth.valid(tok) {
		f.auth.challenge(w)
		f.renderLogin(w, r, http.StatusUnauthorized, "That token is not valid.")
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name:     TokenCookie,
		Value:    tok,
		Path:     "/",
		HttpOnly: true,
		Secure:   r.TLS != nil,
		SameSite: http.SameSiteStrictMode,
		MaxAge:   int((30 * 24 * time.Hour) / time.Second),
	})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// Protect wraps h (the node's /metrics, /v1/info) with the feed's access
// control: with tokens configured a request needs one, else it gets 401
// with the JSON error shape; with none h is public.
func (f *Feed) Protect(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !f.auth.allowed(r) {
			f.auth.challenge(w)
			f.fail(w, r, http.StatusUnauthorized, errors.New("a bearer token is required"))
			return
		}
		h.ServeHTTP(w, r)
	})
}
