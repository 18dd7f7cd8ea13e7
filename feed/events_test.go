package feed_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigilnet/vigil/feed"
	"github.com/vigilnet/vigil/tlog"
)

func seqOf(t *testing.T, id string) uint64 {
	t.Helper()
	_, s, ok := strings.Cut(id, "-")
	n, err := strconv.ParseUint(s, 10, 64)
	if !ok || err != nil {
		t.Fatalf("event ID %q is not <epoch>-<seq>", id)
	}
	return n
}

func evidenceFor(origin string, i int) feed.Evidence {
	return feed.Evidence{
		ID: fmt.Sprintf("%064x", i+1), Kind: "log-equivocation-same-size", Origin: origin,
		Sizes: []uint64{7, 7}, Detected: time.Unix(1700000000+int64(i), 0).UTC(),
		Summary: fmt.Sprintf("log %q signed two different roots for tree size 7", origin),
	}
}

func TestEventsOrderAndResume(t *testing.T) {
	e := newEnv(t, envOptions{logs: 2, witnesses: 1, eventBuffer: 4})
	all := e.subscribe("")
	s := e.subscribe("")
	peers := []feed.Peer{{ID: "12D3KooWpeer1", Role: "witness", Name: "w0", Score: 3, Connected: true}}
	// Five changes of three kinds, in a known order.
	var want []string
	for i := range 2 {
		e.logs[i].AppendN(3, "a")
		e.cosign(i, 0)
		e.waitServed(s, i, 3, 1)
		want = append(want, "checkpoint "+tlog.LogID(e.logs[i].Origin()))
	}
	e.src.addEvidence(evidenceFor(e.logs[0].Origin(), 0), []byte("file 0"))
	e.feed.EvidenceUpdated()
	s.waitFor(t, func(ev sse) bool { return ev.typ == feed.EventEvidence })
	want = append(want, "evidence "+fmt.Sprintf("%064x", 1))
	e.src.setPeers(peers)
	e.feed.PeersUpdated()
	s.waitFor(t, func(ev sse) bool { return ev.typ == feed.EventPeers })
	want = append(want, "peers 1")
	e.logs[0].AppendN(2, "b")
	e.cosign(0, 0)
	e.waitServed(s, 0, 5, 1)
	want = append(want, "checkpoint "+tlog.LogID(e.logs[0].Origin()))

	// A subscriber sees every event, in order, with consecutive IDs.
	for i, w := range want {
		ev := all.next(t)
		if got := describe(t, ev); got != w || seqOf(t, ev.id) != uint64(i+1) {
			t.Errorf("event %d: %s (ID %s), want %s", i+1, got, ev.id, w)
		}
	}

	// The ring holds the last 4 of the 5 events.
	epoch := epochOf(t, e)
	tests := []struct {
		name, lastID string
		want         []string
	}{
		{"resume after the first", epoch + "-1", want[1:]},
		{"resume mid-stream", epoch + "-3", want[3:]},
		{"resume at the newest", epoch + "-5", nil},
		{"too old for the ring", epoch + "-0", append([]string{"reset"}, want[1:]...)},
		{"another epoch (restart)", "zzz-3", []string{"reset"}},
		{"garbage", "not an id", []string{"reset"}},
		{"from the future", epoch + "-99", []string{"reset"}},
	}
	streams := make([]*stream, len(tests))
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := e.subscribe(tc.lastID)
			streams[i] = r
			var got []string
			for range tc.want {
				got = append(got, describe(t, r.next(t)))
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
	// Nothing else was pending on any stream: the next event each sees is
	// a new one.
	e.src.setPeers(nil)
	e.feed.PeersUpdated()
	for i, r := range streams {
		if r == nil {
			continue
		}
		if ev := r.next(t); ev.typ != feed.EventPeers || seqOf(t, ev.id) != 6 {
			t.Errorf("%s: after the replay got %s %s, want the new peers event", tests[i].name, ev.id, describe(t, ev))
		}
	}
}

// TestEventsTypes: ?types= keeps only the events asked for, and names
// what it does not know.
func TestEventsTypes(t *testing.T) {
	e := newEnv(t, envOptions{logs: 1, witnesses: 1})
	all := e.subscribe("")
	evOnly := e.subscribeQuery("types=evidence", "")
	e.logs[0].AppendN(3, "a")
	e.cosign(0, 0)
	e.waitServed(all, 0, 3, 1)
	e.src.addEvidence(evidenceFor(e.logs[0].Origin(), 0), []byte("file 0"))
	e.feed.EvidenceUpdated()
	ev := evOnly.next(t)
	if ev.typ != feed.EventEvidence || seqOf(t, ev.id) != 2 {
		t.Fatalf("types=evidence: first event %s %s, want the evidence (seq 2)", ev.id, describe(t, ev))
	}
	var got feed.Evidence
	if err := json.Unmarshal([]byte(ev.data), &got); err != nil || got.ID != fmt.Sprintf("%064x", 1) {
		t.Fatalf("evidence event data: %+v, %v", got, err)
	}
	for _, q := range []string{"types=checkpoint,bogus", "types=reset", "types=,evidence"} {
		code, _, body := e.get("/v1/events?" + q)
		if code != 400 || !strings.Contains(body, "bad types") {
			t.Errorf("%s: %d %s, want 400 naming the bad type", q, code, body)
		}
	}
}

// TestEvidenceNotPaced: new evidence is announced at once even while the
// feed paces view rebuilds (here for an hour after a checkpoint's).
func TestEvidenceNotPaced(t *testing.T) {
	e := newEnv(t, envOptions{logs: 1, witnesses: 1, rebuildInterval: time.Hour})
	s := e.subscribe("")
	e.logs[0].AppendN(3, "a")
	e.cosign(0, 0)
	e.waitServed(s, 0, 3, 1) // the round that starts the hour's pacing
	e.src.addEvidence(evidenceFor(e.logs[0].Origin(), 0), []byte("file 0"))
	e.feed.EvidenceUpdated()
	if ev := s.next(t); ev.typ != feed.EventEvidence {
		t.Fatalf("got %s, want the evidence", describe(t, ev))
	}
}

// epochOf reads the epoch from /v1/logs's last_event_id.
func epochOf(t *testing.T, e *env) string {
	t.Helper()
	_, _, body := e.get("/v1/logs")
	var l feed.LogsResponse
	if err := json.Unmarshal([]byte(body), &l); err != nil {
		t.Fatal(err)
	}
	ep, _, _ := strings.Cut(l.LastEventID, "-")
	return ep
}

func describe(t *testing.T, ev sse) string {
	t.Helper()
	switch ev.typ {
	case feed.EventCheckpoint:
		var c feed.CheckpointEvent
		json.Unmarshal([]byte(ev.data), &c)
		return "checkpoint " + c.LogID
	case feed.EventEvidence:
		var c feed.Evidence
		json.Unmarshal([]byte(ev.data), &c)
		return "evidence " + c.ID
	case feed.EventPeers:
		var c feed.PeersEvent
		json.Unmarshal([]byte(ev.data), &c)
		return fmt.Sprintf("peers %d", len(c.Peers))
	}
	return ev.typ
}

// TestEventsBeforeRun: a change reported between New and Run (a node
// starts Run in a goroutine of its own, and its hooks may fire first) is
// announced once Run starts, not taken in as the starting state.
func TestEventsBeforeRun(t *testing.T) {
	e := newEnv(t, envOptions{logs: 1, witnesses: 1, noRun: true})
	s := e.subscribe("")
	e.src.setPeers([]feed.Peer{{ID: "12D3KooWpeer1", Role: "witness", Name: "w0", Connected: true}})
	e.feed.PeersUpdated()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); e.feed.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	if ev := s.next(t); ev.typ != feed.EventPeers {
		t.Errorf("first event %s, want the peers reported before Run", describe(t, ev))
	}
}
