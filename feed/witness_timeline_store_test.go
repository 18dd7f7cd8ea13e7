package feed

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/vigilnet/vigil/roster"
	"github.com/vigilnet/vigil/store"
	"github.com/vigilnet/vigil/tlog"
)

// timelineFeed opens a feed over db whose roster lists witnesses w0..w2,
// having loaded the timeline db holds.
func timelineFeed(t *testing.T, db *store.DB) *Feed {
	t.Helper()
	var policy strings.Builder
	for i := range 3 {
		_, vkey, err := tlog.GenerateCosignerKey(rand.Reader, fmt.Sprintf("w%d.example", i))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&policy, "witness w%d %s\n", i, vkey)
	}
	r, err := roster.ParsePolicy([]byte(policy.String()))
	if err != nil {
		t.Fatal(err)
	}
	src := &recordSource{r: r, records: map[groupKey]map[string]note.Signature{}, bodies: map[groupKey][]byte{}}
	f, err := New(Config{Source: src, WitnessStore: db})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// fillTimeline gives the timeline heads for logs 0..n-1 and a line per log
// for each of w0..w2, as a busy node's would look, and marks it changed.
func fillTimeline(tl *timeline, n int) {
	base := time.Date(2026, 6, 30, 12, 0, 0, 0, time.UTC)
	for i := range n {
		origin := fmt.Sprintf("transparency.example.com/logs/log-%05d", i)
		seen := base.Add(time.Duration(i) * time.Second)
		tl.heads[origin] = &logHead{Size: uint64(1_000_000 + i), Seen: seen}
		for w := range 3 {
			l := &witnessLog{Size: uint64(1_000_000 + i - w), At: seen.Add(-time.Second), Seen: seen.Add(time.Duration(w) * time.Millisecond)}
			if w == 2 {
				l.BehindSince = seen
			}
			tl.record(fmt.Sprintf("w%d", w)).Logs[origin] = l
		}
	}
	tl.totals[hourOf(base)] = uint32(n)
	for w := range 3 {
		rec := tl.record(fmt.Sprintf("w%d", w))
		rec.Hours[hourOf(base)] = uint32(n - w)
		rec.State, rec.Since = WitnessAlive, base
		tl.dirty[fmt.Sprintf("w%d", w)] = true
	}
	tl.dirty[""] = true
}

// timelineJSON is a canonical encoding of what a timeline holds.
func timelineJSON(t *testing.T, f *Feed) []byte {
	t.Helper()
	f.witnesses.mu.Lock()
	defer f.witnesses.mu.Unlock()
	tl := f.witnesses.tl
	b, err := json.Marshal(map[string]any{"heads": tl.heads, "totals": tl.totals, "witnesses": tl.witnesses})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func storedTimeline(t *testing.T, db *store.DB) map[string][]byte {
	t.Helper()
	recs, err := db.WitnessTimeline(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// TestWitnessTimelineThousandsOfLogs: a timeline of 3,000 logs and three
// witnesses (a line per log each, about 150 bytes) is saved to a real
// Badger store in records far under the per-transaction cap (15 % of the
// memtable: 300 KB at 2 MB, 150 KB at 1 MB), and reads back whole. One
// record per witness was 480 KB here. Growing from 100 logs to 3,000 moves
// the records to more chunks and deletes the old ones.
func TestWitnessTimelineThousandsOfLogs(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	f := timelineFeed(t, db)
	f.witnesses.mu.Lock()
	fillTimeline(f.witnesses.tl, 100)
	f.witnesses.mu.Unlock()
	f.witnesses.save(ctx)
	small := storedTimeline(t, db)

	f.witnesses.mu.Lock()
	fillTimeline(f.witnesses.tl, 3000)
	f.witnesses.mu.Unlock()
	f.witnesses.save(ctx)
	want := timelineJSON(t, f)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db, err = store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	recs := storedTimeline(t, db)
	total := 0
	for k, v := range recs {
		total += len(v)
		if len(v) > 100<<10 {
			t.Errorf("record %s is %d bytes, want chunks well under the 300 KB transaction cap", k, len(v))
		}
	}
	if total < 3000*3*100 {
		t.Fatalf("the store holds %d bytes of timeline in %d records, want the lines of 3,000 logs × 3 witnesses", total, len(recs))
	}
	for k := range small {
		_, kept := recs[k]
		switch {
		case k == "heads" || strings.HasPrefix(k, "witness/"):
			if !kept {
				t.Errorf("summary %s of the 100-log save is gone", k)
			}
		case kept:
			t.Errorf("chunk %s of the 100-log save was not deleted", k)
		}
	}
	back := timelineFeed(t, db)
	if got := timelineJSON(t, back); !bytes.Equal(got, want) {
		t.Fatalf("timeline read back differs: %d bytes, want %d", len(got), len(want))
	}
}

// TestWitnessTimelineFormerLayout: records of the former layout (one
// record per witness with every log inline, and the heads inline) are read,
// and the next save rewrites them in chunks that read back the same.
func TestWitnessTimelineFormerLayout(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// As the former layout wrote them (encoding/json of the whole record).
	former := map[string][]byte{
		"heads":      []byte(`{"heads":{"example.com/a":{"size":4,"seen":"2026-06-30T11:57:02Z"},"example.com/b":{"size":9,"seen":"2026-06-30T11:58:00Z"}},"totals":{"493211":3,"493212":2}}`),
		"witness/w0": []byte(`{"logs":{"example.com/a":{"size":4,"at":"2026-06-30T11:57:00Z","seen":"2026-06-30T11:57:02Z"},"example.com/b":{"size":9,"at":"2026-06-30T11:57:59Z","seen":"2026-06-30T11:58:00Z"}},"hours":{"493211":3,"493212":1},"state":"alive","since":"2026-06-30T11:00:00Z"}`),
		"witness/w2": []byte(`{"logs":{"example.com/a":{"size":2,"at":"2026-06-30T11:50:00Z","seen":"2026-06-30T11:50:01Z","behind_since":"2026-06-30T11:57:02Z"}},"hours":{"493211":1},"state":"late","since":"2026-06-30T11:58:02Z"}`),
		// A chunk of a save that crashed before its summary: ignored, then
		// deleted.
		"logs/1/0/w2": []byte(`{"logs":{"example.com/a":{"size":1,"seen":"2026-06-30T10:00:00Z"}}}`),
	}
	if err := db.PutWitnessTimeline(ctx, former); err != nil {
		t.Fatal(err)
	}
	f := timelineFeed(t, db)
	check := func(f *Feed, when string) {
		t.Helper()
		f.witnesses.mu.Lock()
		defer f.witnesses.mu.Unlock()
		tl := f.witnesses.tl
		w0, w2 := tl.witnesses["w0"], tl.witnesses["w2"]
		switch {
		case len(tl.heads) != 2 || tl.heads["example.com/b"].Size != 9 || tl.totals[493211] != 3:
			t.Fatalf("%s: heads %v totals %v", when, tl.heads, tl.totals)
		case w0 == nil || len(w0.Logs) != 2 || w0.Logs["example.com/b"].Size != 9 || w0.Hours[493211] != 3 || w0.State != WitnessAlive:
			t.Fatalf("%s: w0 %+v", when, w0)
		case w2 == nil || w2.Logs["example.com/a"].Size != 2 || w2.Logs["example.com/a"].BehindSince.IsZero() || w2.State != WitnessLate:
			t.Fatalf("%s: w2 %+v", when, w2)
		}
	}
	check(f, "former layout")
	want := timelineJSON(t, f)

	f.witnesses.save(ctx)
	recs := storedTimeline(t, db)
	for _, k := range []string{"heads", "witness/w0", "witness/w2"} {
		if bytes.Contains(recs[k], []byte(`"logs"`)) || bytes.Contains(recs[k], []byte(`"heads"`)) || !bytes.Contains(recs[k], []byte(`"chunks":1`)) {
			t.Errorf("%s after a save: %s, want a summary of one chunk", k, recs[k])
		}
	}
	for _, k := range []string{"heads/1/0", "logs/1/0/w0", "logs/1/0/w2"} {
		if _, ok := recs[k]; !ok {
			t.Errorf("chunk %s not written", k)
		}
	}
	back := timelineFeed(t, db)
	check(back, "after the save")
	if got := timelineJSON(t, back); !bytes.Equal(got, want) {
		t.Fatalf("read back:\n%s\nwant\n%s", got, want)
	}
}

// TestWitnessTimelineSaveFails: a save the store refuses keeps the records
// changed, and the next save writes them.
func TestWitnessTimelineSaveFails(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	f := timelineFeed(t, db)
	f.witnesses.mu.Lock()
	fillTimeline(f.witnesses.tl, 300)
	f.witnesses.mu.Unlock()
	want := timelineJSON(t, f)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	f.witnesses.save(ctx) // the store is closed
	f.witnesses.mu.Lock()
	dirty := len(f.witnesses.tl.dirty)
	f.witnesses.mu.Unlock()
	if dirty != 4 {
		t.Fatalf("%d records left changed after a failed save, want 4", dirty)
	}
	db, err = store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if recs := storedTimeline(t, db); len(recs) != 0 {
		t.Fatalf("a failed save stored %d records", len(recs))
	}
	f.witnesses.store = db
	f.witnesses.save(ctx)
	if got := timelineJSON(t, timelineFeed(t, db)); !bytes.Equal(got, want) {
		t.Fatalf("timeline read back differs: %d bytes, want %d", len(got), len(want))
	}
}
