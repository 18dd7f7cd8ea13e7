package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/vigilnet/vigil/node"
	"github.com/vigilnet/vigil/scitt"
)

// TestVerifyWitnessedReceiptCLI runs vigil log witnessed by a real Vigil
// node (vigil log --witness), registers a statement with vigil submit,
// fetches its witnessed receipt and tlog-proof over HTTP, and checks them
// with vigil verify-receipt --roster and vigil verify-proof --statement,
// untouched (exit 0), tampered (exit 1) and unreadable (exit 2).
func TestVerifyWitnessedReceiptCLI(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "ts")
	code, out, stderr := runVigil("log", "--init", "--data", data, "--origin", "ts.vigil.test/log")
	if code != 0 {
		t.Fatalf("log --init: %s", stderr)
	}
	logVKey := regexp.MustCompile(`log \(checkpoint\) verifier key: (\S+)`).FindStringSubmatch(out)[1]

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	keysDir := filepath.Join(dir, "witness-keys")
	wvkey, err := node.GenerateKeys(keysDir, "witness.vigil.test")
	if err != nil {
		t.Fatal(err)
	}
	policyText := "log " + logVKey + "\nwitness w1 " + wvkey + "\nquorum w1\n"
	policyPath := filepath.Join(dir, "witnesses.policy")
	os.WriteFile(policyPath, []byte(policyText), 0o644)
	cfg := node.DefaultConfig()
	cfg.DataDir = filepath.Join(dir, "node")
	cfg.KeysDir = keysDir
	cfg.Roster = policyPath
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	n, err := node.New(cfg, node.Deps{Listener: ln, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	nodeDone := make(chan error, 1)
	go func() { nodeDone <- n.Run(ctx) }()
	defer func() {
		cancel()
		<-nodeDone
	}()

	issuerKey, regPolicy := newIssuer(t, dir)
	url, stopLog := startLog(t, ctx, "--data", data, "--policy", regPolicy, "--listen", "127.0.0.1:0",
		"--witness", n.URL()+","+wvkey, "--sync-wait", "10s")
	defer stopLog()

	conf := writeVMConfig(t, dir)
	stmt := filepath.Join(dir, "vm-1.cose")
	code, out, stderr = runVigil("submit", "--key", issuerKey, "--kind", "configuration", "--log", url,
		"--out", filepath.Join(dir, "vm-1.receipt"), "--statement-out", stmt, conf)
	if code != 0 {
		t.Fatalf("submit: %s %s", out, stderr)
	}
	loc := regexp.MustCompile(`(/entries/[0-9a-f]{64})`).FindStringSubmatch(out)[1]
	get := func(path, file string) []byte {
		t.Helper()
		resp, err := http.Get(url + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d %q", path, resp.StatusCode, b)
		}
		if err := os.WriteFile(filepath.Join(dir, file), b, 0o644); err != nil {
			t.Fatal(err)
		}
		return b
	}
	wr := get(loc+"/witnessed-receipt", "vm-1.witnessed")
	proof := get(loc+"/tlog-proof", "vm-1.tlog-proof")

	// Tampered copies: the witness's cosignature dropped from the
	// checkpoint of each.
	w, err := scitt.ParseWitnessedReceipt(wr)
	if err != nil {
		t.Fatal(err)
	}
	w.Checkpoint = dropLines(w.Checkpoint, "— witness.vigil.test ")
	b, err := w.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "nocosig.witnessed"), b, 0o644)
	os.WriteFile(filepath.Join(dir, "nocosig.tlog-proof"), dropLines(proof, "— witness.vigil.test "), 0o644)

	rkey := filepath.Join(data, "receipt.key.pub")
	f := func(name string) string { return filepath.Join(dir, name) }
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		output string
	}{
		{"witnessed receipt", []string{"verify-receipt", stmt, f("vm-1.witnessed"), "--log-key", rkey, "--roster", policyPath}, 0,
			`valid: entry 0 of a tree of size 1 in ts.vigil.test/log \(subject "file:vm-1.json"\), witnessed: checkpoint of ts.vigil.test/log at size 1 cosigned by w1 \(quorum w1 met\)`},
		{"tlog-proof", []string{"verify-proof", f("vm-1.tlog-proof"), "--policy", policyPath, "--statement", stmt}, 0,
			`valid: entry 0 of ts.vigil.test/log, in the checkpoint of size 1 signed by the log and cosigned by w1`},
		{"tlog-proof by entry id", []string{"verify-proof", f("vm-1.tlog-proof"), "--policy", policyPath, "--leaf-hash", strings.TrimPrefix(loc, "/entries/")}, 0, `valid: entry 0`},
		{"dropped cosignature", []string{"verify-receipt", stmt, f("nocosig.witnessed"), "--log-key", rkey, "--roster", policyPath}, 1, `witness quorum "w1" not met`},
		{"tlog-proof dropped cosignature", []string{"verify-proof", f("nocosig.tlog-proof"), "--policy", policyPath, "--statement", stmt}, 1, "witness quorum not met"},
		{"plain receipt with --roster", []string{"verify-receipt", stmt, f("vm-1.receipt"), "--log-key", rkey, "--roster", policyPath}, 1, "invalid: invalid receipt: witnessed receipt"},
		{"missing roster", []string{"verify-receipt", stmt, f("vm-1.witnessed"), "--log-key", rkey, "--roster", f("missing")}, 2, "no such file"},
		{"the receipt key is not the log key", []string{"verify-receipt", stmt, f("vm-1.witnessed"), "--log-key", filepath.Join(data, "log.key.pub"), "--roster", policyPath}, 1, "invalid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runVigil(tc.args...)
			if code != tc.code || !regexp.MustCompile(tc.output).MatchString(stdout+stderr) {
				t.Fatalf("exit %d (want %d), output %q %q; want %q", code, tc.code, stdout, stderr, tc.output)
			}
		})
	}
}

func dropLines(b []byte, prefix string) []byte {
	var out strings.Builder
	for l := range strings.Lines(string(b)) {
		if !strings.HasPrefix(l, prefix) {
			out.WriteString(l)
		}
	}
	return []byte(out.String())
}
