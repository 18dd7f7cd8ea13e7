package feed_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/vigilnet/vigil/feed"
	"github.com/vigilnet/vigil/tlog"
)

func TestEvidenceEndpoints(t *testing.T) {
	e := newEnv(t, envOptions{logs: 1, witnesses: 1})
	code, _, body := e.get("/v1/evidence")
	if code != 200 || strings.TrimSpace(body) != "{\n  \"evidence\": []\n}" {
		t.Errorf("empty list: %d %q", code, body)
	}
	origin := e.logs[0].Origin()
	for i := range 2 {
		e.src.addEvidence(evidenceFor(origin, i), []byte(fmt.Sprintf("vigil-evidence/v1\nfile %d\n", i)))
	}
	code, _, body = e.get("/v1/evidence")
	var list feed.EvidenceList
	if err := json.Unmarshal([]byte(body), &list); code != 200 || err != nil || len(list.Evidence) != 2 {
		t.Fatalf("list: %d %v %s", code, err, body)
	}
	if list.Evidence[0].ID != fmt.Sprintf("%064x", 2) || list.Evidence[0].LogID != tlog.LogID(origin) {
		t.Errorf("list is not newest first with log IDs: %s", body)
	}

	id := fmt.Sprintf("%064x", 1)
	file := "vigil-evidence/v1\nfile 0\n"
	sum := sha256.Sum256([]byte(file))
	tests := []struct {
		name   string
		query  string
		hdr    []string
		raw    bool
		status int
	}{
		{"json by default", "", nil, false, 200},
		{"json asked", "?format=json", []string{"Accept", "application/octet-stream"}, false, 200},
		{"raw by query", "?format=raw", nil, true, 200},
		{"raw by Accept", "", []string{"Accept", feed.EvidenceMediaType}, true, 200},
		{"raw by octet-stream", "", []string{"Accept", "application/octet-stream"}, true, 200},
		{"json preferred in Accept", "", []string{"Accept", "application/json, text/plain"}, false, 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, h, body := e.get("/v1/evidence/"+id+tc.query, tc.hdr...)
			if code != tc.status {
				t.Fatalf("status %d: %s", code, body)
			}
			cc := h.Get("Cache-Control")
			if !strings.Contains(cc, "max-age=31536000") || h.Get("ETag") == "" || !strings.Contains(h.Get("Vary"), "Accept") {
				t.Errorf("caching: Cache-Control %q, ETag %q, Vary %q", cc, h.Get("ETag"), h.Get("Vary"))
			}
			if tc.raw {
				if body != file || h.Get("Content-Type") != feed.EvidenceMediaType || !strings.Contains(cc, "immutable") {
					t.Errorf("raw: %q %q", h.Get("Content-Type"), body)
				}
			} else {
				var d feed.EvidenceDetail
				if err := json.Unmarshal([]byte(body), &d); err != nil || d.ID != id || string(d.File) != file || d.FileSHA256 != hex.EncodeToString(sum[:]) || d.LogID != tlog.LogID(origin) {
					t.Errorf("json: %v %s", err, body)
				}
			}
			code, _, _ = e.get("/v1/evidence/"+id+tc.query, append([]string{"If-None-Match", h.Get("ETag")}, tc.hdr...)...)
			if code != 304 {
				t.Errorf("If-None-Match: %d, want 304", code)
			}
		})
	}
	errs := []struct {
		name, path string
		code       int
		reason     string
	}{
		{"unknown", "/v1/evidence/" + strings.Repeat("0", 64), 404, "no evidence with ID"},
		{"bad id", "/v1/evidence/a%20b", 400, "bad evidence ID"},
		{"too long", "/v1/evidence/" + strings.Repeat("a", 129), 400, "bad evidence ID"},
		{"bad format", "/v1/evidence/" + id + "?format=xml", 400, "bad format"},
	}
	for _, tc := range errs {
		t.Run(tc.name, func(t *testing.T) {
			code, _, body := e.get(tc.path)
			if code != tc.code || !strings.Contains(body, tc.reason) {
				t.Errorf("%d %q, want %d with %q", code, body, tc.code, tc.reason)
			}
		})
	}
}

func TestPeers(t *testing.T) {
	e := newEnv(t, envOptions{logs: 1, witnesses: 1})
	if code, _, body := e.get("/v1/peers"); code != 200 || !strings.Contains(body, `"peers": []`) {
		t.Errorf("no peers: %d %s", code, body)
	}
	want := []feed.Peer{
		{ID: "12D3KooWA", Name: "w0", Role: "witness", Score: 12.5, Connected: true, Addrs: []string{"/ip4/127.0.0.1/tcp/4001"}},
		{ID: "12D3KooWB", Role: "observer", Score: -3},
	}
	e.src.setPeers(want)
	code, _, body := e.get("/v1/peers")
	var got feed.PeersResponse
	if err := json.Unmarshal([]byte(body), &got); code != 200 || err != nil || fmt.Sprint(got.Peers) != fmt.Sprint(want) {
		t.Errorf("peers: %d %v %s", code, err, body)
	}
}
