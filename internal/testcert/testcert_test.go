package testcert_test

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/vigilnet/vigil/internal/testcert"
)

// TestCertServesTLS: the files written load as a key pair, and a server
// using it on 127.0.0.1 is trusted by Client and Pool and by no one else.
func TestCertServesTLS(t *testing.T) {
	c := testcert.New(t)
	certPath, keyPath := c.WriteFiles(t, t.TempDir())
	pair, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err != nil {
		t.Fatalf("loading the written files: %v", err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{pair}}
	srv.StartTLS()
	defer srv.Close()
	for name, client := range map[string]*http.Client{
		"Client": c.Client(t),
		"Pool":   {Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: c.Pool()}}},
	} {
		resp, err := client.Get(srv.URL)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) != "ok" {
			t.Errorf("%s: body %q, want ok", name, body)
		}
	}
	other := testcert.New(t)
	if other.Leaf.SerialNumber.Cmp(c.Leaf.SerialNumber) == 0 {
		t.Error("two certificates share a serial number")
	}
	untrusting := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: other.Pool()}}}
	if _, err := untrusting.Get(srv.URL); err == nil {
		t.Error("a client trusting another certificate accepted this one")
	}
	if _, err := c.Leaf.Verify(x509.VerifyOptions{Roots: c.Pool(), DNSName: "127.0.0.1"}); err != nil {
		t.Errorf("verifying for 127.0.0.1: %v", err)
	}
	if _, err := c.Leaf.Verify(x509.VerifyOptions{Roots: c.Pool(), DNSName: "::1"}); err != nil {
		t.Errorf("verifying for ::1: %v", err)
	}
}
