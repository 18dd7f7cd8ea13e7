package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigilnet/vigil/feed"
)

// TestExportCommand runs `vigil export` against a real node, once its
// store holds the record of the checkpoint it cosigned.
func TestExportCommand(t *testing.T) {
	url, _, l, db := startFeedCmdNode(t)
	deadline := time.Now().Add(20 * time.Second)
	for {
		recs, _, err := db.CheckpointsByTime(context.Background(), l.Origin(), time.Time{}, time.Time{}, nil, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the node stored no checkpoint record")
		}
		time.Sleep(20 * time.Millisecond) // polling a condition with a deadline
	}
	run := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := vigilMain(args, &out, &errb)
		return code, out.String(), errb.String()
	}
	dir := t.TempDir()
	since := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)

	jsonl := filepath.Join(dir, "q.jsonl")
	if code, _, errs := run("export", "--node", url, "--since", since, "--out", jsonl); code != 0 {
		t.Fatalf("export: exit %d: %s", code, errs)
	}
	b, err := os.ReadFile(jsonl)
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	avail := map[string]feed.ExportAvailability{}
	for line := range strings.Lines(string(b)) {
		var rec struct{ Type string }
		json.Unmarshal([]byte(line), &rec)
		types = append(types, rec.Type)
		switch rec.Type {
		case feed.ExportTypeCheckpoint:
			var c feed.ExportCheckpoint
			json.Unmarshal([]byte(line), &c)
			if c.Origin != l.Origin() || c.Size != 9 || strings.Join(c.Cosigners, " ") != "self" {
				t.Errorf("checkpoint %+v, want %s at 9 cosigned by self", c, l.Origin())
			}
		case feed.ExportTypeAvailability:
			var a feed.ExportAvailability
			json.Unmarshal([]byte(line), &a)
			avail[a.Witness] = a
		}
	}
	if got := strings.Join(types, " "); got != "period checkpoint witness_availability witness_availability end" {
		t.Errorf("records %q", got)
	}
	if avail["self"].Cosigned != 1 || avail["other"].Cosigned != 0 || avail["other"].Total != 1 {
		t.Errorf("availability %+v", avail)
	}

	code, out, errs := run("export", "--node", url, "--since", since, "--format", "csv")
	if code != 0 {
		t.Fatalf("csv export: exit %d: %s", code, errs)
	}
	rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil || len(rows) != 6 || strings.Join(rows[0], ",") != strings.Join(feed.CSVHeader, ",") || rows[2][0] != "checkpoint" || rows[5][0] != "end" {
		t.Errorf("csv export (%v):\n%s", err, out)
	}

	// A period with nothing in it is a complete, empty export.
	if code, out, errs := run("export", "--node", url, "--since", "2020-01-01T00:00:00Z", "--until", "2020-04-01T00:00:00Z"); code != 0 || strings.Contains(out, `"checkpoint"`) || !strings.Contains(out, `"type":"end","checkpoints":0`) {
		t.Errorf("empty period: exit %d %s %s", code, out, errs)
	}
	bad := filepath.Join(dir, "bad.jsonl")
	for _, tc := range []struct {
		args []string
		code int
		err  string
	}{
		{[]string{"--since", "last week"}, 2, "not an RFC 3339 time"},
		{[]string{"--format", "xml"}, 2, "usage"},
		{[]string{"--since", "2030-01-01T00:00:00Z", "--until", "2029-01-01T00:00:00Z"}, 1, "bad period"},
	} {
		code, _, errs := run(append([]string{"export", "--node", url, "--out", bad}, tc.args...)...)
		if code != tc.code || !strings.Contains(errs, tc.err) {
			t.Errorf("%v: exit %d %q, want %d with %q", tc.args, code, errs, tc.code, tc.err)
		}
		if _, err := os.Stat(bad); !os.IsNotExist(err) {
			t.Errorf("%v: a failed export left %s", tc.args, bad)
		}
	}
}

func TestExportComplete(t *testing.T) {
	for _, tc := range []struct {
		format, last string
		ok           bool
	}{
		{"jsonl", `{"type":"end","checkpoints":1,"evidence":0}`, true},
		{"jsonl", `{"type":"error","error":"boom"}`, false},
		{"jsonl", `{"type":"checkpoint"`, false},
		{"csv", "end,,,,,,,,,,,,,,,,,,,,,,,,,,1,0,", true},
		{"csv", `error,,,,,,,,,,,,,,,,,,,,,,,,,,0,0,"a, b"`, false},
		{"csv", "checkpoint,,", false},
		{"csv", "", false},
	} {
		if err := exportComplete(tc.format, tc.last); (err == nil) != tc.ok {
			t.Errorf("%s %q: %v", tc.format, tc.last, err)
		}
	}
}
