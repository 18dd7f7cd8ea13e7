package feed_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

const goodToken = "correct-horse-battery-staple"

func TestTokens(t *testing.T) {
	e := newEnv(t, envOptions{logs: 1, witnesses: 1, tokens: []string{goodToken, "another-long-token-1234"}})
	e.token = ""
	paths := []string{"/v1/logs", "/v1/logs/x/checkpoint", "/v1/logs/x/checkpoints", "/v1/evidence", "/v1/evidence/x", "/v1/peers", "/v1/events"}
	for _, p := range paths {
		tests := []struct {
			name string
			hdr  []string
			code int
		}{
			{"none", nil, 401},
			{"wrong", []string{"Authorization", "Bearer wrong-token-wrong-token"}, 401},
			{"not bearer", []string{"Authorization", "Basic " + goodToken}, 401},
			{"cookie wrong", []string{"Cookie", "vigil_feed_token=nope"}, 401},
		}
		for _, tc := range tests {
			t.Run(p+"/"+tc.name, func(t *testing.T) {
				code, h, body := e.get(p, tc.hdr...)
				if code != tc.code || !strings.HasPrefix(h.Get("WWW-Authenticate"), "Bearer") || !strings.Contains(body, "bearer token") {
					t.Errorf("%d %q %s", code, h.Get("WWW-Authenticate"), body)
				}
			})
		}
	}
	for _, tok := range []string{goodToken, "another-long-token-1234"} {
		if code, h, _ := e.get("/v1/logs", "Authorization", "Bearer "+tok); code != 200 || !strings.HasPrefix(h.Get("Cache-Control"), "private") {
			t.Errorf("token %s: %d, Cache-Control %q", tok, code, h.Get("Cache-Control"))
		}
	}
	// The dashboard asks for the token with a form, then keeps it in a cookie.
	code, _, body := e.get("/")
	if code != 401 || !strings.Contains(body, `<label for="token">`) {
		t.Fatalf("dashboard without token: %d\n%s", code, body)
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.PostForm(e.url+"/feed/login", url.Values{"token": {"wrong"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 || len(resp.Cookies()) != 0 {
		t.Errorf("bad login: %d, cookies %v", resp.StatusCode, resp.Cookies())
	}
	resp, err = c.PostForm(e.url+"/feed/login", url.Values{"token": {goodToken}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cookies := resp.Cookies()
	if resp.StatusCode != 303 || len(cookies) != 1 || !cookies[0].HttpOnly || cookies[0].SameSite != http.SameSiteStrictMode {
		t.Fatalf("login: %d, cookies %v", resp.StatusCode, cookies)
	}
	for _, p := range []string{"/", "/v1/logs"} {
		if code, _, body := e.get(p, "Cookie", cookies[0].String()); code != 200 {
			t.Errorf("%s with the cookie: %d %s", p, code, body)
		}
	}
	// Static assets hold no data and stay public.
	if code, _, _ := e.get("/feed/static/dashboard.css"); code != 200 {
		t.Errorf("static asset: %d", code)
	}
}

func TestCORS(t *testing.T) {
	off := newEnv(t, envOptions{logs: 1, witnesses: 1})
	code, h, _ := off.get("/v1/logs", "Origin", "https://auditor.example")
	if code != 200 || h.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("CORS off: %d, ACAO %q", code, h.Get("Access-Control-Allow-Origin"))
	}
	if resp := do(t, "OPTIONS", off.url+"/v1/logs", "Origin", "https://auditor.example"); resp.StatusCode != 405 {
		t.Errorf("CORS off: preflight %d, want 405", resp.StatusCode)
	}

	on := newEnv(t, envOptions{logs: 1, witnesses: 1, cors: []string{"https://auditor.example", "http://127.0.0.1:8080"}})
	tests := []struct {
		origin, allow string
	}{
		{"https://auditor.example", "https://auditor.example"},
		{"http://127.0.0.1:8080", "http://127.0.0.1:8080"},
		{"https://evil.example", ""},
		{"", ""},
	}
	for _, tc := range tests {
		t.Run("origin "+tc.origin, func(t *testing.T) {
			_, h, _ := on.get("/v1/logs", "Origin", tc.origin)
			if got := h.Get("Access-Control-Allow-Origin"); got != tc.allow || !strings.Contains(h.Get("Vary"), "Origin") {
				t.Errorf("ACAO %q, want %q (Vary %q)", got, tc.allow, h.Get("Vary"))
			}
			resp := do(t, "OPTIONS", on.url+"/v1/logs/x/checkpoint", "Origin", tc.origin, "Access-Control-Request-Headers", "authorization")
			got := resp.Header.Get("Access-Control-Allow-Origin")
			if resp.StatusCode != 204 || got != tc.allow || (tc.allow != "" && !strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), "Authorization")) {
				t.Errorf("preflight %d, ACAO %q, headers %q", resp.StatusCode, got, resp.Header.Get("Access-Control-Allow-Headers"))
			}
		})
	}
	any := newEnv(t, envOptions{logs: 1, witnesses: 1, cors: []string{"*"}})
	if _, h, _ := any.get("/v1/logs", "Origin", "https://anyone.example"); h.Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf("CORS *: ACAO %q", h.Get("Access-Control-Allow-Origin"))
	}
}

func do(t *testing.T, method, u string, hdr ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i+1] != "" {
			req.Header.Set(hdr[i], hdr[i+1])
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}
