package node_test

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigilnet/vigil/internal/testcert"
	"github.com/vigilnet/vigil/node"
	"github.com/vigilnet/vigil/tlog"
)

// TestNodeTLS serves the node's API over TLS with a certificate made in
// the test, and checks it with real TLS clients.
func TestNodeTLS(t *testing.T) {
	a := newLog(t, "example.com/a")
	cfg, vkey := newConfig(t, rosterOf(a))
	tc := testcert.New(t)
	cfg.HTTP.TLSCert, cfg.HTTP.TLSKey = tc.WriteFiles(t, t.TempDir())
	tn := startNode(t, cfg, vkey)
	if !strings.HasPrefix(tn.n.URL(), "https://127.0.0.1:") {
		t.Fatalf("URL %s is not https", tn.n.URL())
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: tc.Pool()}}}
	defer client.CloseIdleConnections()

	code, body, _ := request(t, client, http.MethodGet, tn.n.URL()+"/healthz", nil, nil)
	requireStatus(t, "healthz over TLS", code, body, http.StatusOK)
	code, body, _ = pushTo(t, client, tn.n.URL()+"/add-checkpoint", a, 0, 3)
	requireStatus(t, "add-checkpoint over TLS", code, body, http.StatusOK)
	code, body, _ = request(t, client, http.MethodGet, tn.n.URL()+node.DefaultMonitoringPrefix+"/"+tlog.LogID(a.Origin())+"/checkpoint", nil, nil)
	requireStatus(t, "monitoring over TLS", code, body, http.StatusOK)

	// A client that does not trust the certificate fails the handshake.
	untrusting := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: x509.NewCertPool()}}}
	if resp, err := untrusting.Get(tn.n.URL() + "/healthz"); err == nil {
		resp.Body.Close()
		t.Fatal("a client without the certificate connected")
	}
	// Plain HTTP on the TLS port gets 400, not the API.
	code, body = httpDo(t, http.MethodGet, "http"+strings.TrimPrefix(tn.n.URL(), "https")+"/healthz", nil)
	if code != http.StatusBadRequest {
		t.Fatalf("plain HTTP to the TLS listener: %d %q", code, body)
	}
	// The connection limiter still sees TLS connections: a request that
	// arrived through it counts in its metrics.
	code, m, _ := request(t, client, http.MethodGet, tn.n.URL()+"/metrics", nil, nil)
	requireStatus(t, "metrics", code, m, http.StatusOK)
	if !hasMetric(m, `vigil_witness_add_checkpoint_requests_total{code="200"} 1`) {
		t.Error("metrics over TLS lack the add-checkpoint request")
	}
	// The /metrics request itself is in its handler on a tracked connection.
	if !hasMetric(m, `vigil_http_connections{state="handler"} 1`) {
		t.Errorf("the connection limiter does not track TLS connections:\n%s", grep(m, "vigil_http_connections{"))
	}
}

func TestNodeTLSConfigErrors(t *testing.T) {
	cfg := node.DefaultConfig()
	cfg.HTTP.TLSCert = "cert.pem"
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "tls_key") {
		t.Fatalf("tls_cert without tls_key: %v", err)
	}
	a := newLog(t, "example.com/a")
	cfg, _ = newConfig(t, rosterOf(a))
	cfg.HTTP.TLSCert, cfg.HTTP.TLSKey = filepath.Join(t.TempDir(), "none.pem"), filepath.Join(t.TempDir(), "none.key")
	ln := listen(t)
	defer ln.Close()
	if _, err := node.New(cfg, node.Deps{Listener: ln, Logger: testLogger(t)}); err == nil || !strings.Contains(err.Error(), "TLS") {
		t.Fatalf("missing certificate files: %v", err)
	}
}

func grep(text, sub string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
