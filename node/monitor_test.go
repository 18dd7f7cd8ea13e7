package node_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"

	"github.com/vigilnet/vigil/node"
	"github.com/vigilnet/vigil/testnet/scriptlog"
	"github.com/vigilnet/vigil/tlog"
)

// pushTo sends l's checkpoint at size n, with a proof from old, to url and
// returns the response's status, body and header.
func pushTo(t *testing.T, c *http.Client, url string, l *scriptlog.Log, old, n uint64) (int, string, http.Header) {
	t.Helper()
	return request(t, c, http.MethodPost, url, addCheckpointBody(t, l, old, n), nil)
}

func request(t *testing.T, c *http.Client, method, url string, body []byte, hdr map[string]string) (int, string, http.Header) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b), resp.Header
}

// TestNodeMonitoringAPI checks the C2SP tlog-witness monitoring endpoint at
// the default prefix: 404 before the witness cosigned a log, then the
// checkpoint with the log's signature and the witness's cosignature, which a
// C2SP client verifies with nothing but the two keys.
func TestNodeMonitoringAPI(t *testing.T) {
	a, b := newLog(t, "example.com/a"), newLog(t, "example.com/b")
	cfg, vkey := newConfig(t, rosterOf(a, b))
	tn := startNode(t, cfg, vkey)
	base := tn.n.URL() + node.DefaultMonitoringPrefix
	idA := tlog.LogID(a.Origin())

	code, body := tn.get(node.DefaultMonitoringPrefix + "/" + idA + "/checkpoint")
	requireStatus(t, "never cosigned", code, body, http.StatusNotFound)
	if !strings.Contains(body, "never cosigned example.com/a") {
		t.Errorf("404 reason %q does not say the log was never cosigned", body)
	}

	code, body = tn.push(a, 0, 5)
	requireStatus(t, "push", code, body, http.StatusOK)
	code, body = tn.push(a, 5, 8)
	requireStatus(t, "push", code, body, http.StatusOK)

	code, got, hdr := request(t, nil, http.MethodGet, base+"/"+idA+"/checkpoint", nil, nil)
	requireStatus(t, "monitoring GET", code, got, http.StatusOK)
	if ct := hdr.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type %q", ct)
	}
	logV, err := note.NewVerifier(a.VerifierKey())
	if err != nil {
		t.Fatal(err)
	}
	witV, err := fnote.NewVerifierForCosignatureV1(vkey)
	if err != nil {
		t.Fatal(err)
	}
	n, err := note.Open([]byte(got), note.VerifierList(logV, witV))
	if err != nil {
		t.Fatalf("monitoring checkpoint does not verify with the log and witness keys: %v\n%s", err, got)
	}
	if len(n.Sigs) != 2 || n.Sigs[0].Name != a.Origin() || n.Sigs[1].Name != witV.Name() {
		t.Fatalf("signatures %+v: want the log's and the witness's", n.Sigs)
	}
	cp, err := a.CheckpointAt(8)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(got, string(cp[:bytes.Index(cp, []byte("\n\n"))+2])) {
		t.Fatalf("monitoring checkpoint is not the size-8 checkpoint:\n%s", got)
	}

	// The feed's path keeps serving it.
	code, body = tn.get("/v1/logs/" + idA + "/checkpoint")
	requireStatus(t, "feed checkpoint", code, body, http.StatusOK)

	for _, tc := range []struct {
		name, method, path string
		want               int
	}{
		{"log never cosigned", "GET", "/" + tlog.LogID(b.Origin()) + "/checkpoint", 404},
		{"log not configured", "GET", "/" + tlog.LogID("example.com/zzz") + "/checkpoint", 404},
		{"upper-case hex", "GET", "/" + strings.ToUpper(idA) + "/checkpoint", 404},
		{"origin instead of hash", "GET", "/example.com%2Fa/checkpoint", 404},
		{"other path", "GET", "/" + idA + "/checkpoints", 404},
		{"wrong method", "POST", "/" + idA + "/checkpoint", 405},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body, hdr := request(t, nil, tc.method, base+tc.path, nil, nil)
			requireStatus(t, tc.path, code, body, tc.want)
			if tc.want == 405 && hdr.Get("Allow") == "" {
				t.Error("405 without Allow")
			}
		})
	}

	// /v1/info advertises the prefixes.
	code, body = tn.get("/v1/info")
	requireStatus(t, "info", code, body, http.StatusOK)
	var info node.Info
	if err := json.Unmarshal([]byte(body), &info); err != nil {
		t.Fatal(err)
	}
	if info.Witness == nil || info.Witness.MonitoringPrefix != node.DefaultMonitoringPrefix || info.Witness.SubmissionPrefix != "" || info.Witness.VKey != vkey {
		t.Fatalf("info %s", body)
	}
	// Both keys sign by default: the Ed25519 vkey first, then ML-DSA-44.
	if len(info.Witness.VKeys) != 2 || info.Witness.VKeys[0] != vkey || !strings.Contains(info.Witness.VKeys[1], "+"+info.Witness.Name+"+") && !strings.HasPrefix(info.Witness.VKeys[1], info.Witness.Name+"+") {
		t.Fatalf("info vkeys %q, want the Ed25519 and the ML-DSA-44 vkey", info.Witness.VKeys)
	}
}

// TestNodeWitnessPrefixes serves both APIs under one configured prefix.
func TestNodeWitnessPrefixes(t *testing.T) {
	a := newLog(t, "example.com/a")
	cfg, vkey := newConfig(t, rosterOf(a))
	cfg.Witness.SubmissionPrefix = "/witness"
	cfg.Witness.MonitoringPrefix = "/witness"
	tn := startNode(t, cfg, vkey)

	code, body, _ := pushTo(t, nil, tn.n.URL()+"/witness/add-checkpoint", a, 0, 3)
	requireStatus(t, "push under the prefix", code, body, http.StatusOK)
	code, body, _ = pushTo(t, nil, tn.n.URL()+"/add-checkpoint", a, 3, 4)
	requireStatus(t, "push at the root", code, body, http.StatusNotFound)
	code, body = tn.get("/witness/" + tlog.LogID(a.Origin()) + "/checkpoint")
	requireStatus(t, "monitoring under the prefix", code, body, http.StatusOK)
	code, body = tn.get("/monitoring/" + tlog.LogID(a.Origin()) + "/checkpoint")
	requireStatus(t, "default monitoring prefix", code, body, http.StatusNotFound)

	code, body = tn.get("/v1/info")
	requireStatus(t, "info", code, body, http.StatusOK)
	if !strings.Contains(body, `"submission_prefix": "/witness"`) || !strings.Contains(body, `"monitoring_prefix": "/witness"`) {
		t.Fatalf("info does not advertise the prefixes: %s", body)
	}
}

func TestConfigWitnessPrefixes(t *testing.T) {
	for _, tc := range []struct {
		sub, mon string
		ok       bool
	}{
		{"", "/monitoring", true},
		{"/w", "/w", true},
		{"/a/b-c_d.e~f", "/m", true},
		{"", "", true}, // the zero value means the default
		{"w", "/m", false},
		{"/w/", "/m", false},
		{"/w", "/v1/logs", false},
		{"/v1", "/m", false},
		{"/w", "/m/../x", false},
		{"/w", "/m{x}", false},
		{"/w", "/m x", false},
		{"//w", "/m", false},
	} {
		cfg := node.DefaultConfig()
		cfg.Witness.SubmissionPrefix, cfg.Witness.MonitoringPrefix = tc.sub, tc.mon
		if err := cfg.Validate(); (err == nil) != tc.ok {
			t.Errorf("submission %q monitoring %q: Validate = %v, want ok %v", tc.sub, tc.mon, err, tc.ok)
		}
	}
	cfg := node.DefaultConfig()
	if cfg.LogListRefresh != 24*time.Hour {
		t.Errorf("default log_list_refresh %s", cfg.LogListRefresh)
	}
	for _, d := range []time.Duration{-time.Hour, 8 * 24 * time.Hour} {
		cfg.LogListRefresh = d
		if cfg.Validate() == nil {
			t.Errorf("log_list_refresh %s accepted", d)
		}
	}
}
