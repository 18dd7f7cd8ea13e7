package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestNodeURLFlag: status, checkpoint and evidence all take the node's URL
// as --node; evidence's older --feed still works but is not shown.
func TestNodeURLFlag(t *testing.T) {
	url, rosterPath, l, _ := startFeedCmdNode(t)
	for _, args := range [][]string{
		{"status", "--node", url},
		{"checkpoint", l.Origin(), "--node", url},
		{"evidence", "list", "--node", url},
		{"evidence", "list", "--feed", url},
	} {
		if code, _, stderr := runCLI(args...); code != 0 {
			t.Errorf("%v: exit %d: %s", args, code, stderr)
		}
	}
	code, _, stderr := runCLI("evidence", "-h")
	if code != 0 || !strings.Contains(stderr, "-node") || strings.Contains(stderr, "-feed") {
		t.Errorf("evidence -h: exit %d, want --node shown and --feed hidden:\n%s", code, stderr)
	}
	for _, args := range [][]string{
		{"evidence", "list", "--node", url, "--data", t.TempDir()},
		{"evidence", "list", "--node", url, "--feed", "http://127.0.0.1:1"},
	} {
		if code, _, _ := runCLI(args...); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}

	// Without --roster, checkpoint says the note is unverified.
	_, out, stderr := runCLI("checkpoint", l.Origin(), "--node", url)
	if !strings.Contains(stderr, "unverified") || !strings.HasPrefix(out, l.Origin()+"\n") {
		t.Errorf("checkpoint without --roster: stdout %q stderr %q", out, stderr)
	}
	_, _, stderr = runCLI("checkpoint", l.Origin(), "--node", url, "--roster", rosterPath)
	if strings.Contains(stderr, "unverified") || !strings.Contains(stderr, "verified:") {
		t.Errorf("checkpoint with --roster: stderr %q", stderr)
	}
}

// TestVerifyUnreadableInput: input that cannot be read is exit 2, as for
// verify-receipt; exit 1 stays for evidence that was read and is invalid.
func TestVerifyUnreadableInput(t *testing.T) {
	dir := t.TempDir()
	rosterPath, evPath, _ := splitViewEvidence(t, dir)
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"missing evidence file", []string{"verify", filepath.Join(dir, "missing.evidence"), "--roster", rosterPath}},
		{"evidence path is a directory", []string{"verify", dir, "--roster", rosterPath}},
		{"missing roster", []string{"verify", evPath, "--roster", filepath.Join(dir, "missing-roster")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if code, stdout, stderr := runCLI(tc.args...); code != 2 {
				t.Fatalf("exit %d, want 2\n%s%s", code, stdout, stderr)
			}
		})
	}
}
