package notify_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/vigilnet/vigil/notify"
)

var t0 = time.Date(2026, 6, 30, 12, 0, 0, 0, time.UTC)

func in(typ string, data string) notify.Input { return notify.Input{Type: typ, Data: []byte(data)} }

func witnessEv(name, state string) notify.Input {
	return in(notify.EventWitness, fmt.Sprintf(`{"witness":%q,"state":%q,"previous":"alive","last_cosigned_at":null}`, name, state))
}

// step is one input (or, with a zero Input, a tick) at an offset from t0
// and the IDs' prefixes of the notifications it must produce.
type step struct {
	at   time.Duration
	in   notify.Input
	want []string
}

func TestCoreDecisions(t *testing.T) {
	const debounce = 15 * time.Minute
	cp := func(origin string, size int, quorum bool, contested string) notify.Input {
		c := ""
		if contested != "" {
			c = `,"contested":` + contested
		}
		return in(notify.EventCheckpoint, fmt.Sprintf(`{"origin":%q,"log_id":"x","size":%d,"quorum_met":%v%s}`, origin, size, quorum, c))
	}
	fresh := func(origin, state string) notify.Input {
		return in(notify.EventFreshness, fmt.Sprintf(`{"log":"x","origin":%q,"state":%q,"previous":"fresh","age_seconds":7200}`, origin, state))
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"evidence always notifies, under its own ID", []step{
			{0, in(notify.EventEvidence, `{"id":"abc","kind":"log-equivocation","origin":"l","summary":"two roots"}`), []string{"evidence/abc"}},
			{time.Second, in(notify.EventEvidence, `{"id":"def","kind":"log-equivocation","origin":"l"}`), []string{"evidence/def"}},
		}},
		{"a quorum-met checkpoint says nothing", []step{
			{0, cp("l", 5, true, ""), nil},
		}},
		{"quorum lost once per size", []step{
			{0, cp("l", 5, false, ""), []string{"quorum-lost/"}},
			{time.Minute, cp("l", 5, false, ""), nil},
			{2 * time.Minute, cp("l", 6, false, ""), []string{"quorum-lost/"}},
			{3 * time.Minute, cp("l", 6, true, ""), nil},
			{4 * time.Minute, cp("l", 6, false, ""), []string{"quorum-lost/"}},
		}},
		{"contested on entry and on change, not on repeats", []step{
			{0, cp("l", 5, true, `{"sizes":[5],"evidence":["e1"],"suspicions":[]}`), []string{"contested/"}},
			{time.Minute, cp("l", 6, true, `{"sizes":[5],"evidence":["e1"],"suspicions":[]}`), nil},
			{2 * time.Minute, cp("l", 7, true, `{"sizes":[5,7],"evidence":["e1"],"suspicions":[]}`), []string{"contested/"}},
			{3 * time.Minute, cp("l", 8, true, ""), nil},
			{4 * time.Minute, cp("l", 9, true, `{"sizes":[5],"evidence":["e1"],"suspicions":[]}`), []string{"contested/"}},
		}},
		{"stale on entry and on leaving", []step{
			{0, fresh("l", "late"), nil},
			{time.Minute, fresh("l", "stale"), []string{"stale/"}},
			{3 * time.Minute, fresh("l", "fresh"), []string{"fresh/"}},
			{4 * time.Minute, fresh("l", "late"), nil},
		}},
		{"stale again with no recovery seen is a new stale period", []step{
			{0, fresh("l", "stale"), []string{"stale/"}},
			// The recovery fell while the node was down (the feed's first
			// evaluation records it silently); the next stale event comes
			// from fresh.
			{time.Hour, fresh("l", "stale"), []string{"stale/"}},
			{2 * time.Hour, fresh("l", "fresh"), []string{"fresh/"}},
		}},
		{"a witness missing 15 minutes without a break", []step{
			{0, witnessEv("w1", "missing"), nil},
			{14 * time.Minute, notify.Input{}, nil},
			{15 * time.Minute, notify.Input{}, []string{"witness/w1/missing/"}},
			{20 * time.Minute, notify.Input{}, nil},
			{25 * time.Minute, witnessEv("w1", "missing"), nil},
			{30 * time.Minute, witnessEv("w1", "alive"), []string{"witness/w1/back/"}},
		}},
		{"a witness back within the debounce says nothing", []step{
			{0, witnessEv("w1", "missing"), nil},
			{10 * time.Minute, witnessEv("w1", "late"), nil},
			{11 * time.Minute, witnessEv("w1", "missing"), nil},
			{25 * time.Minute, notify.Input{}, nil},
			{26 * time.Minute, notify.Input{}, []string{"witness/w1/missing/"}},
		}},
		{"witnesses debounce independently", []step{
			{0, witnessEv("w1", "missing"), nil},
			{5 * time.Minute, witnessEv("w2", "missing"), nil},
			{15 * time.Minute, notify.Input{}, []string{"witness/w1/missing/"}},
			{20 * time.Minute, notify.Input{}, []string{"witness/w2/missing/"}},
		}},
		{"malformed data and unknown types decide nothing", []step{
			{0, in(notify.EventEvidence, `{`), nil},
			{0, in(notify.EventCheckpoint, `[]`), nil},
			{0, in("peers", `{"peers":[]}`), nil},
			{0, in(notify.EventWitness, `{"state":"missing"}`), nil},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := notify.NewCore(debounce)
			for i, s := range tc.steps {
				now := t0.Add(s.at)
				var got []notify.Notification
				if s.in.Type == "" {
					got = c.Tick(now)
				} else {
					got = c.Observe(now, s.in)
				}
				if len(got) != len(s.want) {
					t.Fatalf("step %d: got %d notifications %+v, want %v", i, len(got), got, s.want)
				}
				for j, n := range got {
					if !strings.HasPrefix(n.ID, s.want[j]) || !n.Time.Equal(now) || n.Summary == "" || !json.Valid(n.Data) {
						t.Errorf("step %d: notification %+v, want ID %s... at %s with a summary and the event's data", i, n, s.want[j], now)
					}
				}
			}
		})
	}
}

// TestCoreDebounceProperty drives random witness state changes and checks
// the debounce rule against a simple model: a missing notification is sent
// exactly when a witness has been missing without a break for the
// debounce period (at the first tick at or after that), once per missing
// period, and a back notification only after a missing one.
func TestCoreDebounceProperty(t *testing.T) {
	const debounce = 15 * time.Minute
	for seed := range uint64(200) {
		r := rand.New(rand.NewPCG(seed, 1))
		c := notify.NewCore(debounce)
		type model struct {
			missingSince time.Time
			missing      bool
			alerted      bool
		}
		m := map[string]*model{"w0": {}, "w1": {}}
		now := t0
		for step := range 300 {
			now = now.Add(time.Duration(r.IntN(240)) * time.Second)
			if r.IntN(3) == 0 {
				name := []string{"w0", "w1"}[r.IntN(2)]
				state := []string{"missing", "alive", "late"}[r.IntN(3)]
				got := c.Observe(now, witnessEv(name, state))
				w := m[name]
				want := 0
				if state == "missing" && !w.missing && !w.alerted {
					w.missing, w.missingSince = true, now
				} else if state != "missing" {
					if w.alerted {
						want = 1
					}
					w.missing, w.alerted = false, false
				}
				if len(got) != want || (want == 1 && !strings.HasPrefix(got[0].ID, "witness/"+name+"/back/")) {
					t.Fatalf("seed %d step %d: %s %s gave %+v, want %d back notification", seed, step, name, state, got, want)
				}
				continue
			}
			got := c.Tick(now)
			var want []string
			for _, name := range []string{"w0", "w1"} {
				if w := m[name]; w.missing && !now.Before(w.missingSince.Add(debounce)) {
					want = append(want, fmt.Sprintf("witness/%s/missing/%d", name, w.missingSince.UnixNano()))
					w.missing, w.alerted = false, true
				}
			}
			if len(got) != len(want) {
				t.Fatalf("seed %d step %d: tick gave %+v, want %v", seed, step, got, want)
			}
			for i := range got {
				if got[i].ID != want[i] {
					t.Fatalf("seed %d step %d: tick gave %s, want %s", seed, step, got[i].ID, want[i])
				}
			}
			if next, ok := c.NextDeadline(); ok && !next.After(now) {
				t.Fatalf("seed %d step %d: next deadline %s is not after the tick at %s", seed, step, next, now)
			}
		}
	}
}

func TestBackoff(t *testing.T) {
	b := notify.Backoff{Base: time.Second, Max: 5 * time.Minute, MaxAge: time.Hour}
	for _, tc := range []struct {
		attempts int
		want     time.Duration
	}{{0, 0}, {1, time.Second}, {2, 2 * time.Second}, {3, 4 * time.Second}, {9, 256 * time.Second}, {10, 5 * time.Minute}, {1000, 5 * time.Minute}} {
		if got := b.Delay(tc.attempts); got != tc.want {
			t.Errorf("Delay(%d) = %s, want %s", tc.attempts, got, tc.want)
		}
	}
	// Property: delays never shrink, never exceed Max, and a delivery is
	// given up exactly when its next attempt would fall after MaxAge.
	prev := time.Duration(0)
	for a := 1; a < 100; a++ {
		d := b.Delay(a)
		if d < prev || d > b.Max {
			t.Fatalf("Delay(%d) = %s after %s", a, d, prev)
		}
		prev = d
	}
	if _, ok := b.Next(t0, t0.Add(59*time.Minute), 1); !ok {
		t.Error("given up with a retry due inside MaxAge")
	}
	if _, ok := b.Next(t0, t0.Add(59*time.Minute), 20); ok {
		t.Error("not given up with the next retry past MaxAge")
	}
}

func TestSignature(t *testing.T) {
	body := []byte(`{"id":"evidence/abc"}`)
	sig := notify.Sign("0123456789abcdef", body)
	if !strings.HasPrefix(sig, "sha256=") || len(sig) != 7+64 {
		t.Fatalf("signature %q", sig)
	}
	for _, tc := range []struct {
		secret, body, header string
		ok                   bool
	}{
		{"0123456789abcdef", string(body), sig, true},
		{"0123456789abcdeX", string(body), sig, false},
		{"0123456789abcdef", string(body) + " ", sig, false},
		{"0123456789abcdef", string(body), strings.TrimPrefix(sig, "sha256="), false},
		{"0123456789abcdef", string(body), "sha256=zz", false},
		{"0123456789abcdef", string(body), "", false},
	} {
		if got := notify.Verify(tc.secret, []byte(tc.body), tc.header); got != tc.ok {
			t.Errorf("Verify(%q, %q, %q) = %v", tc.secret, tc.body, tc.header, got)
		}
	}
}

// FuzzVerify: a receiver's check of an attacker's header never panics and
// accepts only the real signature.
func FuzzVerify(f *testing.F) {
	f.Add([]byte(`{"id":"x"}`), "sha256=00")
	f.Add([]byte(""), "sha256=")
	f.Fuzz(func(t *testing.T, body []byte, header string) {
		const secret = "0123456789abcdef"
		if notify.Verify(secret, body, header) && header != notify.Sign(secret, body) && strings.ToLower(header) != notify.Sign(secret, body) {
			t.Fatalf("accepted %q for %q", header, body)
		}
	})
}

func TestConfigValidate(t *testing.T) {
	ok := notify.Webhook{URL: "https://hooks.example/vigil", Secret: "0123456789abcdef"}
	for _, tc := range []struct {
		name string
		cfg  notify.Config
		err  string
	}{
		{"empty", notify.Config{}, ""},
		{"one webhook", notify.Config{Webhooks: []notify.Webhook{ok}}, ""},
		{"no scheme", notify.Config{Webhooks: []notify.Webhook{{URL: "hooks.example", Secret: ok.Secret}}}, "url"},
		{"ftp", notify.Config{Webhooks: []notify.Webhook{{URL: "ftp://hooks.example", Secret: ok.Secret}}}, "url"},
		{"short secret", notify.Config{Webhooks: []notify.Webhook{{URL: ok.URL, Secret: "short"}}}, "secret"},
		{"unknown event", notify.Config{Webhooks: []notify.Webhook{{URL: ok.URL, Secret: ok.Secret, Events: []string{"peers"}}}}, "events"},
		{"negative debounce", notify.Config{WitnessMissingAfter: -time.Second}, "witness_missing_after"},
		{"max below base", notify.Config{RetryBase: time.Minute, RetryMax: time.Second}, "retry_max"},
	} {
		err := tc.cfg.Validate()
		if (tc.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%s: %v, want an error naming %q", tc.name, err, tc.err)
		}
	}
}

// TestCoreWitnessChanges: the debounce state WitnessChanges reports,
// restored into a new core, decides what the first core would have.
func TestCoreWitnessChanges(t *testing.T) {
	const debounce = 15 * time.Minute
	c := notify.NewCore(debounce)
	c.Observe(t0, witnessEv("w1", "missing"))
	c.Observe(t0, witnessEv("w2", "missing"))
	ch := c.WitnessChanges()
	if len(ch) != 2 || !ch["w1"].Since.Equal(t0) || ch["w1"].Alerted || len(ch["w1"].Data) == 0 {
		t.Fatalf("after two missing events: %+v", ch)
	}
	if ch := c.WitnessChanges(); ch != nil {
		t.Fatalf("changes reported twice: %+v", ch)
	}
	c.Observe(t0.Add(time.Minute), witnessEv("w2", "alive"))
	notes := c.Tick(t0.Add(debounce))
	ch = c.WitnessChanges()
	if len(notes) != 1 || !ch["w1"].Alerted || !ch["w2"].Since.IsZero() {
		t.Fatalf("after the debounce: notes %+v, changes %+v", notes, ch)
	}

	// A new core restored from w1's state: the same notification is not
	// decided again, and the return is notified.
	r := notify.NewCore(debounce)
	r.RestoreWitness("w1", ch["w1"])
	if notes := r.Tick(t0.Add(2 * debounce)); len(notes) != 0 {
		t.Fatalf("restored alerted witness notified again: %+v", notes)
	}
	r.Observe(t0.Add(2*debounce), witnessEv("w1", "missing"))
	if back := r.Observe(t0.Add(2*debounce), witnessEv("w1", "alive")); len(back) != 1 || !strings.HasPrefix(back[0].ID, "witness/w1/back/") {
		t.Fatalf("return after restore: %+v", back)
	}

	// A pending witness restored keeps its start: due at since+debounce,
	// under the same ID as before the restart.
	p := notify.NewCore(debounce)
	p.RestoreWitness("w3", notify.WitnessDebounce{Since: t0})
	if d, ok := p.NextDeadline(); !ok || !d.Equal(t0.Add(debounce)) {
		t.Fatalf("restored deadline %v %v", d, ok)
	}
	if notes := p.Tick(t0.Add(debounce)); len(notes) != 1 || notes[0].ID != fmt.Sprintf("witness/w3/missing/%d", t0.UnixNano()) {
		t.Fatalf("restored pending witness: %+v", notes)
	}
}
