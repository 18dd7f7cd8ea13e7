package node_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigilnet/vigil/feed"
	"github.com/vigilnet/vigil/gossip/evidence"
	"github.com/vigilnet/vigil/node"
	vpb "github.com/vigilnet/vigil/proto"
	"github.com/vigilnet/vigil/store"
)

// manualClock is a clock the test moves by hand.
type manualClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *manualClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// eventStream follows /v1/events with the events' data.
type eventStream struct{ ch chan feed.StreamEvent }

func (fn *feedNode) events() *eventStream {
	fn.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	fn.t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", fn.n.URL()+"/v1/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fn.t.Fatal(err)
	}
	s := &eventStream{ch: make(chan feed.StreamEvent, 256)}
	br := bufio.NewReader(resp.Body)
	if _, err := br.ReadString('\n'); err != nil { // the retry line: subscribed
		fn.t.Fatal(err)
	}
	go func() {
		defer resp.Body.Close()
		defer close(s.ch)
		feed.ReadEvents(br, func(ev feed.StreamEvent) bool { s.ch <- ev; return true })
	}()
	return s
}

// next returns the next event of type typ, decoded into v.
func (s *eventStream) next(t *testing.T, typ string, v any) {
	t.Helper()
	end := time.After(20 * time.Second)
	for {
		select {
		case ev, ok := <-s.ch:
			if !ok {
				t.Fatal("event stream closed")
			}
			if ev.Type != typ {
				continue
			}
			if err := json.Unmarshal([]byte(ev.Data), v); err != nil {
				t.Fatal(err)
			}
			return
		case <-end:
			t.Fatalf("no %s event before the deadline", typ)
		}
	}
}

// logRow returns the node's only /v1/logs entry.
func (fn *feedNode) logRow() feed.LogInfo {
	fn.t.Helper()
	code, body := fn.get("/v1/logs")
	var logs feed.LogsResponse
	if err := json.Unmarshal([]byte(body), &logs); code != 200 || err != nil || len(logs.Logs) != 1 {
		fn.t.Fatalf("/v1/logs: %d %v %s", code, err, body)
	}
	return logs.Logs[0]
}

// waitRow polls /v1/logs until ok holds.
func (fn *feedNode) waitRow(what string, ok func(feed.LogInfo) bool) feed.LogInfo {
	fn.t.Helper()
	tk := time.NewTicker(5 * time.Millisecond)
	defer tk.Stop()
	end := time.After(20 * time.Second)
	for {
		row := fn.logRow()
		if ok(row) {
			return row
		}
		select {
		case <-tk.C:
		case <-end:
			fn.t.Fatalf("%s: not before the deadline; last %+v", what, row)
		}
	}
}

// metric returns the value of name{origin=...} on the node's /metrics.
func (fn *feedNode) metric(name string) float64 {
	fn.t.Helper()
	_, body := fn.get("/metrics")
	prefix := fmt.Sprintf("%s{origin=%q} ", name, fn.log.Origin())
	for line := range strings.SplitSeq(body, "\n") {
		if v, ok := strings.CutPrefix(line, prefix); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				fn.t.Fatal(err)
			}
			return f
		}
	}
	fn.t.Fatalf("/metrics lacks %s", prefix)
	return 0
}

// TestNodeFreshnessAndContested drives a real node (Badger store, HTTP,
// its own witness) on an injected clock through a log that goes late,
// stale and fresh again, then a split view of it, and checks the events,
// GET /v1/logs and /metrics at each step.
func TestNodeFreshnessAndContested(t *testing.T) {
	clk := &manualClock{t: time.Now().Truncate(time.Second)}
	fn := startFeedNodeWith(t, clk.Now, func(c *node.Config) {
		c.Freshness = node.FreshnessConfig{DefaultInterval: time.Hour, CheckEvery: 5 * time.Millisecond,
			Intervals: map[string]time.Duration{"example.com/nodelog": time.Minute}}
	})
	s := fn.events()

	// The node cosigns size 5 (one of the two cosignatures the quorum
	// needs): no event. w1's cosignature arrives by gossip: the first
	// checkpoint event is the cosigned checkpoint.
	fn.log.AppendN(5, "a")
	fn.push(0)
	fn.waitRow("size 5 held", func(l feed.LogInfo) bool { return l.Latest != nil && l.Latest.Size == 5 })
	fn.merge(5, 0)
	var cp feed.CheckpointEvent
	s.next(t, feed.EventCheckpoint, &cp)
	if cp.Size != 5 || !cp.QuorumMet || cp.Contested != nil {
		t.Fatalf("first checkpoint event: %+v", cp)
	}
	row := fn.waitRow("fresh", func(l feed.LogInfo) bool { return l.Freshness.QuorumAgeSeconds != nil })
	if row.Freshness.State != feed.FreshnessFresh || row.Freshness.ExpectedIntervalSeconds != 60 || row.Contested != nil {
		t.Fatalf("fresh row: %+v", row)
	}
	if got := fn.metric("vigil_log_expected_interval_seconds"); got != 60 {
		t.Errorf("expected interval gauge %v", got)
	}

	for _, st := range []struct {
		advance     time.Duration
		state, prev string
		age, stale  float64
	}{
		{2*time.Minute + time.Second, feed.FreshnessLate, feed.FreshnessFresh, 121, 0},
		{10 * time.Minute, feed.FreshnessStale, feed.FreshnessLate, 721, 1},
	} {
		clk.Advance(st.advance)
		var ev feed.FreshnessEvent
		s.next(t, feed.EventFreshness, &ev)
		if ev.State != st.state || ev.Previous != st.prev || ev.QuorumAgeSeconds == nil || *ev.QuorumAgeSeconds != st.age {
			t.Errorf("%s: event %+v", st.state, ev)
		}
		if row := fn.logRow(); row.Freshness.State != st.state || *row.Freshness.QuorumAgeSeconds != st.age {
			t.Errorf("%s: row %+v", st.state, row.Freshness)
		}
		if got := fn.metric("vigil_log_stale"); got != st.stale {
			t.Errorf("%s: vigil_log_stale %v, want %v", st.state, got, st.stale)
		}
		if got := fn.metric("vigil_log_quorum_age_seconds"); got != st.age {
			t.Errorf("%s: vigil_log_quorum_age_seconds %v, want %v", st.state, got, st.age)
		}
	}

	// The log publishes again and both cosignatures arrive: fresh again.
	fn.log.AppendN(3, "b")
	fn.push(5)
	fn.merge(8, 0)
	s.next(t, feed.EventCheckpoint, &cp)
	if cp.Size != 8 || !cp.QuorumMet {
		t.Fatalf("growth after stale: %+v", cp)
	}
	var ev feed.FreshnessEvent
	s.next(t, feed.EventFreshness, &ev)
	if ev.State != feed.FreshnessFresh || ev.Previous != feed.FreshnessStale {
		t.Errorf("fresh again: %+v", ev)
	}
	fn.waitRow("fresh again", func(l feed.LogInfo) bool { return l.Freshness.State == feed.FreshnessFresh })
	if got := fn.metric("vigil_log_stale"); got != 0 {
		t.Errorf("fresh again: vigil_log_stale %v", got)
	}

	// A split view: the log signs two roots for size 9, and the node
	// stores the evidence. The log is contested at size 9 everywhere.
	eid := fn.storeSplitView(8, clk.Now())
	fn.n.Feed().EvidenceUpdated()
	var evd feed.Evidence
	s.next(t, feed.EventEvidence, &evd)
	row = fn.waitRow("contested", func(l feed.LogInfo) bool { return l.Contested != nil })
	if c := row.Contested; !slices.Equal(c.Sizes, []uint64{9}) || !slices.Equal(c.Evidence, []string{eid}) {
		t.Errorf("contested: %+v", c)
	}
	fn.waitRow("the contested gauge", func(feed.LogInfo) bool { return fn.metric("vigil_log_contested") == 1 })
	// The change is announced on the newest checkpoint announced (8).
	s.next(t, feed.EventCheckpoint, &cp)
	if cp.Size != 8 || cp.Contested == nil || !slices.Equal(cp.Contested.Sizes, []uint64{9}) {
		t.Errorf("checkpoint event announcing the contested state: %+v", cp)
	}
	fn.push(8)
	fn.merge(9, 0)
	s.next(t, feed.EventCheckpoint, &cp)
	if cp.Size != 9 || cp.Contested == nil || !slices.Equal(cp.Contested.Sizes, []uint64{9}) || !slices.Equal(cp.Contested.Evidence, []string{eid}) {
		t.Errorf("checkpoint event of a contested log: %+v", cp)
	}
	if code, body := fn.get("/"); code != 200 || !strings.Contains(body, "contested-pill") || !strings.Contains(body, `data-contested-sizes="9"`) {
		t.Errorf("dashboard lacks the contested row: %d", code)
	}
}

// storeSplitView makes the log sign two roots for size at+1 (growing it and
// a fork of it at size at by one entry each) and stores the verified
// evidence of it in the node's store, detected at now. It returns the
// evidence ID.
func (fn *feedNode) storeSplitView(at uint64, now time.Time) string {
	t := fn.t
	t.Helper()
	fork, err := fn.log.Fork(at)
	if err != nil {
		t.Fatal(err)
	}
	fn.log.AppendN(1, "main")
	fork.AppendN(1, "fork")
	a, _ := fn.log.Checkpoint()
	b, _ := fork.Checkpoint()
	evp := &vpb.Evidence{Kind: vpb.Kind_KIND_LOG_EQUIVOCATION_SAME_SIZE, CheckpointA: a, CheckpointB: b, DetectedUnixMs: now.UnixMilli()}
	finding, err := evidence.Verify(evp, fn.r)
	if err != nil {
		t.Fatal(err)
	}
	data, err := vpb.MarshalEvidence(evp)
	if err != nil {
		t.Fatal(err)
	}
	eid := evidence.ID(evp)
	if _, err := fn.db.PutEvidence(context.Background(), store.EvidenceRecord{ID: eid, Kind: vpb.KindName(evp.Kind), Origin: fn.log.Origin(), Statement: finding.Statement(), Stored: now, Data: data}); err != nil {
		t.Fatal(err)
	}
	return eid
}
