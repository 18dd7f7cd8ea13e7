package roster_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"github.com/vigilnet/vigil/roster"
	"github.com/vigilnet/vigil/tlog"
)

type keys struct {
	logs, witnesses []string
}

func genKeys(t testing.TB, nLogs, nWitnesses int) keys {
	t.Helper()
	var k keys
	for i := 0; i < nLogs; i++ {
		_, v, err := note.GenerateKey(nil, fmt.Sprintf("log%d.example", i))
		if err != nil {
			t.Fatal(err)
		}
		k.logs = append(k.logs, v)
	}
	for i := 0; i < nWitnesses; i++ {
		_, v, err := tlog.GenerateCosignerKey(nil, fmt.Sprintf("w%d.example", i))
		if err != nil {
			t.Fatal(err)
		}
		k.witnesses = append(k.witnesses, v)
	}
	return k
}

func TestParsePolicy(t *testing.T) {
	k := genKeys(t, 2, 4)
	good := fmt.Sprintf(`# a comment
log %s https://log0.example/
log %s
witness a %s https://a.example
witness b %s
witness c %s
witness d %s   # trailing comment
group ab any a b
group cd 2 c d
group top all ab cd
quorum top
`, k.logs[0], k.logs[1], k.witnesses[0], k.witnesses[1], k.witnesses[2], k.witnesses[3])
	r, err := roster.ParsePolicy([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Logs()) != 2 || len(r.Witnesses()) != 4 || r.Quorum() != "top" {
		t.Fatalf("parsed %d logs, %d witnesses, quorum %q", len(r.Logs()), len(r.Witnesses()), r.Quorum())
	}
	l, ok := r.Log("log0.example")
	if !ok || l.URL != "https://log0.example" {
		t.Fatalf("log0: %+v", l)
	}
	v, _ := tlog.NewCosignatureVerifier(k.witnesses[2])
	if w, ok := r.WitnessByKey(v.Name(), v.KeyHash()); !ok || w.Name != "c" {
		t.Fatalf("WitnessByKey: %v %v", w, ok)
	}
	for _, tc := range []struct {
		set  string
		want bool
	}{
		{"", false}, {"a", false}, {"a c d", true}, {"b c d", true}, {"a b c", false}, {"a b c d", true},
	} {
		set := map[string]bool{}
		for _, n := range strings.Fields(tc.set) {
			set[n] = true
		}
		if got := r.QuorumMet(set); got != tc.want {
			t.Errorf("QuorumMet(%q) = %v, want %v", tc.set, got, tc.want)
		}
	}
	empty, _ := roster.ParsePolicy(nil)
	if !empty.QuorumMet(nil) {
		t.Error("no quorum must be satisfied trivially")
	}
}

func TestParsePolicyErrors(t *testing.T) {
	k := genKeys(t, 1, 2)
	w := fmt.Sprintf("witness a %s\nwitness b %s\n", k.witnesses[0], k.witnesses[1])
	for name, text := range map[string]string{
		"unknown keyword":      "frobnicate x\n",
		"log without key":      "log\n",
		"bad log key":          "log nope+00000000+AQ==\n",
		"witness key as log":   "log " + k.witnesses[0] + "\n",
		"log key as witness":   "witness a " + k.logs[0] + "\n",
		"duplicate log":        "log " + k.logs[0] + "\nlog " + k.logs[0] + "\n",
		"duplicate name":       w + "witness a " + k.witnesses[0] + "\n",
		"reused key":           fmt.Sprintf("witness a %s\nwitness b %s\n", k.witnesses[0], k.witnesses[0]),
		"undefined member":     w + "group g any a z\n",
		"member twice":         w + "group g any a b\ngroup h any a\n",
		"threshold too big":    w + "group g 3 a b\n",
		"threshold zero":       w + "group g 0 a b\n",
		"threshold leading 0":  w + "group g 01 a b\n",
		"undefined quorum":     w + "quorum nobody\n",
		"two quorums":          w + "quorum a\nquorum none\n",
		"reserved name":        "witness none " + k.witnesses[0] + "\n",
		"control byte":         "log " + k.logs[0] + "\x01\n",
		"bad url":              "log " + k.logs[0] + " ftp://x\n",
		"group with no member": w + "group g any\n",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := roster.ParsePolicy([]byte(text))
			if !errors.Is(err, roster.ErrSyntax) {
				t.Fatalf("err = %v, want ErrSyntax", err)
			}
			if !strings.Contains(err.Error(), "line ") {
				t.Fatalf("error does not name the line: %v", err)
			}
		})
	}
}

func TestParseLogList(t *testing.T) {
	k := genKeys(t, 2, 0)
	good := fmt.Sprintf("# list\n\nlogs/v0\nvkey %s\nqpd 86400\ncontact ops@log0.example\n  vkey %s  \norigin example.org/custom\nqpd 24\ncontact someone\n", k.logs[0], k.logs[1])
	logs, err := roster.ParseLogList([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if len(logs) != 2 || logs[0].Origin != "log0.example" || logs[1].Origin != "example.org/custom" || logs[1].QPD != 24 {
		t.Fatalf("parsed %+v %+v", logs[0], logs[1])
	}
	for name, text := range map[string]string{
		"no header":       "vkey " + k.logs[0] + "\n",
		"empty":           "",
		"missing contact": "logs/v0\nvkey " + k.logs[0] + "\nqpd 1\n",
		"missing qpd":     "logs/v0\nvkey " + k.logs[0] + "\ncontact x\n",
		"bad order":       "logs/v0\nvkey " + k.logs[0] + "\nqpd 1\norigin x\ncontact x\n",
		"qpd zero":        "logs/v0\nvkey " + k.logs[0] + "\nqpd 0\ncontact x\n",
		"bad key":         "logs/v0\nvkey zzz\nqpd 1\ncontact x\n",
		"header twice":    "logs/v0\nlogs/v0\n",
		"duplicate":       "logs/v0\nvkey " + k.logs[0] + "\nqpd 1\ncontact x\nvkey " + k.logs[0] + "\nqpd 1\ncontact x\n",
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := roster.ParseLogList([]byte(text)); !errors.Is(err, roster.ErrSyntax) {
				t.Fatalf("err = %v, want ErrSyntax", err)
			}
		})
	}
}

func TestLoadMergesLists(t *testing.T) {
	k := genKeys(t, 2, 1)
	dir := t.TempDir()
	pol := filepath.Join(dir, "roster")
	list := filepath.Join(dir, "list")
	os.WriteFile(pol, []byte(fmt.Sprintf("log %s http://127.0.0.1:1/x\nwitness a %s\n", k.logs[0], k.witnesses[0])), 0o644)
	os.WriteFile(list, []byte(fmt.Sprintf("logs/v0\nvkey %s\nqpd 1\ncontact x\nvkey %s\nqpd 1\ncontact y\n", k.logs[0], k.logs[1])), 0o644)
	r, err := roster.Load(pol, list)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Logs()) != 2 {
		t.Fatalf("got %d logs", len(r.Logs()))
	}
	if l, _ := r.Log("log0.example"); l.URL == "" {
		t.Fatal("policy URL lost in merge")
	}
	if _, err := roster.Load(filepath.Join(dir, "missing")); err == nil {
		t.Fatal("missing file accepted")
	}
}

func FuzzParsePolicy(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*.policy")
	for _, s := range seeds {
		b, _ := os.ReadFile(s)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := roster.ParsePolicy(b)
		if err != nil {
			if !errors.Is(err, roster.ErrSyntax) {
				t.Fatalf("error %v is not ErrSyntax", err)
			}
			return
		}
		r.QuorumMet(map[string]bool{})
	})
}

func FuzzParseLogList(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*.logs")
	for _, s := range seeds {
		b, _ := os.ReadFile(s)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		logs, err := roster.ParseLogList(b)
		if err != nil {
			if !errors.Is(err, roster.ErrSyntax) {
				t.Fatalf("error %v is not ErrSyntax", err)
			}
			return
		}
		// What parses is written back (the node records adopted logs so)
		// and reads back the same.
		out, err := roster.FormatLogList([]string{"round trip"}, logs)
		if err != nil {
			t.Fatalf("formatting parsed logs: %v", err)
		}
		again, err := roster.ParseLogList(out)
		if err != nil {
			t.Fatalf("formatted list does not parse: %v\n%s", err, out)
		}
		if len(again) != len(logs) {
			t.Fatalf("%d logs after a round trip, want %d", len(again), len(logs))
		}
		for i := range logs {
			x, y := logs[i], again[i]
			if x.Origin != y.Origin || x.VKey != y.VKey || x.QPD != y.QPD || x.Contact != y.Contact {
				t.Fatalf("round trip changed %+v into %+v", x, y)
			}
		}
	})
}
