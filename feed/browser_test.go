package feed_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigilnet/vigil/feed"
	"github.com/vigilnet/vigil/store"
	"github.com/vigilnet/vigil/tlog"
)

// chromiumPath finds a Chromium binary: $CHROMIUM, else the Debian package's.
func chromiumPath() string {
	for _, p := range []string{os.Getenv("CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if p == "" {
			continue
		}
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// browser is a headless Chromium driven over the DevTools protocol on a
// pipe (--remote-debugging-pipe: JSON messages ending in NUL on fds 3 and 4),
// so no WebSocket client or extra module is needed.
type browser struct {
	t       testing.TB
	cmd     *exec.Cmd
	w       io.WriteCloser
	mu      sync.Mutex
	nextID  int
	pending map[int]chan cdpReply
	session string
}

type cdpReply struct {
	ID     int             `json:"id"`
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Message string `json:"message"`
	} `json:"error"`
}

func startBrowser(t *testing.T) *browser {
	t.Helper()
	path := chromiumPath()
	if path == "" {
		t.Skip("!!! SKIPPING THE BROWSER TEST: Chromium is not installed (run `make chromium`, or set $CHROMIUM) !!!")
	}
	toChrome, ourW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	ourR, fromChrome, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(path, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
		"--disable-extensions", "--mute-audio", "--hide-scrollbars",
		"--user-data-dir="+t.TempDir(), "--remote-debugging-pipe", "about:blank")
	cmd.ExtraFiles = []*os.File{toChrome, fromChrome} // fds 3 and 4
	// Chromium is chatty on stderr (D-Bus and the like): show it only when
	// the test fails.
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("chromium stderr:\n%s", stderr.String())
		}
	})
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", path, err)
	}
	toChrome.Close()
	fromChrome.Close()
	b := &browser{t: t, cmd: cmd, w: ourW, pending: map[int]chan cdpReply{}}
	go b.read(ourR)
	t.Cleanup(func() {
		ourW.Close()
		cmd.Process.Kill()
		cmd.Wait()
	})
	return b
}

func (b *browser) read(r io.Reader) {
	br := bufio.NewReaderSize(r, 1<<20)
	for {
		msg, err := br.ReadBytes(0)
		if err != nil {
			b.mu.Lock()
			for id, ch := range b.pending {
				close(ch)
				delete(b.pending, id)
			}
			b.mu.Unlock()
			return
		}
		var rep cdpReply
		if json.Unmarshal(msg[:len(msg)-1], &rep) != nil || rep.ID == 0 {
			continue // an event; this driver waits on the page instead
		}
		b.mu.Lock()
		ch := b.pending[rep.ID]
		delete(b.pending, rep.ID)
		b.mu.Unlock()
		if ch != nil {
			ch <- rep
		}
	}
}

// call sends one DevTools command (to the page session once attached) and
// waits for its reply.
func (b *browser) call(method string, params any, result any) error {
	b.mu.Lock()
	b.nextID++
	id := b.nextID
	ch := make(chan cdpReply, 1)
	b.pending[id] = ch
	msg := map[string]any{"id": id, "method": method, "params": params}
	if b.session != "" {
		msg["sessionId"] = b.session
	}
	data, _ := json.Marshal(msg)
	_, err := b.w.Write(append(data, 0))
	b.mu.Unlock()
	if err != nil {
		return fmt.Errorf("%s: %w", method, err)
	}
	select {
	case rep, ok := <-ch:
		switch {
		case !ok:
			return fmt.Errorf("%s: browser exited", method)
		case rep.Error != nil:
			return fmt.Errorf("%s: %s", method, rep.Error.Message)
		case result != nil:
			return json.Unmarshal(rep.Result, result)
		}
		return nil
	case <-time.After(deadline):
		return fmt.Errorf("%s: no reply before the deadline", method)
	}
}

func (b *browser) must(method string, params any, result any) {
	b.t.Helper()
	if err := b.call(method, params, result); err != nil {
		b.t.Fatal(err)
	}
}

// open creates a page and attaches to it.
func (b *browser) open(width, height int, mobile bool) {
	b.t.Helper()
	var target struct{ TargetID string }
	b.must("Target.createTarget", map[string]any{"url": "about:blank"}, &target)
	var att struct{ SessionID string }
	b.must("Target.attachToTarget", map[string]any{"targetId": target.TargetID, "flatten": true}, &att)
	b.session = att.SessionID
	b.must("Page.enable", map[string]any{}, nil)
	b.viewport(width, height, mobile)
}

func (b *browser) viewport(width, height int, mobile bool) {
	b.t.Helper()
	b.must("Emulation.setDeviceMetricsOverride", map[string]any{"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile}, nil)
}

// waitJS evaluates cond in the page until it is truthy, using a
// MutationObserver in the page (no polling here); it returns cond's value.
func (b *browser) waitJS(what, cond string) string {
	b.t.Helper()
	expr := `new Promise((resolve, reject) => {
		const check = () => { try { const v = (` + cond + `); if (v) { resolve(String(v)); return true; } } catch (e) {} return false; };
		if (check()) return;
		const obs = new MutationObserver(() => { if (check()) obs.disconnect(); });
		obs.observe(document, {subtree: true, childList: true, characterData: true, attributes: true});
		setTimeout(() => { obs.disconnect(); reject(new Error('timed out')); }, ` + strconv.Itoa(int(deadline/time.Millisecond)) + `);
	})`
	var res struct {
		Result struct {
			Value any `json:"value"`
		} `json:"result"`
		ExceptionDetails *struct {
			Text      string `json:"text"`
			Exception struct {
				Description string `json:"description"`
			} `json:"exception"`
		} `json:"exceptionDetails"`
	}
	if err := b.call("Runtime.evaluate", map[string]any{"expression": expr, "awaitPromise": true, "returnByValue": true}, &res); err != nil {
		b.t.Fatalf("waiting for %s: %v", what, err)
	}
	if res.ExceptionDetails != nil {
		b.t.Fatalf("waiting for %s: %s %s\npage:\n%s", what, res.ExceptionDetails.Text, res.ExceptionDetails.Exception.Description, b.text())
	}
	return fmt.Sprint(res.Result.Value)
}

func (b *browser) text() string {
	var res struct {
		Result struct {
			Value string `json:"value"`
		} `json:"result"`
	}
	b.call("Runtime.evaluate", map[string]any{"expression": "document.body ? document.body.innerText : ''", "returnByValue": true}, &res)
	return res.Result.Value
}

func (b *browser) screenshot(path string) {
	b.t.Helper()
	var shot struct{ Data string }
	b.must("Page.captureScreenshot", map[string]any{"format": "png", "captureBeyondViewport": true}, &shot)
	png, err := base64.StdEncoding.DecodeString(shot.Data)
	if err != nil {
		b.t.Fatal(err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot: %s (%d bytes)", path, len(png))
	// VIGIL_SCREENSHOTS keeps a copy for people to look at.
	if dir := os.Getenv("VIGIL_SCREENSHOTS"); dir != "" {
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(path)), png, 0o644); err != nil {
			b.t.Log(err)
		}
	}
}

// TestBrowserDashboard loads the dashboard in headless Chromium and watches
// a checkpoint, an unproven divergence (and its resolution) and then an
// evidence banner appear without reloading.
func TestBrowserDashboard(t *testing.T) {
	b := startBrowser(t)
	e := newEnv(t, envOptions{logs: 3, witnesses: 3, quorum: "2"})
	s := e.subscribe("")
	// Some history for the growth chart of log 0.
	for i := range 6 {
		e.logs[0].AppendN(3+i*i, "a")
		e.cosign(0, 0, 1, 2)
	}
	e.waitServed(s, 0, e.logs[0].Size(), 3)
	e.logs[2].AppendN(40, "a")
	e.cosign(2, 1)
	e.waitLatest(2, 40, 1)
	e.src.setPeers(peersFixture())

	b.open(1280, 900, false)
	b.must("Page.navigate", map[string]any{"url": e.url + "/"}, nil)
	b.waitJS("the live connection", `document.getElementById('conn') && document.getElementById('conn').textContent === 'Live'`)
	if got := b.waitJS("log 0's row", `document.querySelector('#log-`+tlog.LogID(e.logs[0].Origin())+` .size .num').textContent`); got != strconv.FormatUint(e.logs[0].Size(), 10) {
		t.Errorf("log 0 size on the page: %s", got)
	}
	if b.waitJS("no banner", `document.querySelector('.banner') === null ? 'none' : 'banner'`) != "none" {
		t.Error("an evidence banner before any evidence")
	}

	// A checkpoint appears live.
	id1 := tlog.LogID(e.logs[1].Origin())
	e.logs[1].AppendN(7, "a")
	e.cosign(1, 0, 2)
	got := b.waitJS("log 1's new checkpoint", `(() => { const n = document.querySelector('#log-`+id1+` .size .num'); return n && n.textContent === '7' && document.querySelector('#log-`+id1+` .cosigners').textContent; })()`)
	if got != "2/3: w0, w2" {
		t.Errorf("log 1 cosigners on the page: %q", got)
	}

	// An unproven divergence of log 0 appears live on its row: both sizes
	// and who cosigned each, in place of the quorum pill; it clears when
	// the divergence resolves.
	id0 := tlog.LogID(e.logs[0].Origin())
	row0 := `document.querySelector('#log-` + id0 + `')`
	if got := b.waitJS("log 0's quorum pill", row0+`.querySelector('.size .pill').textContent`); got != "quorum" {
		t.Errorf("log 0's pill before the divergence: %q", got)
	}
	size0 := e.logs[0].Size()
	_, large := e.divergence(0, size0, size0+17, []string{"w0", "w1", "w2"}, []string{"w2"}, time.Now())
	e.feed.SuspicionUpdated()
	div := b.waitJS("the divergent row", `(() => { const r = `+row0+`; const d = r && r.classList.contains('divergent') && r.querySelector('.divergence'); return d && d.innerText; })()`)
	if want := fmt.Sprintf("size %d cosigned by w2 and size %d cosigned by w0, w1, w2", size0+17, size0); !strings.Contains(div, want) || !strings.Contains(div, "nobody has shown them consistent") {
		t.Errorf("divergence on the row: %q, want %q", div, want)
	}
	if got := b.waitJS("the contested pill", `Array.from(`+row0+`.querySelectorAll('.size .pill')).map(p => p.textContent).join(',')`); got != "contested" {
		t.Errorf("log 0's pills during the divergence: %q, want only contested", got)
	}
	if got := b.waitJS("the row's state", row0+`.dataset.state`); got != feed.StateDivergent {
		t.Errorf("log 0's state: %q", got)
	}
	if got := b.waitJS("the divergent card", `document.querySelector('#divergent-card.warn .num').textContent`); got != "1" {
		t.Errorf("divergent logs on the card: %q", got)
	}
	if bg := b.waitJS("the row colour", `getComputedStyle(`+row0+`).backgroundColor`); bg != "rgb(255, 241, 214)" {
		t.Errorf("divergent row background %s, want amber", bg)
	}
	b.screenshot(filepath.Join(t.TempDir(), "dashboard-divergent.png"))
	if err := e.src.db.ResolveSuspicion(context.Background(), e.logs[0].Origin(), large.Size, large.Root, store.ResolvedConsistent, time.Now()); err != nil {
		t.Fatal(err)
	}
	e.feed.SuspicionUpdated()
	got = b.waitJS("the row cleared", `(() => { const r = `+row0+`; return r && !r.classList.contains('divergent') && !r.querySelector('.divergence') && r.querySelector('.size .pill').textContent; })()`)
	if got != "quorum" {
		t.Errorf("log 0's pill after the resolution: %q", got)
	}
	if got := b.waitJS("the card cleared", `document.querySelector('#divergent-card .num').textContent`); got != "0" {
		t.Errorf("divergent logs on the card after the resolution: %q", got)
	}

	// Evidence appears live as a red banner with details.
	e.src.addEvidence(evidenceFor(e.logs[1].Origin(), 0), []byte("vigil-evidence/v1\n"))
	e.feed.EvidenceUpdated()
	banner := b.waitJS("the evidence banner", `(() => { const b = document.querySelector('.banner[role=alert]'); return b && b.innerText; })()`)
	for _, want := range []string{"Evidence of misbehaviour", e.logs[1].Origin(), "log-equivocation-same-size", "download proof"} {
		if !strings.Contains(banner, want) {
			t.Errorf("banner lacks %q:\n%s", want, banner)
		}
	}
	if bg := b.waitJS("the banner colour", `getComputedStyle(document.querySelector('.banner')).backgroundColor`); bg != "rgb(179, 22, 29)" {
		t.Errorf("banner background %s, want red", bg)
	}
	if n := b.waitJS("the evidence mark on the row", `document.querySelectorAll('tr.has-evidence').length`); n != "1" {
		t.Errorf("rows marked with evidence: %s", n)
	}
	b.screenshot(filepath.Join(t.TempDir(), "dashboard.png"))

	// On a phone the rows become labelled cards, without horizontal scrolling.
	b.viewport(390, 844, true)
	if w := b.waitJS("the phone layout", `document.documentElement.scrollWidth <= 390 ? 'fits' : 'overflows ' + document.documentElement.scrollWidth`); w != "fits" {
		t.Errorf("phone layout: %s", w)
	}
	b.screenshot(filepath.Join(t.TempDir(), "dashboard-phone.png"))
}

func peersFixture() []feed.Peer {
	return []feed.Peer{
		{ID: "12D3KooWQm8dLp4b1vVxgWQTq1Jw6yN2Lx3k9c7aR5sE4fHj2uZ", Name: "w0", Role: "witness", Score: 14.2, Connected: true},
		{ID: "12D3KooWHx2gB7nR3cYpT9sL1mK4vJ8dF6qW5eA2zU7iO3pN1bV", Name: "w1", Role: "witness", Score: 9.7, Connected: true},
		{ID: "12D3KooWJ5tY8uI2oP4aS6dF9gH1jK3lZ7xC0vB5nM2qW8eR4tY", Role: "observer", Score: 0.5, Connected: false},
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b = append(l.b, p...)
	return len(p), nil
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.b)
}
