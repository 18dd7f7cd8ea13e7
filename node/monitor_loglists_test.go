package node_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigilnet/vigil/node"
	"github.com/vigilnet/vigil/testnet/scriptlog"
)

// listServer serves a logs/v0 list that the test changes, over real HTTP.
type listServer struct {
	mu     sync.Mutex
	text   string
	status int
	gets   int
	srv    *httptest.Server
}

func newListServer(t *testing.T, text string) *listServer {
	ls := &listServer{text: text, status: http.StatusOK}
	ls.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ls.mu.Lock()
		defer ls.mu.Unlock()
		ls.gets++
		if ls.status != http.StatusOK {
			http.Error(w, "down", ls.status)
			return
		}
		w.Write([]byte(ls.text))
	}))
	t.Cleanup(ls.srv.Close)
	return ls
}

func (ls *listServer) set(text string, status int) {
	ls.mu.Lock()
	ls.text, ls.status = text, status
	ls.mu.Unlock()
}

func (ls *listServer) fetches() int {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	return ls.gets
}

func listOf(entries ...string) string {
	s := "# test list\nlogs/v0\n"
	for _, e := range entries {
		s += e
	}
	return s
}

func listEntry(l *scriptlog.Log, qpd int) string {
	return fmt.Sprintf("vkey %s\nqpd %d\ncontact ops@%s\n", l.VerifierKey(), qpd, l.Origin())
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond) // polling a condition, not synchronising
	}
}

// TestNodeLogListRefresh serves a changing logs/v0 list over HTTP: the node
// adopts a log the list adds, keeps a log the list drops, keeps a log's key
// and qpd when the list changes them, and keeps everything when the list
// server fails.
func TestNodeLogListRefresh(t *testing.T) {
	a, b, c := newLog(t, "example.com/a"), newLog(t, "example.com/b"), newLog(t, "example.com/c")
	bOtherKey := newLog(t, "example.com/b")
	ls := newListServer(t, listOf(listEntry(b, 1000)))
	cfg, vkey := newConfig(t, rosterOf(a))
	cfg.LogLists = []string{ls.srv.URL + "/log-list.1"}
	cfg.LogListRefresh = 20 * time.Millisecond
	tn := startNode(t, cfg, vkey)

	if got := len(tn.n.Roster().Logs()); got != 2 {
		t.Fatalf("%d logs at start, want a and b", got)
	}
	code, body := tn.push(b, 0, 4)
	requireStatus(t, "b from the list", code, body, http.StatusOK)

	// The list drops b, lists b with another key and qpd, and adds c.
	ls.set(listOf(listEntry(bOtherKey, 5), listEntry(c, 1000)), http.StatusOK)
	waitFor(t, "c to be adopted", func() bool { _, ok := tn.n.Roster().Log(c.Origin()); return ok })
	code, body = tn.push(c, 0, 2)
	requireStatus(t, "c adopted by the periodic refresh", code, body, http.StatusOK)
	l, ok := tn.n.Roster().Log(b.Origin())
	if !ok || l.VKey != b.VerifierKey() || l.QPD != 1000 {
		t.Fatalf("b after a list changed it: %+v", l)
	}
	code, body = tn.push(b, 4, 6)
	requireStatus(t, "b with its configured key", code, body, http.StatusOK)
	code, body = tn.push(bOtherKey, 0, 3)
	requireStatus(t, "b signed by the key the list now names", code, body, http.StatusForbidden)

	// The list server fails: nothing is lost, the failure is counted.
	ls.set("", http.StatusInternalServerError)
	n := ls.fetches()
	waitFor(t, "a failed fetch", func() bool { return ls.fetches() > n+1 })
	if got := len(tn.n.Roster().Logs()); got != 3 {
		t.Fatalf("%d logs after the list server failed, want 3", got)
	}
	_, m := tn.get("/metrics")
	for _, want := range []string{
		"vigil_log_list_logs_added_total 1",
		`vigil_log_list_fetches_total{result="error"}`,
		`vigil_log_list_fetches_total{result="ok"}`,
		"vigil_roster_logs 3",
	} {
		if !hasMetric(m, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if hasMetric(m, "vigil_log_list_entries_ignored_total 0") {
		t.Error("the changed entry for b was not counted as ignored")
	}

	// An operator's reload re-reads the list too, and still keeps b.
	ls.set(listOf(listEntry(c, 1000)), http.StatusOK)
	if err := tn.n.ReloadRoster(); err != nil {
		t.Fatal(err)
	}
	if _, ok := tn.n.Roster().Log(b.Origin()); !ok {
		t.Fatal("a reload removed a log the list dropped")
	}
}

// TestNodeQPDBudget: a log with qpd 3 gets three add-checkpoint requests,
// then 429 with a Retry-After of about a third of a day, while another log
// is unaffected; the refusal and the remaining budget are metrics.
func TestNodeQPDBudget(t *testing.T) {
	a, b := newLog(t, "example.com/a"), newLog(t, "example.com/b")
	ls := newListServer(t, listOf(listEntry(b, 3)))
	cfg, vkey := newConfig(t, rosterOf(a))
	cfg.LogLists = []string{ls.srv.URL}
	tn := startNode(t, cfg, vkey)

	for i, step := range [][2]uint64{{0, 2}, {2, 4}, {4, 6}} {
		code, body := tn.push(b, step[0], step[1])
		requireStatus(t, "request "+strconv.Itoa(i+1)+" of 3", code, body, http.StatusOK)
	}
	code, body, hdr := pushTo(t, nil, tn.n.URL()+"/add-checkpoint", b, 6, 8)
	requireStatus(t, "fourth request", code, body, http.StatusTooManyRequests)
	ra, err := strconv.Atoi(hdr.Get("Retry-After"))
	if err != nil || ra < 8*3600 || ra > 8*3600+5 {
		t.Fatalf("Retry-After %q, want about 28800 s (a day / qpd)", hdr.Get("Retry-After"))
	}
	// Another log has no qpd budget.
	for i := uint64(0); i < 5; i++ {
		code, body := tn.push(a, i, i+1)
		requireStatus(t, "log without qpd", code, body, http.StatusOK)
	}
	_, m := tn.get("/metrics")
	for _, want := range []string{
		`vigil_witness_qpd_refused_total{origin="example.com/b"} 1`,
		`vigil_witness_qpd_remaining{origin="example.com/b"} 0`,
		`vigil_witness_add_checkpoint_requests_total{code="429"} 1`,
	} {
		if !hasMetric(m, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if hasMetric(m, `vigil_witness_qpd_remaining{origin="example.com/a"}`) {
		t.Error("a log without qpd has a budget gauge")
	}
}

// TestNodeLogListAdoptedAcrossRestart: logs adopted from a list stay as
// adopted across restarts, whatever the list says by then, and a list
// server that is down at start does not stop the node: it starts with what
// it adopted before and retries.
func TestNodeLogListAdoptedAcrossRestart(t *testing.T) {
	a, b, c, d := newLog(t, "example.com/a"), newLog(t, "example.com/b"), newLog(t, "example.com/c"), newLog(t, "example.com/d")
	bOtherKey := newLog(t, "example.com/b")
	ls := newListServer(t, listOf(listEntry(b, 1000)))
	cfg, vkey := newConfig(t, rosterOf(a))
	cfg.LogLists = []string{ls.srv.URL + "/log-list.1"}
	cfg.LogListRefresh = 20 * time.Millisecond

	tn := startNode(t, cfg, vkey)
	code, body := tn.push(b, 0, 3)
	requireStatus(t, "b from the list", code, body, http.StatusOK)
	tn.stop()

	// While the node is down the list re-keys b and adds c.
	ls.set(listOf(listEntry(bOtherKey, 5), listEntry(c, 1000)), http.StatusOK)
	tn = startNode(t, cfg, vkey)
	if l, ok := tn.n.Roster().Log(b.Origin()); !ok || l.VKey != b.VerifierKey() || l.QPD != 1000 {
		t.Fatalf("b after a restart with a changed list: %+v", l)
	}
	code, body = tn.push(b, 3, 5)
	requireStatus(t, "b with the key it was adopted with", code, body, http.StatusOK)
	code, body = tn.push(bOtherKey, 0, 2)
	requireStatus(t, "b with the key the list gives now", code, body, http.StatusForbidden)
	code, body = tn.push(c, 0, 2)
	requireStatus(t, "c adopted at start", code, body, http.StatusOK)
	tn.stop()

	// The list server is down at start: the node starts with what it
	// adopted, then picks up d once the server is back.
	ls.set("", http.StatusServiceUnavailable)
	tn = startNode(t, cfg, vkey)
	for _, l := range []*scriptlog.Log{a, b, c} {
		if _, ok := tn.n.Roster().Log(l.Origin()); !ok {
			t.Fatalf("%s missing after a start with the list server down", l.Origin())
		}
	}
	ls.set(listOf(listEntry(d, 1000)), http.StatusOK)
	waitFor(t, "d to be adopted after the list server is back", func() bool { _, ok := tn.n.Roster().Log(d.Origin()); return ok })
	code, body = tn.push(d, 0, 1)
	requireStatus(t, "d", code, body, http.StatusOK)
	if _, ok := tn.n.Roster().Log(c.Origin()); !ok {
		t.Fatal("c was dropped when the list stopped naming it")
	}
}

// TestNodeLogListFileErrors: a list file that is missing, or that gives a
// roster log another key, stops the node from starting.
func TestNodeLogListFileErrors(t *testing.T) {
	a := newLog(t, "example.com/a")
	aOtherKey := newLog(t, "example.com/a")
	for name, list := range map[string]*string{
		"missing file":         nil,
		"re-keys a roster log": func() *string { s := listOf(listEntry(aOtherKey, 10)); return &s }(),
	} {
		t.Run(name, func(t *testing.T) {
			cfg, _ := newConfig(t, rosterOf(a))
			path := filepath.Join(t.TempDir(), "list.txt")
			if list != nil {
				writeFile(t, path, *list)
			}
			cfg.LogLists = []string{path}
			ln := listen(t)
			defer ln.Close()
			if _, err := node.New(cfg, node.Deps{Listener: ln, Logger: testLogger(t)}); err == nil || !strings.Contains(err.Error(), path) {
				t.Fatalf("New: %v, want an error naming %s", err, path)
			}
		})
	}
}
