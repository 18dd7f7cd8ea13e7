package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// splitScript forks log-0 between witnesses 0-1 and 2-3 (a same-size split
// view) and has witness 2 cosign both views.
const splitScript = `at 0s grow log-0 4
at 0s equivocate log-0 0-1 2-3
at 0s cosign-both 2 log-0
at 0s wait-evidence 60s
`

// TestTestnetRosterKeys runs `vigil testnet` (vigilMain, the binary's
// entry point) on a split-view script with an ML-DSA-44-only roster whose
// witnesses sign with ML-DSA only, and with a roster listing both keys;
// then reads every node's evidence from its stopped data directory with
// `vigil evidence` and checks each file offline with `vigil verify`
// against the roster: the log's split view and the witness that cosigned
// both views are caught with either key type. About 5 s per roster.
func TestTestnetRosterKeys(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a network")
	}
	script := filepath.Join(t.TempDir(), "split.script")
	if err := os.WriteFile(script, []byte(splitScript), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ roster, cosign, line string }{
		{"mldsa", "mldsa", "(mldsa keys; witnesses cosign with mldsa)"},
		{"both", "both", "(both keys; witnesses cosign with both)"},
	} {
		t.Run(tc.roster, func(t *testing.T) {
			began := time.Now()
			dir := t.TempDir()
			out := vigilOK(t, "testnet", "--scitt=false", "--witnesses", "4", "--observers", "1", "--logs", "1",
				"--roster-keys", tc.roster, "--cosignature-types", tc.cosign, "--script", script, "--dir", dir, "--exit")
			if !strings.Contains(out, "testnet: 4 witnesses (quorum 3), 1 observers") || !strings.Contains(out, tc.line) {
				t.Fatalf("testnet output:\n%s", out)
			}
			roster := filepath.Join(dir, "roster")
			kinds := map[string]int{}
			for _, m := range []string{"witness-0", "witness-1", "witness-2", "witness-3", "observer-4"} {
				data := filepath.Join(dir, m, "data")
				list := strings.Split(strings.TrimSpace(vigilOK(t, "evidence", "list", "--data", data)), "\n")
				if len(list) < 2 {
					t.Fatalf("%s holds no evidence:\n%s", m, strings.Join(list, "\n"))
				}
				for _, row := range list[1:] {
					f := strings.Fields(row)
					id, kind := f[0], f[1]
					file := filepath.Join(t.TempDir(), id+".evidence")
					vigilOK(t, "evidence", "export", id, "-o", file, "--data", data)
					if v := vigilOK(t, "verify", file, "--roster", roster); !strings.Contains(v, "VALID "+kind+" evidence "+id) {
						t.Fatalf("vigil verify of %s's %s:\n%s", m, id, v)
					}
					kinds[kind]++
				}
			}
			if kinds["log-equivocation-same-size"] == 0 || kinds["witness-equivocation"] == 0 {
				t.Fatalf("evidence verified by kind: %v; want the log's split view and witness-2's equivocation", kinds)
			}
			rb, err := os.ReadFile(roster)
			if err != nil {
				t.Fatal(err)
			}
			if tc.roster == "both" && !strings.Contains(string(rb), "group witness-2 any witness-2-ed witness-2-ml") {
				t.Fatalf("roster lists no any group per witness:\n%s", rb)
			}
			t.Logf("%s roster: %v verified offline (%s)", tc.roster, kinds, time.Since(began).Round(time.Millisecond))
		})
	}
}

// TestTestnetKeyFlags: bad --roster-keys and --cosignature-types values,
// and a pair under which no witness cosignature would count, are usage
// errors naming the problem, before anything starts.
func TestTestnetKeyFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--roster-keys", "rsa"}, `--roster-keys "rsa": want ed25519, mldsa or both`},
		{[]string{"--roster-keys", ""}, `--roster-keys "": want ed25519, mldsa or both`},
		{[]string{"--cosignature-types", "ML-DSA"}, `--cosignature-types "ML-DSA": want ed25519, mldsa or both`},
		{[]string{"--roster-keys", "mldsa", "--cosignature-types", "ed25519"}, "no witness cosignature would count"},
		{[]string{"--roster-keys", "ed25519", "--cosignature-types", "mldsa"}, "no witness cosignature would count"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var out, errb bytes.Buffer
			args := append([]string{"testnet", "--exit", "--dir", t.TempDir()}, tc.args...)
			if code := vigilMain(args, &out, &errb); code != 2 || !strings.Contains(errb.String(), tc.want) {
				t.Fatalf("exit %d, stderr %q; want 2 and %q", code, errb.String(), tc.want)
			}
		})
	}
}

// vigilOK runs vigil with args in this process and returns its stdout,
// failing the test on a non-zero exit.
func vigilOK(t *testing.T, args ...string) string {
	t.Helper()
	var out, errb bytes.Buffer
	if code := vigilMain(args, &out, &errb); code != 0 {
		t.Fatalf("vigil %s: exit %d\n%s%s", strings.Join(args, " "), code, out.String(), errb.String())
	}
	return out.String()
}
