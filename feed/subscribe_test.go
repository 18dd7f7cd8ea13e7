package feed_test

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/vigilnet/vigil/feed"
)

// TestSubscribe: an in-process subscriber gets the events of the types it
// asked for, in order, and none of the others.
func TestSubscribe(t *testing.T) {
	e := newEnv(t, envOptions{logs: 1, witnesses: 1})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan feed.Event, 64)
	done := make(chan error, 1)
	go func() {
		done <- e.feed.Subscribe(ctx, func(ev feed.Event) { got <- ev }, feed.EventCheckpoint, feed.EventEvidence)
	}()
	next := func() feed.Event {
		t.Helper()
		select {
		case ev := <-got:
			return ev
		case <-time.After(deadline):
			t.Fatal("no event reached the subscriber")
			return feed.Event{}
		}
	}
	// Subscribe has no ready signal: grow the log until a checkpoint
	// event reaches the subscriber.
	for i := 0; ; i++ {
		e.logs[0].AppendN(1, "a")
		e.cosign(0, 0)
		select {
		case ev := <-got:
			if ev.Type != feed.EventCheckpoint {
				t.Fatalf("first event %+v", ev)
			}
		case <-time.After(time.Second):
			if i > 20 {
				t.Fatal("no checkpoint event reached the subscriber")
			}
			continue
		}
		break
	}
	// A peers event (not subscribed) and then evidence: the next event
	// the subscriber gets is the evidence, whatever checkpoint events
	// are still arriving.
	e.src.setPeers([]feed.Peer{{ID: "12D3KooWpeer1", Role: "observer"}})
	e.feed.PeersUpdated()
	e.src.addEvidence(evidenceFor(e.logs[0].Origin(), 0), []byte("file 0"))
	e.feed.EvidenceUpdated()
	for {
		ev := next()
		if ev.Type == feed.EventCheckpoint {
			continue
		}
		var d feed.Evidence
		if ev.Type != feed.EventEvidence || json.Unmarshal(ev.Data, &d) != nil || d.ID != evidenceFor(e.logs[0].Origin(), 0).ID || ev.ID == "" {
			t.Fatalf("got %+v, want the evidence event", ev)
		}
		break
	}
	cancel()
	if err := <-done; err != context.Canceled {
		t.Fatalf("Subscribe returned %v, want context.Canceled", err)
	}
}

// TestSubscribeFromStart: a subscriber from the start gets the events
// published before it subscribed, in order, then the new ones.
func TestSubscribeFromStart(t *testing.T) {
	e := newEnv(t, envOptions{logs: 1, witnesses: 1})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	first := make(chan feed.Event, 64)
	go e.feed.Subscribe(ctx, func(ev feed.Event) { first <- ev }, feed.EventCheckpoint)
	// Grow the log until the first subscriber has a checkpoint event.
	var early feed.Event
	for i := 0; early.ID == ""; i++ {
		e.logs[0].AppendN(1, "a")
		e.cosign(0, 0)
		select {
		case early = <-first:
		case <-time.After(time.Second):
			if i > 20 {
				t.Fatal("no checkpoint event")
			}
		}
	}
	got := make(chan feed.Event, 64)
	go e.feed.SubscribeFromStart(ctx, func(ev feed.Event) { got <- ev }, feed.EventCheckpoint, feed.EventEvidence)
	e.src.addEvidence(evidenceFor(e.logs[0].Origin(), 0), []byte("file 0"))
	e.feed.EvidenceUpdated()
	var ids []string
	for {
		select {
		case ev := <-got:
			ids = append(ids, ev.ID)
			if ev.Type != feed.EventEvidence {
				continue
			}
			if !slices.Contains(ids, early.ID) || ids[len(ids)-1] != ev.ID {
				t.Fatalf("events %v: want %s, published before subscribing, then the evidence", ids, early.ID)
			}
			return
		case <-time.After(deadline):
			t.Fatalf("got %v, no evidence event", ids)
		}
	}
}
