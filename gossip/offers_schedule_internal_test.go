package gossip

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	vpb "github.com/vigilnet/vigil/proto"
)

var epoch = time.Unix(1_700_000_000, 0)

func TestOwnBudget(t *testing.T) {
	at := func(ms int) time.Time { return epoch.Add(time.Duration(ms) * time.Millisecond) }
	for _, tc := range []struct {
		name  string
		rate  float64
		burst int
		takes []int           // ms after epoch
		want  []time.Duration // what each take returns
	}{
		{"burst then one per 1/rate", 10, 2, []int{0, 0, 0, 50, 100, 100, 300, 300, 300}, []time.Duration{0, 0, 100 * time.Millisecond, 50 * time.Millisecond, 0, 100 * time.Millisecond, 0, 0, 100 * time.Millisecond}},
		{"saves at most burst", 100, 3, []int{0, 0, 0, 0, 10_000, 10_000, 10_000, 10_000}, []time.Duration{0, 0, 0, 10 * time.Millisecond, 0, 0, 0, 10 * time.Millisecond}},
		{"burst below 1 is 1", 1000, 0, []int{0, 0, 1}, []time.Duration{0, time.Millisecond, 0}},
		{"a clock going back saves nothing", 10, 1, []int{1000, 500, 1100}, []time.Duration{0, 100 * time.Millisecond, 0}},
		{"no rate: no budget", 0, 0, []int{0, 0, 0}, []time.Duration{0, 0, 0}},
		{"negative rate: no budget", -1, 0, []int{0, 0, 0}, []time.Duration{0, 0, 0}},
		{"infinite rate: no budget", math.Inf(1), 1, []int{0, 0, 0}, []time.Duration{0, 0, 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newOwnBudget(tc.rate, tc.burst)
			for i, ms := range tc.takes {
				if got := b.take(at(ms)); got != tc.want[i] {
					t.Fatalf("take %d at %d ms: %v, want %v", i, ms, got, tc.want[i])
				}
			}
		})
	}
}

// ownSim drives an offers queue with a fake clock in steps of tick: logs
// offer own cosignatures (sizes rising per log) when their next advance is
// due, and at every step the queue is popped until it says wait. It
// records every offer and every sighting sent.
type ownSim struct {
	t     *testing.T
	q     *offers
	clock time.Time
	tick  time.Duration
	// every gives each log's time between advances, size its newest size;
	// due lists the logs that advance at each step.
	every map[string]time.Duration
	due   map[int64][]string
	size  map[string]uint64
	// offered: each offer; sent: each sighting sent, in order.
	offered []simEvent
	sent    []simEvent
}

type simEvent struct {
	origin string
	size   uint64
	at     time.Time
}

func newOwnSim(t *testing.T, interval time.Duration, rate float64, burst int) *ownSim {
	q := newOffers(interval, rate, burst, func() { t.Fatal("an own cosignature was dropped") })
	s := &ownSim{t: t, q: q, clock: epoch, tick: time.Millisecond, every: map[string]time.Duration{}, due: map[int64][]string{}, size: map[string]uint64{}}
	q.now = func() time.Time { return s.clock }
	return s
}

// addLog makes origin advance every d from first on (d == 0: only once).
func (s *ownSim) addLog(origin string, first time.Time, d time.Duration) {
	s.every[origin] = d
	s.schedule(origin, first)
}

// step is the step of the clock at or after at.
func (s *ownSim) step(at time.Time) int64 {
	return int64((at.Sub(epoch) + s.tick - 1) / s.tick)
}

func (s *ownSim) schedule(origin string, at time.Time) {
	k := max(s.step(at), s.step(s.clock))
	s.due[k] = append(s.due[k], origin)
}

// stopLogs ends every log's advances.
func (s *ownSim) stopLogs() { s.due = map[int64][]string{} }

func (s *ownSim) offer(origin string) {
	s.size[origin]++
	s.q.add(offer{note: testNote(origin, int(s.size[origin]), "x"), source: vpb.Source_SOURCE_COSIGN})
	s.offered = append(s.offered, simEvent{origin, s.size[origin], s.clock})
}

// runUntil advances the clock to end.
func (s *ownSim) runUntil(end time.Time) {
	for ; !s.clock.After(end); s.clock = s.clock.Add(s.tick) {
		k := s.step(s.clock)
		for _, origin := range s.due[k] {
			s.offer(origin)
			if d := s.every[origin]; d > 0 {
				s.schedule(origin, s.clock.Add(d))
			}
		}
		delete(s.due, k)
		s.drain()
	}
}

func (s *ownSim) drain() {
	for {
		o, ok, _ := s.q.popLatest()
		if !ok {
			return
		}
		origin, size, _ := originAndSize(o.note)
		if size != s.size[origin] {
			s.t.Fatalf("%v: sent %s@%d, the newest is %d", s.clock.Sub(epoch), origin, size, s.size[origin])
		}
		s.sent = append(s.sent, simEvent{origin, size, s.clock})
	}
}

// maxDelay returns, over all offers made before horizon, the longest time
// until a sighting of its log at least as new was sent (or horizon if
// none was), and the log it was for.
func (s *ownSim) maxDelay(horizon time.Time) (time.Duration, string) {
	var worst time.Duration
	var which string
	bySent := map[string][]simEvent{}
	for _, e := range s.sent {
		bySent[e.origin] = append(bySent[e.origin], e)
	}
	for _, o := range s.offered {
		d := horizon.Sub(o.at)
		for _, e := range bySent[o.origin] {
			if e.size >= o.size {
				d = e.at.Sub(o.at)
				break
			}
		}
		if d > worst {
			worst, which = d, fmt.Sprintf("%s@%d offered at %v", o.origin, o.size, o.at.Sub(epoch))
		}
	}
	return worst, which
}

// TestOffersOwnBudgetProperties: under workloads of busy, slow and quiet
// logs, own sightings stay within the budget (rate per second plus the
// burst in any second), a log's at most once per interval and always its
// newest, and every own cosignature is covered by a sighting sent within
// interval + n/rate (n logs) of its offer.
func TestOffersOwnBudgetProperties(t *testing.T) {
	const (
		interval = 200 * time.Millisecond
		rate     = 500
		burst    = 50
	)
	for _, tc := range []struct {
		name                 string
		busy, slow, rare     int
		busyEvery, slowEvery time.Duration
	}{
		{"1000 busy logs", 1000, 0, 0, 140 * time.Millisecond, 0},
		{"busy, slow and rare logs", 400, 400, 200, 100 * time.Millisecond, 300 * time.Millisecond},
		{"slow logs only", 0, 1000, 0, 0, 250 * time.Millisecond},
		{"few logs, within budget", 20, 20, 10, 50 * time.Millisecond, 400 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, uint64(len(tc.name))))
			s := newOwnSim(t, interval, rate, burst)
			jitter := func(d time.Duration) time.Duration { return d/2 + time.Duration(rng.Int64N(int64(d))) }
			for i := range tc.busy {
				s.addLog(fmt.Sprintf("busy%d", i), epoch.Add(jitter(tc.busyEvery)), jitter(tc.busyEvery))
			}
			for i := range tc.slow {
				s.addLog(fmt.Sprintf("slow%d", i), epoch.Add(jitter(tc.slowEvery)), jitter(tc.slowEvery))
			}
			for i := range tc.rare {
				s.addLog(fmt.Sprintf("rare%d", i), epoch.Add(time.Duration(rng.Int64N(int64(5*time.Second)))), 0)
			}
			n := tc.busy + tc.slow + tc.rare
			const span = 6 * time.Second
			s.runUntil(epoch.Add(span))
			// Offers stop; what waits drains within the bound.
			s.stopLogs()
			bound := interval + time.Duration(float64(n)/rate*float64(time.Second)) + 2*s.tick
			end := s.clock.Add(bound)
			s.runUntil(end)
			if got, _, _ := s.q.popLatest(); s.q.waiting() != 0 {
				t.Fatalf("%d logs still waiting %v after the last offer (next %q)", s.q.waiting(), bound, got.note)
			}

			// Within the budget: any second holds at most rate + burst.
			for i, j := 0, 0; j < len(s.sent); j++ {
				for s.sent[j].at.Sub(s.sent[i].at) >= time.Second {
					i++
				}
				if j-i+1 > rate+burst {
					t.Fatalf("%d sightings sent within a second ending at %v, budget %d + %d", j-i+1, s.sent[j].at.Sub(epoch), rate, burst)
				}
			}
			// A log's at most once per interval.
			last := map[string]time.Time{}
			for _, e := range s.sent {
				if l, ok := last[e.origin]; ok && e.at.Sub(l) < interval {
					t.Fatalf("%s sent %v apart at %v, interval %v", e.origin, e.at.Sub(l), e.at.Sub(epoch), interval)
				}
				last[e.origin] = e.at
			}
			// Every offer covered within the bound.
			worst, which := s.maxDelay(end)
			if worst > bound {
				t.Fatalf("%s: covered after %v, bound %v", which, worst, bound)
			}
			t.Logf("%d offered, %d sent, longest wait %v (%s), bound %v", len(s.offered), len(s.sent), worst, which, bound)
		})
	}
}

// TestOffersQuietLogFirstAtOnce: the first own cosignature of a log quiet
// for longer than any log waiting goes out at the next token of the
// budget, on an idle node and behind 1,000 busy logs alike.
func TestOffersQuietLogFirstAtOnce(t *testing.T) {
	const (
		interval = 200 * time.Millisecond
		rate     = 500
		burst    = 50
	)
	token := time.Second / rate
	for _, tc := range []struct {
		name string
		busy int
		// quietFor: how long before its offer the log last had an own
		// sighting sent (0: never).
		quietFor time.Duration
		within   time.Duration
	}{
		{"idle node, new log", 0, 0, 0},
		{"idle node, log quiet for an interval", 0, interval, 0},
		{"1000 busy logs, new log", 1000, 0, token + time.Millisecond},
		{"1000 busy logs, log quiet for 3s", 1000, 3 * time.Second, token + time.Millisecond},
		{"1000 busy logs, log quiet for 2 minutes", 1000, 2 * time.Minute, token + time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newOwnSim(t, interval, rate, burst)
			start := epoch.Add(5 * time.Minute)
			if tc.quietFor > 0 {
				s.q.last["quiet"] = start.Add(-tc.quietFor)
			}
			// Busy logs run for 4 s up to start, filling the queue.
			s.clock = start.Add(-4 * time.Second)
			rng := rand.New(rand.NewPCG(2, 3))
			for i := range tc.busy {
				d := 70*time.Millisecond + time.Duration(rng.Int64N(int64(140*time.Millisecond)))
				s.addLog(fmt.Sprintf("busy%d", i), s.clock.Add(d), d)
			}
			s.runUntil(start.Add(-s.tick))
			if tc.busy > 0 && s.q.waiting() < tc.busy/4 {
				t.Fatalf("only %d logs waiting: not under load", s.q.waiting())
			}
			s.clock = start
			s.offer("quiet")
			s.drain()
			s.runUntil(start.Add(tc.within))
			for _, e := range s.sent {
				if e.origin == "quiet" {
					if d := e.at.Sub(start); d > tc.within {
						t.Fatalf("sent %v after its offer, want within %v", d, tc.within)
					}
					return
				}
			}
			t.Fatalf("not sent within %v (%d logs waiting)", tc.within, s.q.waiting())
		})
	}
}
