package gossip

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/mod/sumdb/note"

	vpb "github.com/vigilnet/vigil/proto"
)

// TestIntake: every sighting put is taken exactly once by some worker, in
// order per worker, and put refuses beyond the bound.
func TestIntake(t *testing.T) {
	const total = 20_000
	in := newIntake(total, total*footprint(&sighting{}))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var taken atomic.Int64
	seen := make([]atomic.Bool, total)
	items := make([]sighting, total)
	index := map[*sighting]int{}
	for i := range items {
		index[&items[i]] = i
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				sg, ok := in.take(ctx)
				if !ok {
					return
				}
				if seen[index[sg]].Swap(true) {
					t.Errorf("sighting %d taken twice", index[sg])
				}
				taken.Add(1)
			}
		}()
	}
	for i := range items {
		if reason := in.put(&items[i]); reason != "" {
			t.Fatalf("put %d refused: %s", i, reason)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for taken.Load() != total {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d taken, %d queued", taken.Load(), total, in.len())
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	wg.Wait()
	small := newIntake(2, 1<<20)
	if small.put(&items[0]) != "" || small.put(&items[1]) != "" || small.put(&items[2]) != dropIntakeFull {
		t.Error("a full intake took a third sighting")
	}
}

// noteOf returns a sighting whose signed note is n bytes long, and nothing
// else: its footprint is sightingOverhead + n.
func noteOf(n int) *sighting {
	return &sighting{msg: &vpb.Sighting{Checkpoint: make([]byte, n)}}
}

// TestIntakeBounds fills the intake by count and by bytes: each put is
// queued or refused with the reason of the bound it met, the queue's bytes
// follow what is queued and taken, and a take makes room again.
func TestIntakeBounds(t *testing.T) {
	kib := footprint(noteOf(1024 - sightingOverhead)) // 1 KiB each
	if kib != 1024 {
		t.Fatalf("footprint of a 512-byte note: %d, want 1024", kib)
	}
	type op struct {
		take bool
		note int    // put: the note's length
		want string // put: "" (queued) or the drop reason
	}
	put := func(note int, want string) op { return op{note: note, want: want} }
	take := op{take: true}
	const small = 1024 - sightingOverhead
	tests := []struct {
		name          string
		max, maxBytes int
		ops           []op
		wantLen       int
		wantBytes     int
	}{
		{"bytes bound first", 100, 3 * kib,
			[]op{put(small, ""), put(small, ""), put(small, ""), put(small, dropIntakeBytes), put(1, dropIntakeBytes)},
			3, 3 * kib},
		{"count bound first", 2, 100 * kib,
			[]op{put(small, ""), put(small, ""), put(small, dropIntakeFull)},
			2, 2 * kib},
		{"count bound checked before bytes", 2, 2 * kib,
			[]op{put(small, ""), put(small, ""), put(small, dropIntakeFull)},
			2, 2 * kib},
		{"one sighting larger than the budget fits an empty queue", 100, kib,
			[]op{put(4*kib, ""), put(1, dropIntakeBytes), take, put(small, ""), put(small, dropIntakeBytes)},
			1, kib},
		{"a take makes room", 100, 2 * kib,
			[]op{put(small, ""), put(small, ""), put(small, dropIntakeBytes), take, put(small, ""), take, take, put(small, ""), put(small, "")},
			2, 2 * kib},
		{"exactly at the budget", 100, 2*kib + 1,
			[]op{put(small, ""), put(small+1, ""), put(0, dropIntakeBytes)},
			2, 2*kib + 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := newIntake(tc.max, tc.maxBytes)
			ctx := context.Background()
			for i, o := range tc.ops {
				if o.take {
					if _, ok := in.take(ctx); !ok {
						t.Fatalf("op %d: take found nothing", i)
					}
					continue
				}
				if got := in.put(noteOf(o.note)); got != o.want {
					t.Fatalf("op %d: put of a %d-byte note: %q, want %q", i, o.note, got, o.want)
				}
			}
			if in.len() != tc.wantLen || in.size() != tc.wantBytes {
				t.Errorf("queued %d sightings of %d bytes, want %d of %d", in.len(), in.size(), tc.wantLen, tc.wantBytes)
			}
			for in.len() > 0 {
				in.take(ctx)
			}
			if in.size() != 0 {
				t.Errorf("empty queue holds %d bytes", in.size())
			}
		})
	}
}

// TestFootprint: the estimate counts the note's capacity, each decoded
// signature, the origin, the observer and the cosigners.
func TestFootprint(t *testing.T) {
	base := footprint(&sighting{})
	if base != sightingOverhead {
		t.Fatalf("empty sighting: %d, want %d", base, sightingOverhead)
	}
	sg := &sighting{
		msg:       &vpb.Sighting{Checkpoint: make([]byte, 3000), Observer: "w1"},
		origin:    "example.com/log",
		cosigners: map[string]bool{"w1": true},
	}
	sg.sigs = []note.Signature{{Name: "w1", Base64: string(make([]byte, 2000))}}
	sg.msg.Checkpoint = sg.msg.Checkpoint[:1000] // capacity still 3000
	want := sightingOverhead + 3000 + len("w1") + len("example.com/log") + signatureOverhead + len("w1") + 2000 + cosignerOverhead + len("w1")
	if got := footprint(sg); got != want {
		t.Errorf("footprint: %d, want %d", got, want)
	}
}

// TestEnqueueCountsDrops: every sighting the intake refuses is counted in
// vigil_gossip_dropped_total under the bound it met, and the queue's gauges
// report what it holds.
func TestEnqueueCountsDrops(t *testing.T) {
	kib := footprint(noteOf(1024 - sightingOverhead))
	s := &Service{}
	s.intake = newIntake(4, 3*kib)
	s.metrics = newMetrics(func() float64 { return 0 }, func() float64 { return 0 },
		func() float64 { return float64(s.intake.len()) }, func() float64 { return float64(s.intake.size()) })
	for range 5 { // 3 queued, 2 over the bytes
		s.enqueue(noteOf(1024 - sightingOverhead))
	}
	s.intake.take(context.Background())
	s.intake.take(context.Background())
	for range 4 { // 3 queued (within the bytes), 1 over the count
		s.enqueue(noteOf(1))
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(s.metrics.collectors()...)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			key := mf.GetName()
			for _, l := range m.GetLabel() {
				key += fmt.Sprintf(",%s=%s", l.GetName(), l.GetValue())
			}
			got[key] = m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	want := map[string]float64{
		"vigil_gossip_dropped_total,reason=intake_bytes,topic=checkpoints": 2,
		"vigil_gossip_dropped_total,reason=intake_full,topic=checkpoints":  1,
		"vigil_gossip_intake_queued":                                       4,
		"vigil_gossip_intake_queued_bytes":                                 float64(kib + 3*(sightingOverhead+1)),
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
}
