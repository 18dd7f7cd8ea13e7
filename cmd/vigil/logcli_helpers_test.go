package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// newIssuer creates the issuer key provider.example in dir (vigil submit
// --new-key) and a registration policy admitting its configuration
// statements; it returns the key's path and the policy's path.
func newIssuer(t *testing.T, dir string) (issuerKey, policy string) {
	t.Helper()
	issuerKey = filepath.Join(dir, "issuer.key")
	if code, _, stderr := runVigil("submit", "--new-key", "provider.example", "--key", issuerKey); code != 0 {
		t.Fatalf("submit --new-key: %s", stderr)
	}
	vkey, err := os.ReadFile(issuerKey + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	policy = filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(policy, fmt.Appendf(nil, "issuers:\n  - name: provider.example\n    keys: [%q]\n    kinds: [configuration]\n", strings.TrimSpace(string(vkey))), 0o644); err != nil {
		t.Fatal(err)
	}
	return issuerKey, policy
}

// writeVMConfig writes the configuration statement payload vm-1.json into
// dir and returns its path.
func writeVMConfig(t *testing.T, dir string) string {
	t.Helper()
	conf := filepath.Join(dir, "vm-1.json")
	if err := os.WriteFile(conf, []byte(`{"resource":"vm-1","as_of":"2026-01-02T03:04:05Z","config":{"ports":[443]}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	return conf
}

// startLog runs vigil log with args in process until stop is called (stop
// reports an error the command returned) and returns the URL it listens on.
func startLog(t *testing.T, ctx context.Context, args ...string) (url string, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	stdout := &lockedBuffer{changed: make(chan struct{})}
	env := &cliEnv{stdout: stdout, stderr: &lockedBuffer{changed: make(chan struct{})}}
	done := make(chan error, 1)
	go func() { done <- runLog(ctx, env, args) }()
	stop = func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("vigil log: %v", err)
		}
	}
	url = stdout.waitFor(t, regexp.MustCompile(`listening on (http://\S+)\n`), done)[1]
	return url, stop
}
