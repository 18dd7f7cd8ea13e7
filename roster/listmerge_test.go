package roster_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigilnet/vigil/roster"
)

func listText(entries ...string) string {
	return "logs/v0\n" + strings.Join(entries, "")
}

func entry(vkey string, qpd int) string {
	return fmt.Sprintf("vkey %s\nqpd %d\ncontact ops@example.com\n", vkey, qpd)
}

func mustParseList(t *testing.T, text string) []*roster.Log {
	t.Helper()
	logs, err := roster.ParseLogList([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return logs
}

func TestMergeListLogs(t *testing.T) {
	k := genKeys(t, 3, 0)
	other := genKeys(t, 3, 0) // same names, other keys
	configured := map[string]*roster.Log{}
	for _, l := range mustParseList(t, listText(entry(k.logs[0], 10), entry(k.logs[1], 20))) {
		configured[l.Origin] = l
	}
	policyLog := mustParseList(t, listText(entry(k.logs[2], 1)))[0]
	policyLog.QPD = 0 // as a tlog-policy log has no qpd
	configured[policyLog.Origin] = policyLog

	for _, tc := range []struct {
		name           string
		list           string
		added, ignored []string
	}{
		{"unchanged", listText(entry(k.logs[0], 10), entry(k.logs[1], 20)), nil, nil},
		{"log removed from list stays", listText(entry(k.logs[1], 20)), nil, nil},
		{"qpd changed is ignored", listText(entry(k.logs[0], 99)), nil, []string{"log0.example"}},
		{"key changed is ignored", listText(entry(other.logs[0], 10)), nil, []string{"log0.example"}},
		{"policy log listed with a qpd is kept quietly", listText(entry(k.logs[2], 5)), nil, nil},
		{"policy log listed with another key", listText(entry(other.logs[2], 5)), nil, []string{"log2.example"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := fmt.Sprint(configured)
			got, ch := roster.MergeListLogs(configured, mustParseList(t, tc.list))
			if fmt.Sprint(configured) != before {
				t.Fatal("MergeListLogs modified its input")
			}
			if names(ch.Added) != strings.Join(tc.added, ",") || names(ch.Ignored) != strings.Join(tc.ignored, ",") {
				t.Fatalf("added %q ignored %q, want %q %q", names(ch.Added), names(ch.Ignored), tc.added, tc.ignored)
			}
			// SPEC: nothing configured is removed or changed.
			for o, l := range configured {
				if got[o] != l {
					t.Fatalf("configured log %s changed or removed", o)
				}
			}
		})
	}

	// A new log is added, with its qpd.
	extra := genKeys(t, 5, 0).logs[4]
	got, ch := roster.MergeListLogs(configured, mustParseList(t, listText(entry(extra, 7))))
	if len(ch.Added) != 1 || got["log4.example"] == nil || got["log4.example"].QPD != 7 || len(got) != 4 {
		t.Fatalf("new log not added: %+v", ch)
	}
}

// TestMergeListLogsProperty: whatever sequence of lists is merged, every
// log once configured stays configured with the same key and qpd.
func TestMergeListLogsProperty(t *testing.T) {
	pool := append(genKeys(t, 6, 0).logs, genKeys(t, 6, 0).logs...) // two keys per name
	rng := rand.New(rand.NewPCG(1, 2))
	configured := map[string]*roster.Log{}
	first := map[string]roster.Log{}
	for round := range 200 {
		var entries []string
		seen := map[string]bool{}
		for range rng.IntN(6) {
			i := rng.IntN(len(pool))
			if name := strings.SplitN(pool[i], "+", 2)[0]; !seen[name] {
				seen[name] = true
				entries = append(entries, entry(pool[i], 1+rng.IntN(100)))
			}
		}
		configured, _ = roster.MergeListLogs(configured, mustParseList(t, listText(entries...)))
		for o, l := range configured {
			f, ok := first[o]
			if !ok {
				first[o] = *l
				continue
			}
			if f.VKey != l.VKey || f.QPD != l.QPD {
				t.Fatalf("round %d: %s changed from %s/%v to %s/%v", round, o, f.VKey, f.QPD, l.VKey, l.QPD)
			}
		}
		if len(configured) < len(first) {
			t.Fatalf("round %d: a log was removed", round)
		}
	}
}

func names(logs []*roster.Log) string {
	var s []string
	for _, l := range logs {
		s = append(s, l.Origin)
	}
	return strings.Join(s, ",")
}

func TestFetchLogList(t *testing.T) {
	k := genKeys(t, 1, 0)
	text := listText(entry(k.logs[0], 3))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/list":
			w.Write([]byte(text))
		case "/big":
			w.Write(make([]byte, roster.MaxFileSize+1))
		case "/bad":
			w.Write([]byte("logs/v1\n"))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	file := filepath.Join(t.TempDir(), "list")
	if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, loc := range []string{srv.URL + "/list", file} {
		logs, err := roster.FetchLogList(ctx, srv.Client(), loc)
		if err != nil || len(logs) != 1 || logs[0].QPD != 3 {
			t.Fatalf("%s: %v %v", loc, logs, err)
		}
	}
	for _, loc := range []string{srv.URL + "/missing", srv.URL + "/big", srv.URL + "/bad", file + ".missing"} {
		if _, err := roster.FetchLogList(ctx, srv.Client(), loc); err == nil {
			t.Errorf("%s: no error", loc)
		}
	}
}

// TestLogListTestdata: every testdata list (the fuzz seeds) parses, so the
// seeds reach the round trip.
func TestLogListTestdata(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.logs")
	if len(files) < 2 {
		t.Fatalf("%d testdata lists", len(files))
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		logs, err := roster.ParseLogList(b)
		if err != nil || len(logs) == 0 {
			t.Errorf("%s: %d logs, %v", f, len(logs), err)
		}
		for _, l := range logs {
			if l.Contact == "" {
				t.Errorf("%s: %s has no contact", f, l.Origin)
			}
		}
	}
}
