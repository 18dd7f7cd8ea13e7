package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
)

// selfSignedCert writes a self-signed certificate for 127.0.0.1 and its key
// to dir and returns their paths and a client that trusts only it.
func selfSignedCert(t *testing.T, dir string) (certPath, keyPath string, client *http.Client) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "vigil cli test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
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
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	t.Cleanup(tr.CloseIdleConnections)
	return certPath, keyPath, &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// runServer runs a long-lived vigil command in process until the test ends
// and returns the https:// URL it prints.
func runServer(t *testing.T, run func(context.Context, *cliEnv, []string) error, args []string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stdout := &lockedBuffer{changed: make(chan struct{})}
	env := &cliEnv{stdout: stdout, stderr: &lockedBuffer{changed: make(chan struct{})}}
	done := make(chan error, 1)
	go func() { done <- run(ctx, env, args) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server: %v", err)
		}
	})
	return stdout.waitFor(t, regexp.MustCompile(`listening on (https://\S+)\n`), done)[1]
}

func getOK(t *testing.T, c *http.Client, url string) string {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %q", url, resp.Status, b)
	}
	return string(b)
}

// TestLogTLS runs vigil log --tls-cert --tls-key and reads it with a TLS
// client that trusts only the test's self-signed certificate.
func TestLogTLS(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "ts")
	if code, _, stderr := runVigil("log", "--init", "--data", data, "--origin", "tls.vigil.test/log"); code != 0 {
		t.Fatalf("log --init: %s", stderr)
	}
	cert, key, client := selfSignedCert(t, dir)
	if code, _, stderr := runVigil("log", "--data", data, "--tls-cert", cert, "--listen", "127.0.0.1:0"); code != 2 || !strings.Contains(stderr, "--tls-key") {
		t.Fatalf("--tls-cert without --tls-key: exit %d %s", code, stderr)
	}
	url := runServer(t, runLog, []string{"--data", data, "--listen", "127.0.0.1:0", "--tls-cert", cert, "--tls-key", key})
	if body := getOK(t, client, url+"/healthz"); body != "ok\n" {
		t.Fatalf("healthz %q", body)
	}
	if body := getOK(t, client, url+"/.well-known/transparency-configuration"); len(body) == 0 {
		t.Fatal("empty transparency configuration")
	}
	if _, err := http.Get(url + "/healthz"); err == nil {
		t.Fatal("a client that does not trust the certificate connected")
	}
}

// TestNodeTLSFlags runs vigil node --tls-cert --tls-key.
func TestNodeTLSFlags(t *testing.T) {
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys")
	if code, _, stderr := runVigil("keygen", "--name", "witness.test/tls", "--out", keys); code != 0 {
		t.Fatalf("keygen: %s", stderr)
	}
	_, vkey, err := note.GenerateKey(rand.Reader, "example.com/tls-log")
	if err != nil {
		t.Fatal(err)
	}
	rosterPath := filepath.Join(dir, "roster.txt")
	if err := os.WriteFile(rosterPath, []byte("log "+vkey+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cert, key, client := selfSignedCert(t, dir)
	url := runServer(t, runNode, []string{"--listen", "127.0.0.1:0", "--data", filepath.Join(dir, "data"), "--keys", keys,
		"--roster", rosterPath, "--tls-cert", cert, "--tls-key", key, "--log-level", "warn"})
	if body := getOK(t, client, url+"/healthz"); body != "ok\n" {
		t.Fatalf("healthz %q", body)
	}
	if body := getOK(t, client, url+"/v1/info"); !strings.Contains(body, `"monitoring_prefix": "/monitoring"`) {
		t.Fatalf("info %s", body)
	}
}
