package feed

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/vigilnet/vigil/roster"
	"github.com/vigilnet/vigil/tlog"
)

// WitnessStore persists the witness timeline as opaque records by key
// (witness_timeline_store.go). *store.DB implements it.
type WitnessStore interface {
	// WitnessTimeline returns every record saved.
	WitnessTimeline(ctx context.Context) (map[string][]byte, error)
	// PutWitnessTimeline saves records, replacing those with the same
	// keys, each record as its own update.
	PutWitnessTimeline(ctx context.Context, records map[string][]byte) error
	// DeleteWitnessTimeline deletes the records with the given keys.
	DeleteWitnessTimeline(ctx context.Context, keys []string) error
}

// timelineSaveEvery is how often changed timeline records are saved; a
// crash forgets at most this much.
const timelineSaveEvery = 30 * time.Second

// witnessTracker wires the timeline core to the feed: cosignatures in,
// states on a clock, events, metrics and persistence out.
type witnessTracker struct {
	f        *Feed
	store    WitnessStore
	interval intervalFunc
	tick     time.Duration

	mu sync.Mutex
	tl *timeline
	// saved is the chunk count of each record's saved layout ("" for the
	// heads; 0 for the former one-record layout), stale the saved keys no
	// layout uses any more, deleted after the next save.
	saved map[string]int
	stale map[string]bool
	// names caches the roster's witness names.
	namesOf *roster.Roster
	names   []string
	// quorum caches minQuorum of quorumOf.
	quorumOf *roster.Roster
	quorum   int
}

func newWitnessTracker(f *Feed) *witnessTracker {
	t := &witnessTracker{f: f, store: f.cfg.WitnessStore, tl: newTimeline(), saved: map[string]int{}, stale: map[string]bool{}, interval: f.cfg.ExpectedInterval}
	if t.interval == nil {
		// A log's freshness interval (override, log list qpd, default).
		t.interval = func(origin string) time.Duration {
			if l, ok := f.src.Roster().Log(origin); ok {
				return f.cfg.Freshness.Interval(l)
			}
			return f.cfg.Freshness.Interval(&roster.Log{Origin: origin})
		}
	}
	t.tick = f.cfg.WitnessTick
	if t.tick <= 0 {
		t.tick = 5 * time.Second
	}
	return t
}

// watched is the tracker's interval for the logs of r, and 0 for others.
func (t *witnessTracker) watched(r *roster.Roster) intervalFunc {
	return func(origin string) time.Duration {
		if _, ok := r.Log(origin); !ok {
			return 0
		}
		return t.interval(origin)
	}
}

// rosterNames returns the roster's witness names; t.mu must be held.
func (t *witnessTracker) rosterNames(r *roster.Roster) []string {
	if r != t.namesOf {
		ws := r.Witnesses()
		t.names = make([]string, len(ws))
		for i, w := range ws {
			t.names[i] = w.Name
		}
		t.namesOf = r
	}
	return t.names
}

// CosignaturesSeen tells the feed that the node stored newNote for
// origin in place of oldNote (nil for a new record), both already
// verified. The roster witnesses whose signature lines newNote adds feed
// the witness timeline. It costs a comparison of the notes' signature
// lines and a base64 decoding of the new ones; it never blocks on I/O.
func (f *Feed) CosignaturesSeen(origin string, oldNote, newNote []byte) {
	t := f.witnesses
	r := f.src.Roster()
	if _, ok := r.Log(origin); !ok {
		return
	}
	body, block := sigBlock(newNote)
	if body == nil {
		return
	}
	_, oldBlock := sigBlock(oldNote)
	var cosigs []seenCosig
	for rest := block; len(rest) > 0; {
		j := bytes.IndexByte(rest, '\n')
		if j < 0 {
			break
		}
		line := rest[:j+1]
		rest = rest[j+1:]
		if hasLine(oldBlock, line) {
			continue
		}
		if c, ok := rosterCosig(r, line[:j]); ok {
			cosigs = append(cosigs, c)
		}
	}
	if len(cosigs) == 0 {
		return
	}
	cp, err := tlog.ParseCheckpoint(body)
	if err != nil {
		return
	}
	size := cp.Size
	now := f.now()
	t.mu.Lock()
	t.tl.observe(origin, size, cosigs, t.rosterNames(r), now)
	t.mu.Unlock()
}

// sigBlock returns a note's text and its signature block, or nil if it has
// none.
func sigBlock(n []byte) (text, block []byte) {
	for i := len(n); ; {
		i = bytes.LastIndexByte(n[:i], '\n')
		if i < 1 {
			return nil, nil
		}
		if n[i-1] == '\n' {
			return n[:i], n[i+1:]
		}
	}
}

// hasLine reports whether block holds line (both ending in a newline) as
// one of its lines.
func hasLine(block, line []byte) bool {
	for len(block) >= len(line) {
		if bytes.HasPrefix(block, line) {
			return true
		}
		j := bytes.IndexByte(block, '\n')
		if j < 0 {
			return false
		}
		block = block[j+1:]
	}
	return false
}

// splitNote returns a note's text and its signature lines (without the
// trailing newline), or nil if it has no signature block.
func splitNote(n []byte) ([]byte, [][]byte) {
	text, block := sigBlock(n)
	if text == nil {
		return nil, nil
	}
	var lines [][]byte
	for rest := block; len(rest) > 0; {
		j := bytes.IndexByte(rest, '\n')
		if j < 0 {
			break
		}
		lines = append(lines, rest[:j])
		rest = rest[j+1:]
	}
	return text, lines
}

// rosterCosig reads one signature line ("— name base64") and reports the
// roster witness whose key made it, matched by roster name through the
// key's name and ID, with the cosignature's timestamp if it has one.
func rosterCosig(r *roster.Roster, line []byte) (seenCosig, bool) {
	s, ok := bytes.CutPrefix(line, []byte("\u2014 "))
	if !ok {
		return seenCosig{}, false
	}
	name, b64, ok := bytes.Cut(s, []byte(" "))
	if !ok || len(b64) < 8 {
		return seenCosig{}, false
	}
	var head [6]byte // 4 bytes of key ID
	if _, err := base64.StdEncoding.Decode(head[:], b64[:8]); err != nil {
		return seenCosig{}, false
	}
	w, ok := r.WitnessByKey(string(name), binary.BigEndian.Uint32(head[:4]))
	if !ok {
		return seenCosig{}, false
	}
	c := seenCosig{witness: w.Name}
	if ts, err := tlog.CosignatureTimestamp(note.Signature{Name: string(name), Hash: binary.BigEndian.Uint32(head[:4]), Base64: string(b64)}); err == nil && ts > 0 {
		c.at = time.Unix(int64(ts), 0).UTC()
	}
	return c, true
}

// start runs the tracker's clock until ctx ends; the returned function
// waits for it to stop, having saved the timeline.
func (t *witnessTracker) start(ctx context.Context) (wait func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		t.run(ctx)
	}()
	return func() { <-done }
}

func (t *witnessTracker) run(ctx context.Context) {
	tick := time.NewTicker(t.tick)
	defer tick.Stop()
	lastSave := time.Now()
	t.step()
	for {
		select {
		case <-ctx.Done():
			// The caller's context is over; the final save gets its own.
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			t.save(sctx)
			cancel()
			return
		case <-tick.C:
			t.step()
			if time.Since(lastSave) >= timelineSaveEvery {
				t.save(ctx)
				lastSave = time.Now()
			}
		}
	}
}

// step recomputes the states and publishes a witness event per change.
func (t *witnessTracker) step() {
	now := t.f.now()
	r := t.f.src.Roster()
	t.mu.Lock()
	t.tl.prune(now)
	trs := t.tl.tick(t.rosterNames(r), t.watched(r), now)
	t.mu.Unlock()
	for _, tr := range trs {
		ev := WitnessEvent{Witness: tr.witness, State: tr.state, Previous: tr.previous}
		if !tr.lastCosigned.IsZero() {
			at := tr.lastCosigned
			ev.LastCosignedAt = &at
		}
		t.f.log.Info("witness state changed", "witness", tr.witness, "state", tr.state, "previous", tr.previous)
		t.f.hub.publish(EventWitness, ev)
		t.f.metrics.events.WithLabelValues(EventWitness).Inc()
	}
}

// EventWitness is the type of the event published on every change of a
// roster witness's state.
const EventWitness = "witness"

// WitnessEvent is the data of a witness event.
type WitnessEvent struct {
	Witness  string `json:"witness"`
	State    string `json:"state"`
	Previous string `json:"previous"`
	// LastCosignedAt is the timestamp of its newest cosignature; null if
	// none was ever seen.
	LastCosignedAt *time.Time `json:"last_cosigned_at"`
}
