package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestVerifyProofCLI runs vigil verify-proof on the computed test vectors of
// c2sp.org/tlog-proof (tlog/tlogproof/testdata: a 7-leaf tree of "leaf 0" ..
// "leaf 6") and on tampered copies of them, written to files.
func TestVerifyProofCLI(t *testing.T) {
	src := filepath.Join("..", "..", "tlog", "tlogproof", "testdata")
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	good, pol := read("index3.tlog-proof"), read("example.policy")
	var wLine, logLine string
	for l := range strings.Lines(good) {
		if strings.HasPrefix(l, "— witness.example/w1 ") {
			wLine = l
		}
	}
	for l := range strings.Lines(pol) {
		if strings.HasPrefix(l, "log ") {
			logLine = l
		}
	}
	dir := t.TempDir()
	files := map[string]string{
		"index3.tlog-proof":         good,
		"index0-extra.tlog-proof":   read("index0-extra.tlog-proof"),
		"example.policy":            pol,
		"moved-index.tlog-proof":    strings.Replace(good, "index 3", "index 2", 1),
		"no-cosignature.tlog-proof": strings.Replace(good, wLine, "", 1),
		"malformed.tlog-proof":      "c2sp.org/tlog-proof@v1\nindex 03\n\n",
		"witnesses-only.policy":     strings.Replace(pol, logLine, "", 1),
		"leaf3":                     "leaf 3",
		"leaf0":                     "leaf 0",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f := func(name string) string { return filepath.Join(dir, name) }
	for _, tc := range []struct {
		name           string
		args           []string
		code           int
		stdout, stderr string
	}{
		{"entry bytes", []string{f("index3.tlog-proof"), "--policy", f("example.policy"), "--entry", f("leaf3")}, 0,
			`^valid: entry 3 of example.com/log, in the checkpoint of size 7 signed by the log and cosigned by w1 \(quorum w1 met\)\n$`, ""},
		{"leaf hash base64", []string{"--leaf-hash", "WL0UluFoSqySAcLmh+565PUclqiw2B7zWDYouT0800U=", "--policy", f("example.policy"), f("index3.tlog-proof")}, 0, `^valid: entry 3`, ""},
		{"leaf hash hex", []string{f("index3.tlog-proof"), "--policy", f("example.policy"), "--leaf-hash", "58bd1496e1684aac9201c2e687ee7ae4f51c96a8b0d81ef3583628b93d3cd345"}, 0, `^valid: entry 3`, ""},
		{"extra data", []string{f("index0-extra.tlog-proof"), "--policy", f("example.policy"), "--entry", f("leaf0")}, 0, `extra data \(5 bytes\) is not authenticated`, ""},
		{"another entry", []string{f("index3.tlog-proof"), "--policy", f("example.policy"), "--entry", f("leaf0")}, 1, "", "invalid: inclusion proof invalid"},
		{"moved index", []string{f("moved-index.tlog-proof"), "--policy", f("example.policy"), "--entry", f("leaf3")}, 1, "", "invalid: inclusion proof invalid"},
		{"dropped cosignature", []string{f("no-cosignature.tlog-proof"), "--policy", f("example.policy"), "--entry", f("leaf3")}, 1, "", "invalid: witness quorum not met"},
		{"malformed", []string{f("malformed.tlog-proof"), "--policy", f("example.policy"), "--entry", f("leaf3")}, 1, "", `invalid: malformed tlog-proof: index "03"`},
		{"log not in policy", []string{f("index3.tlog-proof"), "--policy", f("witnesses-only.policy"), "--entry", f("leaf3")}, 1, "", "not a log of the policy"},
		{"missing proof", []string{f("missing.tlog-proof"), "--policy", f("example.policy"), "--entry", f("leaf3")}, 2, "", "no such file"},
		{"missing policy", []string{f("index3.tlog-proof"), "--policy", f("missing.policy"), "--entry", f("leaf3")}, 2, "", "no such file"},
		{"missing entry", []string{f("index3.tlog-proof"), "--policy", f("example.policy"), "--entry", f("missing")}, 2, "", "no such file"},
		{"bad leaf hash", []string{f("index3.tlog-proof"), "--policy", f("example.policy"), "--leaf-hash", "AAAA"}, 2, "", "neither 64 hex"},
		{"no entry", []string{f("index3.tlog-proof"), "--policy", f("example.policy")}, 2, "", "usage: vigil verify-proof"},
		{"two entries", []string{f("index3.tlog-proof"), "--policy", f("example.policy"), "--entry", f("leaf3"), "--leaf-hash", "AAAA"}, 2, "", "usage: vigil verify-proof"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runVigil(append([]string{"verify-proof"}, tc.args...)...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d; stdout %q stderr %q", code, tc.code, stdout, stderr)
			}
			if tc.stdout != "" && !regexp.MustCompile(tc.stdout).MatchString(stdout) {
				t.Errorf("stdout %q does not match %q", stdout, tc.stdout)
			}
			if !strings.Contains(stderr, tc.stderr) {
				t.Errorf("stderr %q does not contain %q", stderr, tc.stderr)
			}
		})
	}
}
