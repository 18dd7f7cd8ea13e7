package main

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/vigilnet/vigil/scitt"
)

// TestLogAuditFlags runs vigil log with --admin-token-file and checks that
// GET /audit answers the admin (addresses included) and no one else, and
// that a rejected registration is in the trail.
func TestLogAuditFlags(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "ts")
	if code, _, stderr := runVigil("log", "--init", "--data", data, "--origin", "ts.vigil.test/log"); code != 0 {
		t.Fatalf("log --init: %s", stderr)
	}
	tokenFile := filepath.Join(dir, "admin.token")
	const token = "an-admin-token-of-32-characters!"
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	short := filepath.Join(dir, "short.token")
	os.WriteFile(short, []byte("short"), 0o600)
	if code, _, stderr := runVigil("log", "--data", data, "--admin-token-file", short, "--listen", "127.0.0.1:0"); code == 0 || !regexp.MustCompile(`at least 16`).MatchString(stderr) {
		t.Fatalf("short admin token: exit %d %s", code, stderr)
	}

	ctx, cancel := context.WithCancel(context.Background())
	stdout := &lockedBuffer{changed: make(chan struct{})}
	env := &cliEnv{stdout: stdout, stderr: &lockedBuffer{changed: make(chan struct{})}}
	done := make(chan error, 1)
	go func() {
		done <- runLog(ctx, env, []string{"--data", data, "--listen", "127.0.0.1:0", "--admin-token-file", tokenFile, "--audit-max-bytes", "1048576"})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("vigil log: %v", err)
		}
	}()
	url := stdout.waitFor(t, regexp.MustCompile(`listening on (http://\S+)\n`), done)[1]

	// Without --policy every registration is rejected, and recorded.
	resp, err := http.Post(url+"/entries", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnsupportedMediaType {
		t.Fatalf("POST text/plain: %d", resp.StatusCode)
	}
	get := func(tok string) (int, scitt.AuditPage) {
		req, _ := http.NewRequest("GET", url+"/audit", nil)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var p scitt.AuditPage
		if resp.StatusCode == 200 {
			if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
				t.Fatal(err)
			}
		}
		return resp.StatusCode, p
	}
	if code, _ := get(""); code != http.StatusUnauthorized {
		t.Fatalf("GET /audit without the token: %d", code)
	}
	// The 415 may still sit in the write buffer (flushed within 200 ms);
	// a query flushes it first.
	code, p := get(token)
	if code != 200 || len(p.Records) != 1 || p.Records[0].Remote != "127.0.0.1" || p.Records[0].Decision != scitt.DecisionRejected {
		t.Fatalf("admin GET /audit: %d %+v", code, p)
	}
}
