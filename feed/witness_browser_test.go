package feed_test

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestBrowserWitnesses loads the dashboard in headless Chromium and watches
// a witness that stops cosigning turn late, then missing, in the witness
// section with no event arriving and no reload; the section holds on a
// phone screen.
func TestBrowserWitnesses(t *testing.T) {
	b := startBrowser(t)
	e := newEnv(t, envOptions{logs: 1, witnesses: 3, quorum: "2", witnessInterval: time.Second})
	e.logs[0].AppendN(5, "a")
	e.cosign(0, 0, 1, 2)

	b.open(1280, 900, false)
	b.must("Page.navigate", map[string]any{"url": e.url + "/"}, nil)
	state := func(name string) string {
		return `(() => { const r = document.querySelector('#witnesses tr[data-witness="` + name + `"]'); return r && r.dataset.state; })()`
	}
	for _, name := range []string{"w0", "w1", "w2"} {
		if got := b.waitJS(name+" alive", state(name)+` === 'alive' && 'alive'`); got != "alive" {
			t.Errorf("%s: %s", name, got)
		}
	}
	// w2 stops cosigning.
	e.logs[0].AppendN(3, "b")
	e.cosign(0, 0, 1)
	b.waitJS("w2 late or missing", state("w2")+` !== 'alive' && 'behind'`)
	b.waitJS("w2 missing", state("w2")+` === 'missing' && 'missing'`)
	row := b.waitJS("w2's row", `document.querySelector('#witnesses tr[data-witness="w2"]').innerText`)
	for _, want := range []string{"missing", "3 behind"} {
		if !strings.Contains(row, want) {
			t.Errorf("w2's row lacks %q: %q", want, row)
		}
	}
	if got := b.waitJS("w0 still alive", state("w0")); got != "alive" {
		t.Errorf("w0: %s", got)
	}
	b.screenshot(filepath.Join(t.TempDir(), "dashboard-witnesses.png"))
	b.viewport(390, 844, true)
	if w := b.waitJS("the phone layout", `document.documentElement.scrollWidth <= 390 ? 'fits' : 'overflows ' + document.documentElement.scrollWidth`); w != "fits" {
		t.Errorf("phone layout: %s", w)
	}
}
