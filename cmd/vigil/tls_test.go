package main

import (
	"context"
	"crypto/rand"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"github.com/vigilnet/vigil/internal/testcert"
)

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
	tc := testcert.New(t)
	cert, key := tc.WriteFiles(t, dir)
	client := tc.Client(t)
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
	tc := testcert.New(t)
	cert, key := tc.WriteFiles(t, dir)
	client := tc.Client(t)
	url := runServer(t, runNode, []string{"--listen", "127.0.0.1:0", "--data", filepath.Join(dir, "data"), "--keys", keys,
		"--roster", rosterPath, "--tls-cert", cert, "--tls-key", key, "--log-level", "warn"})
	if body := getOK(t, client, url+"/healthz"); body != "ok\n" {
		t.Fatalf("healthz %q", body)
	}
	if body := getOK(t, client, url+"/v1/info"); !strings.Contains(body, `"monitoring_prefix": "/monitoring"`) {
		t.Fatalf("info %s", body)
	}
}
