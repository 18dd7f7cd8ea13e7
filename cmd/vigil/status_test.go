package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/vigilnet/vigil/feed"
	"github.com/vigilnet/vigil/node"
	"github.com/vigilnet/vigil/store"
)

// TestStatusDivergence: vigil status lists an open unproven divergence
// with both sizes, roots and cosigners and exits 1 (contested) while it is
// open; other suspicions are listed but leave the exit code alone.
func TestStatusDivergence(t *testing.T) {
	url, _, l, db := startFeedCmdNode(t)
	ctx := context.Background()
	run := func() (int, string, string) {
		var out, errb bytes.Buffer
		code := vigilMain([]string{"status", "--node", url}, &out, &errb)
		return code, out.String(), errb.String()
	}
	fork, err := l.Fork(9)
	if err != nil {
		t.Fatal(err)
	}
	fork.AppendN(3, "fork")
	sr, _ := l.Root(9)
	lr, _ := fork.Root(12)
	small := store.SuspicionSide{Size: 9, Root: sr, Cosigners: []string{"self"}}
	large := store.SuspicionSide{Size: 12, Root: lr, Cosigners: []string{"other"}}
	first := time.Date(2026, 12, 7, 17, 0, 0, 0, time.UTC)
	l.AppendN(1, "a")
	r10, _ := l.Root(10)
	b64 := func(r [32]byte) string { return base64.StdEncoding.EncodeToString(r[:]) }

	steps := []struct {
		name  string
		do    func() error
		code  int
		state string
		out   []string // substrings of stdout
		no    []string // not in stdout
		err   string   // substring of stderr
	}{
		{"nothing open", func() error { return nil }, 0, "ok", nil, []string{"DIVERGENT", "SUSPECT"}, ""},
		{"an unverifiable checkpoint", func() error {
			return db.RecordSuspicion(ctx, l.Origin(), 10, r10, "log serves no consistency proof", first)
		}, 0, "suspect", []string{"SUSPECT " + l.Origin() + ": 1 checkpoint the log did not let the node check"}, []string{"DIVERGENT"}, ""},
		{"a divergence", func() error {
			if err := db.RecordDivergence(ctx, l.Origin(), small, large, "log serves no tiles", first); err != nil {
				return err
			}
			return db.RecordDivergence(ctx, l.Origin(), small, large, "log serves no tiles", first.Add(time.Minute))
		}, exitContested, "divergent", []string{
			fmt.Sprintf("DIVERGENT %s: size 12 (root %s, cosigned by other) and size 9 (root %s, cosigned by self) are both signed by the log; nobody has shown them consistent", l.Origin(), b64(lr), b64(sr)),
			"log serves no tiles; seen 2 times, first 2026-12-07T17:00:00Z, last 2026-12-07T17:01:00Z",
			"SUSPECT " + l.Origin() + ": 1 checkpoint the log did not let the node check",
			"CONTESTED " + l.Origin() + ": conflicting sizes 9, 12 (0 evidence, 1 open divergences)",
		}, nil, "1 log has an unproven divergence open"},
		{"resolved", func() error {
			return db.ResolveSuspicion(ctx, l.Origin(), 12, lr, store.ResolvedConsistent, first.Add(time.Hour))
		}, 0, "suspect", nil, []string{"DIVERGENT"}, ""},
	}
	for _, st := range steps {
		if err := st.do(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		code, out, errs := run()
		if code != st.code || !strings.Contains(errs, st.err) {
			t.Errorf("%s: exit %d (want %d), stderr %q\n%s", st.name, code, st.code, errs, out)
		}
		lines := strings.Split(out, "\n")
		if f := strings.Fields(lines[1]); len(lines) < 2 || f[len(f)-1] != st.state {
			t.Errorf("%s: row %q, want state %s", st.name, lines[1], st.state)
		}
		for _, want := range st.out {
			if !strings.Contains(out, want) {
				t.Errorf("%s: stdout lacks %q:\n%s", st.name, want, out)
			}
		}
		for _, not := range st.no {
			if strings.Contains(out, not) {
				t.Errorf("%s: stdout has %q:\n%s", st.name, not, out)
			}
		}
	}
}

// TestStatusStaleAndUnreadable: a node whose log has not been
// quorum-cosigned for twelve expected intervals makes vigil status exit 3
// and say since when; a node that cannot be read, or answers something
// other than /v1/logs, exits 2.
func TestStatusStaleAndUnreadable(t *testing.T) {
	// An interval of a millisecond: the checkpoint cosigned at start-up is
	// stale 12 ms later.
	url, _, l, _ := startFeedCmdNode(t, func(c *node.Config) { c.Freshness.DefaultInterval = time.Millisecond })
	// Cosignature times are whole seconds: wait until the node says stale.
	tk := time.NewTicker(5 * time.Millisecond)
	defer tk.Stop()
	end := time.After(10 * time.Second)
	for {
		body, err := newFeedClient(url).get(context.Background(), "/v1/logs")
		var logs feed.LogsResponse
		if err == nil && json.Unmarshal(body, &logs) == nil && len(logs.Logs) == 1 && logs.Logs[0].Freshness.State == feed.FreshnessStale {
			break
		}
		select {
		case <-tk.C:
		case <-end:
			t.Fatalf("the log never turned stale: %v %s", err, body)
		}
	}
	var out, errb bytes.Buffer
	code := vigilMain([]string{"status", "--node", url}, &out, &errb)
	if code != exitStale || !strings.Contains(errb.String(), "1 log is stale") || !strings.Contains(out.String(), "STALE "+l.Origin()+": no quorum-cosigned checkpoint since ") {
		t.Errorf("stale: exit %d, stderr %q\n%s", code, errb.String(), out.String())
	}
	if f := strings.Fields(strings.Split(out.String(), "\n")[1]); len(f) < 3 || f[len(f)-3] != "stale" {
		t.Errorf("stale: row %q lacks the freshness column", strings.Split(out.String(), "\n")[1])
	}

	notJSON := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "<html>") }))
	defer notJSON.Close()
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	for _, tc := range []struct{ name, url, err string }{
		{"not a /v1/logs response", notJSON.URL, "decoding /v1/logs"},
		{"nothing listening", closed.URL, "connect"},
	} {
		out.Reset()
		errb.Reset()
		if code := vigilMain([]string{"status", "--node", tc.url}, &out, &errb); code != exitStatusUnreadable || !strings.Contains(errb.String(), tc.err) {
			t.Errorf("%s: exit %d, stderr %q", tc.name, code, errb.String())
		}
	}
}

// TestStatusVerdict: the exit code of each state, the lowest non-zero code
// winning when several apply.
func TestStatusVerdict(t *testing.T) {
	fresh := feed.LogInfo{Origin: "a", State: feed.StateOK, Freshness: feed.Freshness{State: feed.FreshnessFresh}}
	late := fresh
	late.Freshness.State = feed.FreshnessLate
	stale := fresh
	stale.Freshness.State = feed.FreshnessStale
	contested := fresh
	contested.Contested = &feed.Contested{Sizes: []uint64{9, 12}, Evidence: []string{}, Suspicions: []string{"x"}}
	staleContested := contested
	staleContested.Freshness.State = feed.FreshnessStale
	tests := []struct {
		name     string
		logs     feed.LogsResponse
		code     int
		contains string
	}{
		{"all fresh", feed.LogsResponse{Logs: []feed.LogInfo{fresh}}, 0, ""},
		{"late is no failure", feed.LogsResponse{Logs: []feed.LogInfo{fresh, late}}, 0, ""},
		{"stale", feed.LogsResponse{Logs: []feed.LogInfo{fresh, stale}}, exitStale, "1 log is stale"},
		{"contested", feed.LogsResponse{Logs: []feed.LogInfo{contested}}, exitContested, "1 log is contested"},
		{"evidence held", feed.LogsResponse{Evidence: 2, Logs: []feed.LogInfo{fresh}}, exitContested, "2 piece(s) of evidence"},
		{"contested and stale", feed.LogsResponse{Logs: []feed.LogInfo{staleContested, stale}}, exitContested, "1 log is contested"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := statusVerdict(tc.logs)
			code := 0
			var ee *exitError
			if errors.As(err, &ee) {
				code = ee.code
			} else if err != nil {
				t.Fatalf("error without an exit code: %v", err)
			}
			if code != tc.code || (tc.contains != "" && !strings.Contains(err.Error(), tc.contains)) {
				t.Errorf("exit %d (%v), want %d with %q", code, err, tc.code, tc.contains)
			}
		})
	}
}
