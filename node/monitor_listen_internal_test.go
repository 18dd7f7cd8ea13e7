package node

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func writeCert(t *testing.T, certPath, keyPath string, serial int64, mtime time.Time) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "reload"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	for p, b := range map[string][]byte{
		certPath: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyPath:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}),
	} {
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	return der
}

// TestCertFilesReload: a renewed certificate is served once the files'
// modification time changes; a renewal that does not load keeps the old one.
func TestCertFilesReload(t *testing.T) {
	dir := t.TempDir()
	certPath, keyPath := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	t0 := time.Now().Add(-time.Hour)
	first := writeCert(t, certPath, keyPath, 1, t0)
	c, err := LoadCertFiles(certPath, keyPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	serve := func() []byte {
		t.Helper()
		c.mu.Lock()
		c.checked = time.Time{} // the next handshake checks the files
		c.mu.Unlock()
		cert, err := c.GetCertificate(nil)
		if err != nil {
			t.Fatal(err)
		}
		return cert.Certificate[0]
	}
	if !bytes.Equal(serve(), first) {
		t.Fatal("not serving the loaded certificate")
	}
	second := writeCert(t, certPath, keyPath, 2, t0.Add(time.Minute))
	if !bytes.Equal(serve(), second) {
		t.Fatal("the renewed certificate was not loaded")
	}
	if err := os.WriteFile(keyPath, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	later := t0.Add(2 * time.Minute)
	os.Chtimes(keyPath, later, later)
	if !bytes.Equal(serve(), second) {
		t.Fatal("a broken renewal replaced the working certificate")
	}
	// Without a check due, the files are not even looked at.
	c.mu.Lock()
	c.checked = time.Now()
	c.mu.Unlock()
	third := writeCert(t, certPath, keyPath, 3, t0.Add(3*time.Minute))
	if cert, _ := c.GetCertificate(nil); bytes.Equal(cert.Certificate[0], third) {
		t.Fatal("reloaded before a minute passed")
	}
}
