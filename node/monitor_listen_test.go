package node_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigilnet/vigil/node"
	"github.com/vigilnet/vigil/tlog"
)

// selfSigned writes a self-signed certificate for 127.0.0.1 and ::1 and its
// key to dir, returning the paths and a pool that trusts the certificate.
func selfSigned(t *testing.T, dir string) (certPath, keyPath string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "vigil test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPath, keyPath = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeFile(t, certPath, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	writeFile(t, keyPath, string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})))
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certPath, keyPath, pool
}

// TestNodeTLS serves the node's API over TLS with a certificate made in
// the test, and checks it with real TLS clients.
func TestNodeTLS(t *testing.T) {
	a := newLog(t, "example.com/a")
	cfg, vkey := newConfig(t, rosterOf(a))
	var pool *x509.CertPool
	cfg.HTTP.TLSCert, cfg.HTTP.TLSKey, pool = selfSigned(t, t.TempDir())
	tn := startNode(t, cfg, vkey)
	if !strings.HasPrefix(tn.n.URL(), "https://127.0.0.1:") {
		t.Fatalf("URL %s is not https", tn.n.URL())
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
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
