package feed

import (
	crand "crypto/rand"
	"encoding/base64"
	"maps"
	"math/rand/v2"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/vigilnet/vigil/roster"
	"github.com/vigilnet/vigil/tlog"
)

var t0 = time.Date(2026, 6, 30, 12, 0, 0, 0, time.UTC)

func fixedInterval(d time.Duration) intervalFunc { return func(string) time.Duration { return d } }

// TestWitnessStateMachine drives the timeline through scripted
// observations and checks each witness's state and the transitions.
func TestWitnessStateMachine(t *testing.T) {
	roster := []string{"a", "b"}
	iv := func(origin string) time.Duration {
		if origin == "gone" {
			return 0
		}
		return time.Minute
	}
	type step struct {
		at     time.Duration // after t0
		origin string
		size   uint64
		cosig  []string // empty: a tick only
		want   map[string]string
		events []string // "witness:previous>state"
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"never seen is missing, silently at first", []step{
			{at: 0, want: map[string]string{"a": WitnessMissing, "b": WitnessMissing}},
		}},
		{"both cosign: alive", []step{
			{at: 0, want: map[string]string{"a": WitnessMissing}},
			{at: time.Second, origin: "L", size: 5, cosig: []string{"a", "b"}, want: map[string]string{"a": WitnessAlive, "b": WitnessAlive}, events: []string{"a:missing>alive", "b:missing>alive"}},
		}},
		{"silent witness goes late then missing then returns", []step{
			{at: 0, origin: "L", size: 5, cosig: []string{"a", "b"}, want: map[string]string{"a": WitnessAlive, "b": WitnessAlive}},
			{at: 10 * time.Second, origin: "L", size: 6, cosig: []string{"a"}, want: map[string]string{"a": WitnessAlive, "b": WitnessAlive}},
			// b behind since 10s: late after 1 interval, missing after 3.
			{at: 70 * time.Second, want: map[string]string{"a": WitnessAlive, "b": WitnessAlive}},
			{at: 71 * time.Second, want: map[string]string{"b": WitnessLate}, events: []string{"b:alive>late"}},
			{at: 190 * time.Second, want: map[string]string{"b": WitnessLate}},
			{at: 191 * time.Second, want: map[string]string{"b": WitnessMissing}, events: []string{"b:late>missing"}},
			// It cosigns an older size: still behind, since the head appeared.
			{at: 200 * time.Second, origin: "L", size: 6, cosig: []string{"b"}, want: map[string]string{"b": WitnessAlive}, events: []string{"b:missing>alive"}},
		}},
		{"cosigning below the head keeps the witness behind", []step{
			{at: 0, origin: "L", size: 9, cosig: []string{"a"}},
			{at: time.Second, origin: "L", size: 7, cosig: []string{"b"}, want: map[string]string{"b": WitnessAlive}, events: []string{"b:missing>alive"}},
			{at: 62 * time.Second, want: map[string]string{"b": WitnessLate, "a": WitnessAlive}, events: []string{"b:alive>late"}},
		}},
		{"behind on one log of two is enough", []step{
			{at: 0, origin: "L", size: 1, cosig: []string{"a", "b"}},
			{at: time.Second, origin: "M", size: 1, cosig: []string{"a"}},
			{at: 5 * time.Minute, want: map[string]string{"a": WitnessAlive, "b": WitnessMissing}, events: []string{"b:alive>missing"}},
		}},
		{"a log left out of the roster counts for nobody", []step{
			{at: 0, origin: "L", size: 1, cosig: []string{"a", "b"}},
			{at: time.Second, origin: "gone", size: 1, cosig: []string{"a"}},
			{at: 10 * time.Minute, want: map[string]string{"a": WitnessAlive, "b": WitnessAlive}},
		}},
		{"a cosignature without a new head counts once", []step{
			{at: 0, origin: "L", size: 3, cosig: []string{"a"}},
			{at: time.Second, origin: "L", size: 3, cosig: []string{"a"}, want: map[string]string{"a": WitnessAlive}},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tl := newTimeline()
			for i, s := range tc.steps {
				now := t0.Add(s.at)
				if len(s.cosig) > 0 {
					var cs []seenCosig
					for _, w := range s.cosig {
						cs = append(cs, seenCosig{witness: w, at: now.Add(-time.Second)})
					}
					tl.observe(s.origin, s.size, cs, roster, now)
				}
				var got []string
				for _, tr := range tl.tick(roster, iv, now) {
					got = append(got, tr.witness+":"+tr.previous+">"+tr.state)
					if tr.state != tl.witnesses[tr.witness].State {
						t.Errorf("step %d: transition %v but record says %s", i, tr, tl.witnesses[tr.witness].State)
					}
				}
				if len(got) != len(s.events) {
					t.Fatalf("step %d: events %v, want %v", i, got, s.events)
				}
				for j := range got {
					if got[j] != s.events[j] {
						t.Fatalf("step %d: events %v, want %v", i, got, s.events)
					}
				}
				for w, want := range s.want {
					if st := tl.state(w, iv, now); st != want {
						t.Errorf("step %d: %s is %s, want %s", i, w, st, want)
					}
				}
			}
		})
	}
	// The a-cosignature-counts-once case: one head, one count.
	tl := newTimeline()
	tl.observe("L", 3, []seenCosig{{witness: "a"}}, roster, t0)
	tl.observe("L", 3, []seenCosig{{witness: "a"}}, roster, t0.Add(time.Second))
	if n := tl.witnesses["a"].Hours[hourOf(t0)]; n != 1 {
		t.Errorf("counted %d cosignatures of one checkpoint, want 1", n)
	}
}

// TestWitnessLag checks lag in size and seconds.
func TestWitnessLag(t *testing.T) {
	tl := newTimeline()
	r := []string{"a", "b"}
	tl.observe("L", 10, []seenCosig{{witness: "a"}, {witness: "b"}}, r, t0)
	tl.observe("L", 15, []seenCosig{{witness: "a"}}, r, t0.Add(40*time.Second))
	if s, sec, ok := tl.lag("b", "L"); !ok || s != 5 || sec != 40 {
		t.Errorf("lag of b = %d, %v, %v; want 5, 40, true", s, sec, ok)
	}
	if s, sec, ok := tl.lag("a", "L"); !ok || s != 0 || sec != 0 {
		t.Errorf("lag of a = %d, %v, %v; want 0, 0, true", s, sec, ok)
	}
	if _, _, ok := tl.lag("c", "L"); ok {
		t.Error("a witness that never cosigned has a known lag")
	}
}

// TestWitnessSharesProperty: for random streams of checkpoints each
// cosigned by a random subset, the 30-day share equals the exact fraction
// of heads each witness cosigned, every share lies in [0, 1], and a
// witness that cosigned every head has share 1 in every window.
func TestWitnessSharesProperty(t *testing.T) {
	for seed := range uint64(50) {
		rng := rand.New(rand.NewPCG(seed, 7))
		names := []string{"a", "b", "c", "all"}
		tl := newTimeline()
		cosigned := map[string]int{}
		heads := 0
		now := t0
		size := uint64(0)
		for range 200 + rng.IntN(300) {
			now = now.Add(time.Duration(rng.IntN(600)) * time.Second)
			size += 1 + uint64(rng.IntN(3))
			cs := []seenCosig{{witness: "all"}}
			for _, n := range names[:3] {
				if rng.IntN(3) > 0 {
					cs = append(cs, seenCosig{witness: n})
					cosigned[n]++
				}
			}
			cosigned["all"]++
			heads++
			tl.observe("L", size, cs, names, now)
		}
		for _, n := range names {
			s, ok := tl.share(n, timelineRetention, now)
			want := float64(cosigned[n]) / float64(heads)
			if !ok || s < want-1e-9 || s > want+1e-9 {
				t.Fatalf("seed %d: 30d share of %s = %v (%v), want %v", seed, n, s, ok, want)
			}
			for _, w := range shareWindows {
				s, ok := tl.share(n, w.d, now)
				if ok && (s < 0 || s > 1) {
					t.Fatalf("seed %d: %s share of %s = %v", seed, w.name, n, s)
				}
				if n == "all" && ok && s != 1 {
					t.Fatalf("seed %d: %s share of a witness that cosigned all = %v", seed, w.name, s)
				}
			}
		}
		// Past the retention everything is pruned and no share is known.
		later := now.Add(timelineRetention + 2*time.Hour)
		tl.prune(later)
		if _, ok := tl.share("a", timelineRetention, later); ok || len(tl.totals) != 0 {
			t.Fatalf("seed %d: counters survived the retention", seed)
		}
	}
}

// TestWitnessShareWindowWeights: the hour straddling a window's start
// counts in proportion to its overlap.
func TestWitnessShareWindowWeights(t *testing.T) {
	tl := newTimeline()
	r := []string{"a"}
	// Hour 11:00-12:00: 4 heads, a cosigned none; hour 12:00-13:00: 4 heads, a cosigned all.
	for i := range 4 {
		tl.observe("L", uint64(1+i), []seenCosig{{witness: "x"}}, r, t0.Add(-time.Hour+time.Duration(i)*time.Minute))
	}
	for i := range 4 {
		tl.observe("L", uint64(10+i), []seenCosig{{witness: "a"}}, r, t0.Add(time.Duration(i)*time.Minute))
	}
	// At 12:30, the 1 h window covers half of 11:00-12:00: 4 / (2 + 4).
	s, ok := tl.share("a", time.Hour, t0.Add(30*time.Minute))
	if !ok || s < 4.0/6-1e-9 || s > 4.0/6+1e-9 {
		t.Fatalf("1h share = %v, want %v", s, 4.0/6)
	}
}

// TestWitnessTimelineRoundTrip: what encodeDirty writes, decode restores.
func TestWitnessTimelineRoundTrip(t *testing.T) {
	tl := newTimeline()
	r := []string{"a", "b"}
	tl.observe("L", 5, []seenCosig{{witness: "a", at: t0}}, r, t0)
	tl.tick(r, fixedInterval(time.Minute), t0)
	s, err := tl.encodeDirty()
	if err != nil {
		t.Fatal(err)
	}
	back := newTimeline()
	recs := maps.Clone(s.chunks)
	maps.Copy(recs, s.summaries)
	if ld := back.decodeAll(recs); len(ld.errs) > 0 || len(ld.stale) > 0 {
		t.Fatalf("decoding: %v, stale %v", ld.errs, ld.stale)
	}
	for _, w := range r {
		if a, b := tl.state(w, fixedInterval(time.Minute), t0), back.state(w, fixedInterval(time.Minute), t0); a != b {
			t.Errorf("%s: state %s after a round trip, want %s", w, b, a)
		}
	}
	if back.heads["L"].Size != 5 || back.witnesses["a"].Hours[hourOf(t0)] != 1 {
		t.Errorf("round trip lost data: %+v %+v", back.heads["L"], back.witnesses["a"])
	}
}

// FuzzWitnessTimelineDecode: decoding never panics on stored bytes, and a
// record it accepts can be used. The fuzzed record sits beside summaries
// naming one-chunk layouts, so that chunk keys are read too.
func FuzzWitnessTimelineDecode(f *testing.F) {
	f.Add("heads", []byte(`{"heads":{"L":{"size":5,"seen":"2026-06-30T12:00:00Z"}},"totals":{"493000":3}}`))
	f.Add("witness/a", []byte(`{"logs":{"L":{"size":5,"seen":"2026-06-30T12:00:00Z"}},"hours":{"493000":1},"state":"alive"}`))
	f.Add("witness/b", []byte(`{"logs":{"L":null},"state":"bogus"}`))
	f.Add("witness/a", []byte(`{"hours":{"493000":1},"state":"alive","chunks":1}`))
	f.Add("logs/1/0/b", []byte(`{"logs":{"L":{"size":5,"seen":"2026-06-30T12:00:00Z"}}}`))
	f.Add("heads/1/0", []byte(`{"heads":{"L":{"size":5,"seen":"2026-06-30T12:00:00Z"}}}`))
	f.Add("logs/2/1/b", []byte(`{"logs":{"L":null}}`))
	f.Add("other", []byte(`{}`))
	f.Fuzz(func(t *testing.T, key string, v []byte) {
		tl := newTimeline()
		recs := map[string][]byte{"heads": []byte(`{"totals":{},"chunks":1}`), "witness/b": []byte(`{"hours":{},"chunks":1}`)}
		recs[key] = v
		if ld := tl.decodeAll(recs); len(ld.errs) > 0 {
			return
		}
		now := t0
		names := []string{"a", "b"}
		tl.tick(names, fixedInterval(time.Minute), now)
		for _, n := range names {
			tl.share(n, time.Hour, now)
			tl.lag(n, "L")
			tl.hours(n)
		}
		tl.observe("L", 7, []seenCosig{{witness: "a"}}, names, now)
		if _, err := tl.encodeDirty(); err != nil {
			t.Fatal(err)
		}
	})
}

// FuzzWitnessSignatureLines: splitting a note and reading its signature
// lines never panics, and only a roster witness's key is ever reported.
func FuzzWitnessSignatureLines(f *testing.F) {
	skey, vkey, err := tlog.GenerateCosignerKey(crand.Reader, "witness0.example")
	if err != nil {
		f.Fatal(err)
	}
	r, err := roster.ParsePolicy([]byte("witness w0 " + vkey + "\n"))
	if err != nil {
		f.Fatal(err)
	}
	signer, err := tlog.NewCosignatureSigner(skey, nil)
	if err != nil {
		f.Fatal(err)
	}
	signed, err := note.Sign(&note.Note{Text: "example.com/log\n5\n" + base64.StdEncoding.EncodeToString(make([]byte, 32)) + "\n"}, signer)
	if err != nil {
		f.Fatal(err)
	}
	// The signed seed is read as w0's cosignature, with its timestamp.
	_, lines := splitNote(signed)
	if c, ok := rosterCosig(r, lines[0]); !ok || c.witness != "w0" || c.at.IsZero() {
		f.Fatalf("a real cosignature line read as %+v, %v", c, ok)
	}
	f.Add(signed)
	f.Add([]byte("a\n\n\u2014 x AAAA\n"))
	f.Add([]byte("\n\n\u2014  \n"))
	f.Fuzz(func(t *testing.T, n []byte) {
		_, lines := splitNote(n)
		for _, l := range lines {
			if c, ok := rosterCosig(r, l); ok && c.witness != "w0" {
				t.Fatalf("line %q read as %q", l, c.witness)
			}
		}
	})
}
