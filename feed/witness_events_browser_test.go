package feed_test

import (
	"testing"
	"time"
)

// TestBrowserWitnessEvents: the dashboard's witness section follows
// witness events live. The page's own five-second re-read of the section
// is switched off before the page loads, so only the events can move a
// witness's row: w2 stops cosigning and turns missing on the feed's clock,
// then cosigns again and is alive, with no reload.
func TestBrowserWitnessEvents(t *testing.T) {
	b := startBrowser(t)
	clk := newFakeClock()
	e := newEnv(t, envOptions{logs: 1, witnesses: 3, quorum: "2", witnessInterval: time.Second, now: clk.Now})
	e.logs[0].AppendN(5, "a")
	e.cosign(0, 0, 1, 2)

	b.open(1280, 900, false)
	b.must("Page.addScriptToEvaluateOnNewDocument", map[string]any{"source": `(() => {
		const si = window.setInterval;
		window.setInterval = (f, ms, ...args) => ms === 5000 ? 0 : si(f, ms, ...args);
	})()`}, nil)
	b.must("Page.navigate", map[string]any{"url": e.url + "/"}, nil)
	state := func(name string) string {
		return `(() => { const r = document.querySelector('#witnesses tr[data-witness="` + name + `"]'); return r && r.dataset.state; })()`
	}
	b.waitJS("the live stream", `document.getElementById('conn').classList.contains('live') && 'live'`)
	for _, name := range []string{"w0", "w1", "w2"} {
		if got := b.waitJS(name+" alive", state(name)+` === 'alive' && 'alive'`); got != "alive" {
			t.Errorf("%s: %s", name, got)
		}
	}

	// w2 does not cosign size 8; three intervals later it is missing.
	e.logs[0].AppendN(3, "b")
	e.cosign(0, 0, 1)
	clk.Advance(3*time.Second + time.Millisecond)
	b.waitJS("w2 missing", state("w2")+` === 'missing' && 'missing'`)
	if got := b.waitJS("w0 alive", state("w0")); got != "alive" {
		t.Errorf("w0 while w2 is missing: %s", got)
	}

	// w2 cosigns size 8: alive again.
	e.cosign(0, 2)
	b.waitJS("w2 alive again", state("w2")+` === 'alive' && 'alive'`)
}
