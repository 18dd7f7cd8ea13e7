package gossip

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	vpb "github.com/vigilnet/vigil/proto"
)

func testNote(origin string, size int, tag string) []byte {
	return fmt.Appendf(nil, "%s\n%d\nWmH8K1T5z6cXdPJDIUPdQMbLKxGUf69lp9PaXLZRmcg=\n\n— %s AAAA\n", origin, size, tag)
}

func TestOffersCoalesceOwnCosignatures(t *testing.T) {
	drops := 0
	q := newOffers(0, 0, 0, func() { drops++ })
	q.add(offer{note: testNote("a", 5, "x"), source: vpb.Source_SOURCE_COSIGN})
	q.add(offer{note: testNote("b", 1, "x"), source: vpb.Source_SOURCE_COSIGN})
	q.add(offer{note: testNote("a", 9, "x"), source: vpb.Source_SOURCE_COSIGN})
	q.add(offer{note: testNote("a", 7, "x"), source: vpb.Source_SOURCE_COSIGN}) // older than 9: kept out
	// Pushed and pulled sightings are never merged, even for one size:
	// they may be the two sides of a split view.
	q.add(offer{note: testNote("a", 9, "view A"), source: vpb.Source_SOURCE_PUSH})
	q.add(offer{note: testNote("a", 9, "view B"), source: vpb.Source_SOURCE_PULL})

	if got := len(q.takeQueue()); got != 2 {
		t.Fatalf("plain queue has %d offers, want 2", got)
	}
	var got []string
	for {
		o, ok, _ := q.popLatest()
		if !ok {
			break
		}
		origin, size, _ := originAndSize(o.note)
		got = append(got, fmt.Sprintf("%s@%d", origin, size))
	}
	if fmt.Sprint(got) != "[a@9 b@1]" {
		t.Fatalf("own cosignatures published: %v, want the newest per log, oldest log first", got)
	}
	for i := 0; i < offerQueue+5; i++ {
		q.add(offer{note: testNote("c", i, "x"), source: vpb.Source_SOURCE_PULL})
	}
	if drops != 5 {
		t.Fatalf("%d drops, want 5", drops)
	}
}

func TestOffersRunPublishesEverything(t *testing.T) {
	q := newOffers(0, 0, 0, func() {})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	published := make(chan offer, 16)
	done := make(chan struct{})
	go func() {
		q.run(ctx, func(_ context.Context, o offer) { published <- o })
		close(done)
	}()
	q.add(offer{note: testNote("a", 1, "x"), source: vpb.Source_SOURCE_COSIGN})
	q.add(offer{note: testNote("b", 1, "x"), source: vpb.Source_SOURCE_PUSH})
	seen := map[string]bool{}
	for len(seen) < 2 {
		select {
		case o := <-published:
			origin, _, _ := originAndSize(o.note)
			seen[origin] = true
		case <-ctx.Done():
			t.Fatalf("published only %v", seen)
		}
	}
	cancel()
	<-done
}

// TestOffersOwnCosignaturePerWindow: a log's own cosignature goes out at
// most once per window; what comes sooner waits, is replaced by anything
// newer meanwhile, and is never dropped: after the last add, the newest
// checkpoint of every log is what goes out last.
func TestOffersOwnCosignaturePerWindow(t *testing.T) {
	const window = 200 * time.Millisecond
	clock := time.Unix(1_700_000_000, 0)
	q := newOffers(window, 0, 0, func() { t.Fatal("an own cosignature was dropped") })
	q.now = func() time.Time { return clock }
	pop := func() (string, bool, time.Duration) {
		o, ok, wait := q.popLatest()
		if !ok {
			return "", false, wait
		}
		origin, size, _ := originAndSize(o.note)
		return fmt.Sprintf("%s@%d", origin, size), true, 0
	}
	add := func(origin string, size int) {
		q.add(offer{note: testNote(origin, size, "x"), source: vpb.Source_SOURCE_COSIGN})
	}

	add("a", 1)
	if got, ok, _ := pop(); !ok || got != "a@1" {
		t.Fatalf("first cosignature of a quiet log: %q %v, want a@1 at once", got, ok)
	}
	// Ten more within the window: none goes out before it ends...
	for i := 2; i <= 11; i++ {
		clock = clock.Add(window / 20)
		add("a", i)
	}
	add("b", 1) // ...while another log's first goes out at once.
	if got, ok, _ := pop(); !ok || got != "b@1" {
		t.Fatalf("other log: %q %v, want b@1", got, ok)
	}
	if got, ok, wait := pop(); ok || wait != window/2 {
		t.Fatalf("within the window: %q %v wait %v, want nothing for %v", got, ok, wait, window/2)
	}
	// ...and when it ends, only the newest does.
	clock = clock.Add(window / 2)
	if got, ok, _ := pop(); !ok || got != "a@11" {
		t.Fatalf("after the window: %q %v, want a@11", got, ok)
	}
	if _, ok, wait := pop(); ok || wait != 0 {
		t.Fatalf("queue not empty after the newest went out (wait %v)", wait)
	}
	add("a", 12) // within the window again: it waits
	if got, ok, wait := pop(); ok || wait != window {
		t.Fatalf("right after a@11: %q %v wait %v, want nothing for %v", got, ok, wait, window)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(q.metrics.collectors()...)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			switch mf.GetName() {
			case "vigil_gossip_own_sightings_total":
				got[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
			case "vigil_gossip_own_sighting_wait_seconds":
				got["waits"] = float64(m.GetHistogram().GetSampleCount())
			case "vigil_gossip_own_sightings_waiting":
				got["waiting"] = m.GetGauge().GetValue()
			}
		}
	}
	// quiet: a@1 and b@1; deferred: a@11; coalesced: a@2 to a@10.
	want := map[string]float64{"quiet": 2, "deferred": 1, "coalesced": 9, "waits": 3, "waiting": 1}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("own sighting metrics %v, want %v", got, want)
	}
}

// TestOffersRunHoldsNoNewestBack: run publishes the newest own cosignature
// of a log that keeps advancing, at most one per window.
func TestOffersRunHoldsNoNewestBack(t *testing.T) {
	const window = 50 * time.Millisecond
	q := newOffers(window, 0, 0, func() {})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	published := make(chan offer, 64)
	done := make(chan struct{})
	go func() {
		q.run(ctx, func(_ context.Context, o offer) { published <- o })
		close(done)
	}()
	const n = 100
	for i := 1; i <= n; i++ {
		q.add(offer{note: testNote("a", i, "x"), source: vpb.Source_SOURCE_COSIGN})
	}
	var got []uint64
	var times []time.Time
	for len(got) == 0 || got[len(got)-1] != n {
		select {
		case o := <-published:
			_, size, _ := originAndSize(o.note)
			got = append(got, size)
			times = append(times, time.Now())
		case <-ctx.Done():
			t.Fatalf("published %v, never the newest (%d)", got, n)
		}
	}
	if len(got) > 2 {
		t.Errorf("published %v for one burst, want at most the first and the newest", got)
	}
	if len(times) == 2 && times[1].Sub(times[0]) < window*9/10 {
		t.Errorf("two sightings of one log %v apart, want ≥ %v", times[1].Sub(times[0]), window)
	}
	cancel()
	<-done
}

// TestOffersRunWaitsForTheBudget: run sends own cosignatures no faster
// than the budget lets it, and sends them all.
func TestOffersRunWaitsForTheBudget(t *testing.T) {
	const rate, n = 100, 6
	q := newOffers(0, rate, 1, func() {})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	published := make(chan time.Time, n)
	done := make(chan struct{})
	go func() {
		q.run(ctx, func(context.Context, offer) { published <- time.Now() })
		close(done)
	}()
	for i := range n {
		q.add(offer{note: testNote(fmt.Sprintf("log%d", i), 1, "x"), source: vpb.Source_SOURCE_COSIGN})
	}
	var times []time.Time
	for len(times) < n {
		select {
		case at := <-published:
			times = append(times, at)
		case <-ctx.Done():
			t.Fatalf("sent %d of %d", len(times), n)
		}
	}
	// One token at once, then one per 1/rate.
	if d, least := times[n-1].Sub(times[0]), (n-1)*time.Second/rate*9/10; d < least {
		t.Errorf("%d sent within %v, want at least %v apart", n, d, least)
	}
	cancel()
	<-done
}
