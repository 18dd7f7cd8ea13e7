package feed_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/vigilnet/vigil/feed"
	"github.com/vigilnet/vigil/store"
	"github.com/vigilnet/vigil/tlog"
)

// at is a fixed clock for records written by these tests.
var at = time.Date(2026, 12, 7, 17, 0, 0, 0, time.UTC)

// divergence writes an unproven divergence of log li to the test source's
// store: the log's own checkpoint at small against a fork's at large.
func (e *env) divergence(li int, small, large uint64, smallCos, largeCos []string, when time.Time) (store.SuspicionSide, store.SuspicionSide) {
	e.t.Helper()
	l := e.logs[li]
	if l.Size() < small {
		l.AppendN(int(small-l.Size()), "a")
	}
	fork, err := l.Fork(small)
	if err != nil {
		e.t.Fatal(err)
	}
	fork.AppendN(int(large-small), "fork")
	sr, err := l.Root(small)
	if err != nil {
		e.t.Fatal(err)
	}
	lr, err := fork.Root(large)
	if err != nil {
		e.t.Fatal(err)
	}
	s := store.SuspicionSide{Size: small, Root: sr, Cosigners: smallCos}
	g := store.SuspicionSide{Size: large, Root: lr, Cosigners: largeCos}
	if err := e.src.db.RecordDivergence(context.Background(), l.Origin(), s, g, "no consistency proof from "+fmt.Sprint(small)+" to "+fmt.Sprint(large), when); err != nil {
		e.t.Fatal(err)
	}
	return s, g
}

func b64(r [32]byte) string { return base64.StdEncoding.EncodeToString(r[:]) }

func (e *env) logsResp(t *testing.T) feed.LogsResponse {
	t.Helper()
	code, _, body := e.get("/v1/logs")
	var lr feed.LogsResponse
	if err := json.Unmarshal([]byte(body), &lr); code != 200 || err != nil {
		t.Fatalf("/v1/logs: %d %v %s", code, err, body)
	}
	return lr
}

func rowOf(t *testing.T, lr feed.LogsResponse, origin string) feed.LogInfo {
	t.Helper()
	for _, l := range lr.Logs {
		if l.Origin == origin {
			return l
		}
	}
	t.Fatalf("no row for %s", origin)
	return feed.LogInfo{}
}

// TestLogsSuspicionState: each log's row carries its open suspicions and a
// state; evidence outranks a divergence, which outranks a suspicion; a
// resolved one drops off the row.
func TestLogsSuspicionState(t *testing.T) {
	e := newEnv(t, envOptions{logs: 4, witnesses: 3, quorum: "2", noRun: true})
	ctx := context.Background()
	o := func(i int) string { return e.logs[i].Origin() }
	// log 0: nothing. log 1: a divergence. log 2: an unverifiable
	// checkpoint only. log 3: a divergence and evidence.
	small, large := e.divergence(1, 5, 9, []string{"w0"}, []string{"w1", "w2"}, at)
	e.logs[2].AppendN(4, "a")
	r2, _ := e.logs[2].Root(4)
	if err := e.src.db.RecordSuspicion(ctx, o(2), 4, r2, "log serves no consistency proof", at); err != nil {
		t.Fatal(err)
	}
	e.divergence(3, 2, 3, nil, []string{"w0"}, at)
	e.src.addEvidence(evidenceFor(o(3), 0), []byte("file"))

	lr := e.logsResp(t)
	tests := []struct {
		log   int
		state string
		open  int
		kind  string
	}{
		{0, feed.StateOK, 0, ""},
		{1, feed.StateDivergent, 1, feed.SuspicionDivergence},
		{2, feed.StateSuspect, 1, feed.SuspicionUnverifiable},
		{3, feed.StateEvidence, 1, feed.SuspicionDivergence},
	}
	for _, tc := range tests {
		t.Run(o(tc.log), func(t *testing.T) {
			row := rowOf(t, lr, o(tc.log))
			if row.State != tc.state || row.OpenSuspicions != tc.open || len(row.Suspicions) != tc.open {
				t.Fatalf("state %q, %d open, %d listed; want %q, %d", row.State, row.OpenSuspicions, len(row.Suspicions), tc.state, tc.open)
			}
			if tc.open > 0 && row.Suspicions[0].Kind != tc.kind {
				t.Errorf("kind %q, want %q", row.Suspicions[0].Kind, tc.kind)
			}
		})
	}
	if lr.OpenSuspicions != 3 || lr.Divergent != 2 {
		t.Errorf("totals: %d open, %d divergent; want 3, 2", lr.OpenSuspicions, lr.Divergent)
	}

	// The divergence names both checkpoints, as the API formats roots,
	// and who cosigned each.
	got := rowOf(t, lr, o(1)).Suspicions[0]
	want := feed.Suspicion{
		ID:   fmt.Sprintf("%s-%d-%x", tlog.LogID(o(1)), 9, large.Root),
		Kind: feed.SuspicionDivergence, Origin: o(1), LogID: tlog.LogID(o(1)),
		Size: 9, Root: b64(large.Root), Cosigners: []string{"w1", "w2"},
		Other:  &feed.SuspicionSide{Size: 5, Root: b64(small.Root), Cosigners: []string{"w0"}},
		Reason: "no consistency proof from 5 to 9", FirstSeen: at, LastSeen: at, Count: 1, Open: true,
	}
	if a, b := mustMarshal(got), mustMarshal(want); a != b {
		t.Errorf("divergence:\n got %s\nwant %s", a, b)
	}
	// The smaller side without cosigners is an empty list, not null.
	if s := mustMarshal(rowOf(t, lr, o(3)).Suspicions[0]); !strings.Contains(s, `"other":{"size":2,"root":"`) || !strings.Contains(s, `"cosigners":[]}`) {
		t.Errorf("log 3's divergence: %s", s)
	}

	// Resolved: off the row, the log is ok again.
	if err := e.src.db.ResolveSuspicion(ctx, o(1), large.Size, large.Root, store.ResolvedConsistent, at.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	lr = e.logsResp(t)
	if row := rowOf(t, lr, o(1)); row.State != feed.StateOK || row.OpenSuspicions != 0 || row.Suspicions == nil || len(row.Suspicions) != 0 {
		t.Errorf("resolved divergence still on the row: %+v", row)
	}
	if lr.Divergent != 1 {
		t.Errorf("divergent logs after the resolution: %d, want 1", lr.Divergent)
	}

	// A store that fails: the row keeps what the feed last read.
	e.src.mu.Lock()
	e.src.suspicionErr = errors.New("disk on fire")
	e.src.mu.Unlock()
	if row := rowOf(t, e.logsResp(t), o(2)); row.State != feed.StateSuspect {
		t.Errorf("with a failing store, log 2 is %q", row.State)
	}
	if code, _, body := e.get("/v1/suspicions"); code != 503 || !strings.Contains(body, `"status":503`) {
		t.Errorf("list with a failing store: %d %s", code, body)
	}
}

// TestLogsCapsSuspicions: a row lists at most MaxLogSuspicions, newest seen
// first, and counts them all.
func TestLogsCapsSuspicions(t *testing.T) {
	e := newEnv(t, envOptions{logs: 1, witnesses: 1, noRun: true})
	n := feed.MaxLogSuspicions + 3
	e.logs[0].AppendN(n, "a")
	for i := 1; i <= n; i++ {
		r, _ := e.logs[0].Root(uint64(i))
		if err := e.src.db.RecordSuspicion(context.Background(), e.logs[0].Origin(), uint64(i), r, "no proof", at.Add(time.Duration(i)*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	row := e.logsResp(t).Logs[0]
	if row.OpenSuspicions != n || len(row.Suspicions) != feed.MaxLogSuspicions || row.Suspicions[0].Size != uint64(n) {
		t.Errorf("%d open, %d listed, first size %d", row.OpenSuspicions, len(row.Suspicions), row.Suspicions[0].Size)
	}
}

// TestSuspicionList: GET /v1/suspicions filters by open, pages by ID and
// refuses what it does not understand.
func TestSuspicionList(t *testing.T) {
	e := newEnv(t, envOptions{logs: 2, witnesses: 2, noRun: true})
	ctx := context.Background()
	// Five suspicions: log 0 sizes 1..3 (size 2 resolved), log 1 two
	// divergences (one resolved as evidence).
	e.logs[0].AppendN(3, "a")
	for i := uint64(1); i <= 3; i++ {
		r, _ := e.logs[0].Root(i)
		if err := e.src.db.RecordSuspicion(ctx, e.logs[0].Origin(), i, r, "tiles do not reproduce the root", at); err != nil {
			t.Fatal(err)
		}
	}
	r2, _ := e.logs[0].Root(2)
	if err := e.src.db.ResolveSuspicion(ctx, e.logs[0].Origin(), 2, r2, store.ResolvedConsistent, at.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	e.divergence(1, 4, 6, []string{"w0"}, []string{"w1"}, at)
	_, g := e.divergence(1, 6, 8, []string{"w1"}, []string{"w0"}, at)
	if err := e.src.db.ResolveSuspicion(ctx, e.logs[1].Origin(), 8, g.Root, store.ResolvedEvidence, at.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}

	list := func(query string) (int, feed.SuspicionList, string, string) {
		t.Helper()
		code, h, body := e.get("/v1/suspicions" + query)
		var sl feed.SuspicionList
		if code == 200 {
			if err := json.Unmarshal([]byte(body), &sl); err != nil {
				t.Fatalf("%s: %v", query, err)
			}
		}
		return code, sl, h.Get("Link"), body
	}
	summary := func(sl feed.SuspicionList) string {
		var parts []string
		for _, s := range sl.Suspicions {
			p := fmt.Sprintf("%s:%d", strings.TrimPrefix(s.Origin, "example.com/"), s.Size)
			if !s.Open {
				p += "=" + s.Resolved
			}
			parts = append(parts, p)
		}
		return strings.Join(parts, " ")
	}
	_, all, _, _ := list("")
	ids := map[string]string{}
	for _, s := range all.Suspicions {
		ids[fmt.Sprintf("%s:%d", strings.TrimPrefix(s.Origin, "example.com/"), s.Size)] = s.ID
	}
	nameOf := func(s string) string { n, _, _ := strings.Cut(s, "="); return n }
	// Log IDs order the logs.
	first, second := "log0", "log1"
	if tlog.LogID(e.logs[1].Origin()) < tlog.LogID(e.logs[0].Origin()) {
		first, second = second, first
	}
	byLog := map[string]string{"log0": "log0:1 log0:2=consistent log0:3", "log1": "log1:6 log1:8=evidence"}
	openByLog := map[string]string{"log0": "log0:1 log0:3", "log1": "log1:6"}

	tests := []struct {
		name  string
		query string
		code  int
		want  string // summary, or a substring of the error
		next  string // the next page's after, by name
	}{
		{"all", "", 200, byLog[first] + " " + byLog[second], ""},
		{"open", "?open=true", 200, openByLog[first] + " " + openByLog[second], ""},
		{"resolved", "?open=false", 200, "log0:2=consistent log1:8=evidence", ""},
		{"first page", "?limit=2", 200, strings.Join(strings.Fields(byLog[first] + " " + byLog[second])[:2], " "), strings.Fields(byLog[first] + " " + byLog[second])[1]},
		{"after", "?limit=4&after=" + ids[nameOf(strings.Fields(byLog[first] + " " + byLog[second])[1])], 200, strings.Join(strings.Fields(byLog[first] + " " + byLog[second])[2:], " "), ""},
		{"after the last", "?open=false&after=" + all.Suspicions[len(all.Suspicions)-1].ID, 200, "", ""},
		{"unknown parameter", "?state=open", 400, `unknown parameter \"state\"`, ""},
		{"bad open", "?open=yes", 400, `bad open: \"yes\" is not true or false`, ""},
		{"open twice", "?open=true&open=false", 400, "bad open: given 2 times", ""},
		{"bad limit", "?limit=0", 400, "bad limit: 0 is not between 1 and 1000", ""},
		{"limit not a number", "?limit=ten", 400, "bad limit", ""},
		{"bad after", "?after=xyz", 400, "bad after", ""},
		{"after with a short root", "?after=" + tlog.LogID("x") + "-3-abcd", 400, "bad after", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, sl, link, body := list(tc.query)
			if code != tc.code {
				t.Fatalf("status %d, want %d: %s", code, tc.code, body)
			}
			if code != 200 {
				if !strings.Contains(body, tc.want) || !strings.Contains(body, fmt.Sprintf(`"status":%d`, code)) {
					t.Errorf("error body %s, want %q", body, tc.want)
				}
				return
			}
			if got := summary(sl); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
			wantNext := ""
			if tc.next != "" {
				wantNext = ids[nameOf(tc.next)]
			}
			if sl.Next != wantNext {
				t.Errorf("next %q, want %q", sl.Next, wantNext)
			}
			if wantNext != "" && !strings.Contains(link, "after="+url.QueryEscape(wantNext)) {
				t.Errorf("Link %q", link)
			}
		})
	}
	// A resolved suspicion says how and when.
	_, resolved, _, _ := list("?open=false")
	for _, s := range resolved.Suspicions {
		if s.ResolvedAt == nil || !s.ResolvedAt.Equal(at.Add(time.Hour)) || s.Open {
			t.Errorf("resolved suspicion %+v", s)
		}
	}
}

// TestSuspicionEvents: a suspicion event when a divergence opens, when it
// is seen again and when it resolves; none when nothing changed.
func TestSuspicionEvents(t *testing.T) {
	e := newEnv(t, envOptions{logs: 1, witnesses: 3})
	s := e.subscribe("")
	only := e.subscribeQuery("types=suspicion", "")
	ctx := context.Background()
	small, large := e.divergence(0, 3, 5, []string{"w0"}, []string{"w1"}, at)
	e.feed.SuspicionUpdated()
	decode := func(ev sse) feed.Suspicion {
		t.Helper()
		var su feed.Suspicion
		if err := json.Unmarshal([]byte(ev.data), &su); err != nil {
			t.Fatalf("suspicion event data %q: %v", ev.data, err)
		}
		return su
	}
	isSusp := func(ev sse) bool { return ev.typ == feed.EventSuspicion }
	opened := decode(s.waitFor(t, isSusp))
	if !opened.Open || opened.Kind != feed.SuspicionDivergence || opened.Size != 5 || opened.Other == nil || opened.Other.Size != 3 ||
		opened.Other.Root != b64(small.Root) || opened.Root != b64(large.Root) || fmt.Sprint(opened.Cosigners, opened.Other.Cosigners) != "[w1] [w0]" || opened.Count != 1 {
		t.Errorf("opened: %+v", opened)
	}

	// Seen again, now cosigned by one more witness.
	large.Cosigners = []string{"w1", "w2"}
	if err := e.src.db.RecordDivergence(ctx, e.logs[0].Origin(), small, large, "still no proof", at.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	e.feed.SuspicionUpdated()
	changed := decode(s.waitFor(t, isSusp))
	if changed.Count != 2 || fmt.Sprint(changed.Cosigners) != "[w1 w2]" || changed.Reason != "still no proof" || !changed.LastSeen.Equal(at.Add(time.Second)) {
		t.Errorf("changed: %+v", changed)
	}

	// Nothing changed: no event. Then resolution: one event, and the
	// checkpoint event that follows proves none came between.
	e.feed.SuspicionUpdated()
	if err := e.src.db.ResolveSuspicion(ctx, e.logs[0].Origin(), 5, large.Root, store.ResolvedConsistent, at.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	e.feed.SuspicionUpdated()
	resolved := decode(s.next(t))
	if resolved.Open || resolved.Resolved != feed.ResolvedConsistent || resolved.ResolvedAt == nil || resolved.ID != opened.ID {
		t.Errorf("resolved: %+v", resolved)
	}
	e.logs[0].AppendN(1, "b")
	e.cosign(0, 0)
	if ev := s.next(t); ev.typ != feed.EventCheckpoint {
		t.Errorf("after the resolution: %s %s", ev.typ, ev.data)
	}

	// The filtered stream got the three suspicion events and nothing else.
	for i, want := range []uint64{1, 2, 2} {
		ev := only.next(t)
		if ev.typ != feed.EventSuspicion || decode(ev).Count != want {
			t.Errorf("filtered event %d: %s %s", i, ev.typ, ev.data)
		}
	}
	if code, _, body := e.get("/v1/events?types=suspicion,nope"); code != 400 || !strings.Contains(body, "suspicion") {
		t.Errorf("bad types: %d %s", code, body)
	}
}
