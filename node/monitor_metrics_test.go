package node_test

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"image/png"
	"net/http"
	"strings"
	"testing"
)

const feedToken = "a-feed-token-of-some-length"

// TestNodeMetricsBehindTokens: with feed tokens set, /metrics (and
// /v1/info) need one; without tokens they are public.
func TestNodeMetricsBehindTokens(t *testing.T) {
	a := newLog(t, "example.com/a")
	cfg, vkey := newConfig(t, rosterOf(a))
	cfg.Feed.Tokens = []string{feedToken}
	tn := startNode(t, cfg, vkey)
	for _, path := range []string{"/metrics", "/v1/info"} {
		code, body, hdr := request(t, nil, http.MethodGet, tn.n.URL()+path, nil, nil)
		requireStatus(t, path+" without a token", code, body, http.StatusUnauthorized)
		if hdr.Get("WWW-Authenticate") == "" || !strings.Contains(body, `"status":401`) {
			t.Errorf("%s: 401 without a challenge or the JSON error: %q", path, body)
		}
		code, body, _ = request(t, nil, http.MethodGet, tn.n.URL()+path, nil, map[string]string{"Authorization": "Bearer " + feedToken})
		requireStatus(t, path+" with a token", code, body, http.StatusOK)
	}
	// The C2SP endpoints stay open: logs need no token to push.
	code, body := tn.push(a, 0, 2)
	requireStatus(t, "add-checkpoint with tokens set", code, body, http.StatusOK)

	cfg, vkey = newConfig(t, rosterOf(a))
	open := startNode(t, cfg, vkey)
	code, body = open.get("/metrics")
	requireStatus(t, "public /metrics", code, body, http.StatusOK)
}

// TestNodeMetricsListener serves /metrics on its own listener only.
func TestNodeMetricsListener(t *testing.T) {
	a := newLog(t, "example.com/a")
	cfg, vkey := newConfig(t, rosterOf(a))
	cfg.Feed.Tokens = []string{feedToken}
	cfg.HTTP.MetricsListen = "127.0.0.1:0"
	tn := startNode(t, cfg, vkey)
	addr := tn.n.MetricsAddr()
	if addr == nil {
		t.Fatal("no metrics listener")
	}
	code, body := httpDo(t, http.MethodGet, "http://"+addr.String()+"/metrics", nil)
	requireStatus(t, "metrics listener", code, body, http.StatusOK)
	if !hasMetric(body, "vigil_roster_logs 1") {
		t.Error("metrics listener does not serve the node's metrics")
	}
	code, body, _ = request(t, nil, http.MethodGet, tn.n.URL()+"/metrics", nil, map[string]string{"Authorization": "Bearer " + feedToken})
	if code != http.StatusNotFound {
		t.Fatalf("/metrics on the main listener with a separate metrics listener: %d %q", code, body)
	}
}

// TestNodeJSONErrors: every unknown /v1/ path is a JSON 404 and every
// wrong method on a /v1/ route a JSON 405 with Allow.
func TestNodeJSONErrors(t *testing.T) {
	a := newLog(t, "example.com/a")
	cfg, vkey := newConfig(t, rosterOf(a))
	tn := startNode(t, cfg, vkey)
	for _, tc := range []struct {
		method, path string
		want         int
		allow        string
	}{
		{"GET", "/v1/nope", 404, ""},
		{"GET", "/v1/logs/abc/nope", 404, ""},
		{"GET", "/v1/", 404, ""},
		{"POST", "/v1/logs", 405, "GET, HEAD"},
		{"DELETE", "/v1/evidence/abc", 405, "GET, HEAD"},
		{"PUT", "/v1/events", 405, "GET, HEAD"},
		{"POST", "/v1/info", 405, "GET, HEAD"},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			code, body, hdr := request(t, nil, tc.method, tn.n.URL()+tc.path, nil, nil)
			requireStatus(t, tc.path, code, body, tc.want)
			if ct := hdr.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			var e struct {
				Error  string `json:"error"`
				Status int    `json:"status"`
			}
			if err := json.Unmarshal([]byte(body), &e); err != nil || e.Status != tc.want || e.Error == "" {
				t.Errorf("body %q is not the JSON error shape (%v)", body, err)
			}
			if got := hdr.Get("Allow"); got != tc.allow {
				t.Errorf("Allow %q, want %q", got, tc.allow)
			}
		})
	}
}

// TestNodeFavicon: /favicon.ico is a valid icon, public even with tokens,
// and the dashboard links it.
func TestNodeFavicon(t *testing.T) {
	a := newLog(t, "example.com/a")
	cfg, vkey := newConfig(t, rosterOf(a))
	cfg.Feed.Tokens = []string{feedToken}
	tn := startNode(t, cfg, vkey)
	code, body, hdr := request(t, nil, http.MethodGet, tn.n.URL()+"/favicon.ico", nil, nil)
	requireStatus(t, "favicon", code, body, http.StatusOK)
	if hdr.Get("Content-Type") != "image/x-icon" {
		t.Errorf("Content-Type %q", hdr.Get("Content-Type"))
	}
	// ICONDIR (reserved 0, type 1, one image), one entry, then the PNG.
	b := []byte(body)
	if len(b) < 22 || binary.LittleEndian.Uint16(b[2:]) != 1 || binary.LittleEndian.Uint16(b[4:]) != 1 {
		t.Fatalf("not an ICO file: % x", b[:min(len(b), 22)])
	}
	off := binary.LittleEndian.Uint32(b[18:])
	img, err := png.Decode(bytes.NewReader(b[off:]))
	if err != nil || img.Bounds().Dx() != 16 || img.Bounds().Dy() != 16 {
		t.Fatalf("icon image: %v %v", img, err)
	}
	code, page, _ := request(t, nil, http.MethodGet, tn.n.URL()+"/", nil, map[string]string{"Authorization": "Bearer " + feedToken})
	requireStatus(t, "dashboard", code, page, http.StatusOK)
	if !strings.Contains(page, `<link rel="icon" href="/favicon.ico"`) {
		t.Error("the dashboard does not link the icon")
	}
}
