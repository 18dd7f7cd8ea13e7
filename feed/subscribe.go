package feed

import (
	"context"
	"encoding/json"
	"slices"
)

// Event is one event of the feed's bus, as GET /v1/events sends it.
type Event struct {
	ID   string
	Type string
	// Data is the event's JSON (CheckpointEvent, EvidenceEvent, ...).
	Data json.RawMessage
}

// Subscribe calls fn, in order, for each event of the given types (every
// type when none are given) published after Subscribe was called, until ctx
// ends (it then returns ctx's error) or the feed stops (nil). It reads the
// same ring buffer as GET /v1/events: a subscriber that falls more than
// Config.EventBuffer events behind gets an EventReset in place of the
// events it missed. fn runs on the caller's goroutine.
func (f *Feed) Subscribe(ctx context.Context, fn func(Event), types ...string) error {
	_, seq, _, _, ok := f.hub.since(^uint64(0))
	if !ok {
		return nil
	}
	return f.follow(ctx, seq, fn, types)
}

// SubscribeFromStart is Subscribe from the first event the feed published,
// for a subscriber that starts with the feed and must not miss the events
// of its first moments (the witness states it restored changing, evidence
// read at start): those still in the buffer come first, and an EventReset
// if some are gone.
func (f *Feed) SubscribeFromStart(ctx context.Context, fn func(Event), types ...string) error {
	return f.follow(ctx, 0, fn, types)
}

// follow calls fn for each event of types after seq.
func (f *Feed) follow(ctx context.Context, seq uint64, fn func(Event), types []string) error {
	for {
		evs, base, wake, lost, ok := f.hub.since(seq)
		if !ok {
			return nil
		}
		if lost {
			fn(Event{ID: f.hub.id(base), Type: EventReset, Data: json.RawMessage(`{"reason":"events lost: the subscriber fell behind"}`)})
		}
		seq = base
		for _, ev := range evs {
			seq++
			if len(types) == 0 || slices.Contains(types, ev.typ) {
				fn(Event{ID: f.hub.id(seq), Type: ev.typ, Data: slices.Clone(ev.data)})
			}
		}
		if len(evs) > 0 {
			continue
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
