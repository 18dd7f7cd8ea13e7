package feed_test

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigilnet/vigil/feed"
	"github.com/vigilnet/vigil/tlog"
)

// TestBrowserFreshnessAndContested loads the dashboard in headless
// Chromium and checks that a log's freshness turns late and then stale on
// the browser's own clock while no event arrives (the feed's clock is
// frozen and it never re-evaluates), that a contested log's row says so and
// names the conflicting sizes without a quorum pill, and that a long
// witness key in the evidence banner does not widen a 390-px phone screen.
func TestBrowserFreshnessAndContested(t *testing.T) {
	b := startBrowser(t)
	clk := newFakeClock()
	e := newEnv(t, envOptions{logs: 2, witnesses: 3, quorum: "2", now: clk.Now, freshness: feed.FreshnessConfig{
		DefaultInterval: time.Hour,
		Intervals:       map[string]time.Duration{"example.com/log0": 500 * time.Millisecond},
		Check:           time.Hour,
	}})
	e.logs[0].AppendN(5, "a")
	e.cosign(0, 0, 1)
	e.waitLatest(0, 5, 2)
	e.logs[1].AppendN(9, "a")
	e.cosign(1, 0, 1, 2)
	e.waitLatest(1, 9, 3)

	b.open(1280, 900, false)
	b.must("Page.navigate", map[string]any{"url": e.url + "/"}, nil)
	b.waitJS("the live connection", `document.getElementById('conn') && document.getElementById('conn').textContent === 'Live'`)
	// Only log events matter here; the witness timeline has its own clock.
	s := e.subscribeQuery("types=checkpoint,freshness", "")
	fresh0 := `document.querySelector('#log-` + tlog.LogID(e.logs[0].Origin()) + ` .fresh')`
	for _, state := range []string{feed.FreshnessLate, feed.FreshnessStale} {
		got := b.waitJS("log 0 "+state, `(() => { const f = `+fresh0+`; return f && f.dataset.state === '`+state+`' && f.className + '|' + f.querySelector('.fstate').textContent; })()`)
		if got != "fresh "+state+"|"+state {
			t.Errorf("log 0 %s: %q", state, got)
		}
	}
	if bg := b.waitJS("the stale colour", `getComputedStyle(`+fresh0+`).backgroundColor`); bg != "rgb(179, 22, 29)" {
		t.Errorf("stale background %s, want red", bg)
	}
	if got := b.waitJS("the fresh count", `document.getElementById('fresh-count').textContent`); got != "1" {
		t.Errorf("fresh logs on the card: %s, want 1 (log 1 has an hour)", got)
	}
	select {
	case ev := <-s.events:
		t.Errorf("an event arrived while the page aged: %+v", ev)
	default:
	}
	b.screenshot(filepath.Join(t.TempDir(), "dashboard-stale.png"))

	// A split view of log 1: contested, with both sizes and no green
	// quorum pill beside its size.
	e.divergence(1, 9, 14, []string{"w0", "w1", "w2"}, []string{"w2"}, time.Now())
	e.feed.SuspicionUpdated()
	row1 := `document.querySelector('#log-` + tlog.LogID(e.logs[1].Origin()) + `')`
	got := b.waitJS("the contested row", `(() => { const r = `+row1+`; return r && r.classList.contains('contested') && r.dataset.contestedSizes + '|' + Array.from(r.querySelectorAll('.size .pill')).map(p => p.textContent).join(',') + '|' + r.querySelector('.contested-note').innerText; })()`)
	parts := strings.SplitN(got, "|", 3)
	if len(parts) != 3 || parts[0] != "9, 14" || parts[1] != "contested" || !strings.Contains(parts[2], "conflicting sizes 9, 14") {
		t.Errorf("contested row: %q", got)
	}
	if n := b.waitJS("no quorum pill on the contested row", `String(`+row1+`.querySelectorAll('.size .pill.ok').length)`); n != "0" {
		t.Errorf("green pills beside the contested size: %s", n)
	}

	// Evidence naming a witness by its key: the banner wraps it on a phone.
	key := "witness0.example+5f3a9c1e+" + strings.Repeat("AbCdEfGhIjKlMnOpQrStUvWxYz0123456789", 2)
	ev := evidenceFor(e.logs[1].Origin(), 0)
	ev.Kind = "witness-equivocation"
	ev.Witnesses = []string{key}
	ev.Summary = "witness " + key + " cosigned two roots for tree size 7"
	e.src.addEvidence(ev, []byte("vigil-evidence/v1\n"))
	e.feed.EvidenceUpdated()
	b.waitJS("the evidence banner", `document.querySelector('.banner[role=alert]') && document.querySelector('.banner').innerText.includes('5f3a9c1e')`)
	b.viewport(390, 844, true)
	if w := b.waitJS("the phone layout", `document.documentElement.scrollWidth <= 390 ? 'fits' : 'overflows ' + document.documentElement.scrollWidth`); w != "fits" {
		t.Errorf("phone layout with a long witness key: %s", w)
	}
	b.screenshot(filepath.Join(t.TempDir(), "dashboard-phone-contested.png"))
}
