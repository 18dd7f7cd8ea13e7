package testnet_test

// The crash test for design invariant 1: a `vigil node` process SIGKILLed in
// the middle of concurrent add-checkpoint load, over and over on the same
// data directory, never loses a cosignature it returned and never cosigns two
// inconsistent checkpoints for one origin.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/vigilnet/vigil/store"
	"github.com/vigilnet/vigil/testnet/load"
	"github.com/vigilnet/vigil/testnet/scriptlog"
	"github.com/vigilnet/vigil/tlog"
)

const (
	crashCycles     = 20
	soakCycles      = 1000
	honestLogs      = 3
	driversPerLog   = 2   // goroutines sharing each honest log: real 409 races
	maxKillAfter    = 300 // completed requests before the SIGKILL, at most
	maxDriverRounds = 5000
	witnessName     = "crash.vigil.example/witness"
)

// TestMain removes the vigil binary the process tests share once they are
// all done.
func TestMain(m *testing.M) {
	code := m.Run()
	if built.Load() {
		if bin, err := buildVigil(); err == nil {
			os.RemoveAll(filepath.Dir(bin))
		}
	}
	os.Exit(code)
}

// built is set once buildVigil has really built something.
var built atomic.Bool

// buildVigil builds the real vigil binary once per test binary; the tests
// that start vigil processes share it.
var buildVigil = sync.OnceValues(func() (string, error) {
	built.Store(true)
	dir, err := os.MkdirTemp("", "vigil-crash-bin-")
	if err != nil {
		return "", err
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "vigil")
	out, err := exec.Command(goBin, "build", "-o", bin, "github.com/vigilnet/vigil/cmd/vigil").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

// origin is one log identity and the histories (forks) it has shown.
type origin struct {
	name      string
	verifier  note.Verifier
	histories []*scriptlog.Log
	cosigs    []cosigned // every cosignature returned for this origin
	masks     map[uint8]bool
	maxSize   uint64 // largest cosigned size
	maxRoot   [32]byte
	stored    uint64 // witness state size at the last check
}

// cosigned is a cosignature the witness returned.
type cosigned struct {
	size uint64
	root [32]byte
	mask uint8 // which histories contain (size, root)
}

// mask returns the set of the origin's histories whose tree of the given size
// has that root. Two cosigned checkpoints are consistent exactly when their
// masks intersect: forks share a prefix and differ after it.
func (o *origin) mask(size uint64, root [32]byte) uint8 {
	var m uint8
	for i, h := range o.histories {
		if size > h.Size() {
			continue
		}
		if r, err := h.Root(size); err == nil && r == root {
			m |= 1 << i
		}
	}
	return m
}

// crashNet is the test's world: logs, the witness's files, and everything
// the witness ever returned.
type crashNet struct {
	t        *testing.T
	bin      string
	dir      string
	rng      *mrand.Rand
	verifier note.Verifier
	mu       sync.Mutex // guards origins' cosigs and masks during load
	origins  []*origin
	byName   map[string]*origin
	errs     atomic.Int32
}

func newOrigin(t *testing.T, name string, forkAt uint64) *origin {
	t.Helper()
	l, err := scriptlog.New(name)
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(l.VerifierKey())
	if err != nil {
		t.Fatal(err)
	}
	o := &origin{name: name, verifier: v, histories: []*scriptlog.Log{l}, masks: map[uint8]bool{}}
	if forkAt > 0 {
		l.AppendN(int(forkAt), "base")
		f, err := l.Fork(forkAt)
		if err != nil {
			t.Fatal(err)
		}
		o.histories = append(o.histories, f)
	}
	return o
}

func (n *crashNet) add(o *origin) {
	n.origins = append(n.origins, o)
	n.byName[o.name] = o
}

// TestCrashRecovery SIGKILLs a witness node process at a random point of a
// concurrent load over honest logs and over two forks of the same logs, then
// restarts it on the same data directory, for crashCycles cycles (soakCycles
// with VIGIL_SOAK=1). After every crash it checks that
//   - every cosignature ever returned is reflected in the stored state: the
//     stored size is at least the cosigned size and consistent with it;
//   - no two returned cosignatures for one origin are inconsistent;
//   - the restarted node answers 409 with a size at least any it cosigned.
func TestCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test builds and kills real processes")
	}
	cycles := crashCycles
	if os.Getenv("VIGIL_SOAK") == "1" {
		cycles = soakCycles
	}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("VIGIL_CRASH_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("seed %d (set VIGIL_CRASH_SEED to repeat), %d cycles", seed, cycles)
	bin, err := buildVigil()
	if err != nil {
		t.Fatal(err)
	}

	n := &crashNet{t: t, bin: bin, dir: t.TempDir(), rng: mrand.New(mrand.NewPCG(seed, 0)), byName: map[string]*origin{}}
	out, err := exec.Command(bin, "keygen", "--name", witnessName, "--out", filepath.Join(n.dir, "keys")).CombinedOutput()
	if err != nil {
		t.Fatalf("vigil keygen: %v\n%s", err, out)
	}
	vkey, err := os.ReadFile(filepath.Join(n.dir, "keys", "witness.vkey"))
	if err != nil {
		t.Fatal(err)
	}
	if n.verifier, err = tlog.NewCosignatureVerifier(strings.TrimSpace(string(vkey))); err != nil {
		t.Fatal(err)
	}
	config := "log_level: warn\nwitness:\n  rate_per_log: 0\n"
	if err := os.WriteFile(filepath.Join(n.dir, "vigil.yaml"), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	for i := range honestLogs {
		n.add(newOrigin(t, fmt.Sprintf("crash.vigil.example/honest/%d", i), 0))
	}
	// A forked log that stays in play for the whole test: after the first
	// cycle decides which fork the witness follows, the other keeps trying.
	n.add(newOrigin(t, "crash.vigil.example/fork/all", 4))

	for c := range cycles {
		// A fresh forked log each cycle: a new race between its forks.
		fresh := newOrigin(t, fmt.Sprintf("crash.vigil.example/fork/%d", c), uint64(1+n.rng.IntN(4)))
		n.add(fresh)
		n.writeRoster()
		proc := n.start()
		n.checkRestarted(proc.url)
		n.load(proc, fresh)
		n.checkStore()
		if n.errs.Load() > 0 || t.Failed() {
			t.Fatalf("cycle %d failed", c)
		}
	}
	// A last restart: the node must still refuse to roll back, then shut
	// down cleanly on SIGTERM.
	proc := n.start()
	n.checkRestarted(proc.url)
	if err := proc.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := proc.wait(); err != nil {
		t.Errorf("node exit after SIGTERM: %v\n%s", err, proc.stderr.String())
	}
	total := 0
	for _, o := range n.origins {
		total += len(o.cosigs)
	}
	t.Logf("%d cycles, %d cosignatures checked across %d origins", cycles, total, len(n.origins))
}

func (n *crashNet) writeRoster() {
	var b strings.Builder
	for _, o := range n.origins {
		fmt.Fprintf(&b, "log %s\n", o.histories[0].VerifierKey())
	}
	b.WriteString("quorum none\n")
	if err := os.WriteFile(filepath.Join(n.dir, "roster.policy"), []byte(b.String()), 0o644); err != nil {
		n.t.Fatal(err)
	}
}

// process is a running `vigil node`.
type process struct {
	cmd    *exec.Cmd
	url    string
	stderr *syncBuffer
	exited chan error
}

func (p *process) wait() error { return <-p.exited }

// start runs `vigil node` on 127.0.0.1:0 and waits for it to print its
// address.
func (n *crashNet) start() *process {
	n.t.Helper()
	addr := make(chan string, 1)
	p := &process{stderr: &syncBuffer{}, exited: make(chan error, 1)}
	p.cmd = exec.Command(n.bin, "node",
		"--config", filepath.Join(n.dir, "vigil.yaml"),
		"--listen", "127.0.0.1:0",
		"--data", filepath.Join(n.dir, "data"),
		"--keys", filepath.Join(n.dir, "keys"),
		"--roster", filepath.Join(n.dir, "roster.policy"))
	p.cmd.Stdout = &lineWatcher{prefix: "vigil node listening on ", found: addr}
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		n.t.Fatal(err)
	}
	go func() { p.exited <- p.cmd.Wait() }()
	n.t.Cleanup(func() { p.cmd.Process.Kill() })
	timer := time.NewTimer(30 * time.Second)
	defer timer.Stop()
	select {
	case p.url = <-addr:
	case err := <-p.exited:
		n.t.Fatalf("vigil node exited before listening: %v\n%s", err, p.stderr.String())
	case <-timer.C:
		n.t.Fatalf("vigil node did not print its address in 30s\n%s", p.stderr.String())
	}
	if !strings.HasPrefix(p.url, "http://127.0.0.1:") {
		n.t.Fatalf("node listens on %q, want 127.0.0.1", p.url)
	}
	return p
}

func newClient() *http.Client {
	return &http.Client{
		Transport: &http.Transport{MaxIdleConnsPerHost: 16, DisableCompression: true},
		Timeout:   10 * time.Second,
	}
}

func post(ctx context.Context, c *http.Client, url string, body []byte) (int, http.Header, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+"/add-checkpoint", bytes.NewReader(body))
	if err != nil {
		return 0, nil, nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return 0, nil, nil, err
	}
	return resp.StatusCode, resp.Header, b, nil
}

// checkRestarted asks the node for the size it holds for every origin it
// cosigned: an "old 0" request for the empty checkpoint must get 409 with a
// size at least the largest it ever cosigned (and, when nothing was lost,
// the size the store held at the last crash).
func (n *crashNet) checkRestarted(url string) {
	n.t.Helper()
	c := newClient()
	defer c.CloseIdleConnections()
	for i, o := range n.origins {
		// The long-lived logs and the latest fresh forks: probing every old
		// fork would make a soak quadratic (the store check covers them).
		if len(o.cosigs) == 0 || (i > honestLogs && i < len(n.origins)-4) {
			continue
		}
		cp, err := o.histories[0].CheckpointAt(0)
		if err != nil {
			n.t.Fatal(err)
		}
		body := append([]byte("old 0\n\n"), cp...)
		code, h, resp, err := post(n.t.Context(), c, url, body)
		if err != nil {
			n.t.Fatalf("%s after restart: %v", o.name, err)
		}
		size, perr := strconv.ParseUint(strings.TrimSpace(string(resp)), 10, 64)
		switch {
		case code != http.StatusConflict || h.Get("Content-Type") != "text/x.tlog.size" || perr != nil:
			n.t.Fatalf("%s after restart: old 0 got %d %q %q, want 409 with the stored size", o.name, code, h.Get("Content-Type"), resp)
		case size < o.maxSize:
			n.t.Fatalf("%s after restart: witness holds size %d, but it cosigned size %d", o.name, size, o.maxSize)
		case size != o.stored:
			n.t.Fatalf("%s after restart: witness holds size %d, its store held %d", o.name, size, o.stored)
		}
	}
}

// driver submits checkpoints of one history of an origin, tracking the size
// it believes the witness holds.
type driver struct {
	o        *origin
	own      *scriptlog.Log
	tag      string
	honest   bool
	believed uint64
	rng      *mrand.Rand
}

// load drives every origin concurrently and SIGKILLs the node after a
// random number of completed requests, then waits for it to die.
func (n *crashNet) load(p *process, fresh *origin) {
	killAfter := int64(1 + n.rng.IntN(maxKillAfter))
	var completed atomic.Int64
	var killOnce sync.Once
	kill := func() {
		killOnce.Do(func() {
			if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
				n.t.Errorf("SIGKILL: %v", err)
			}
		})
	}
	var drivers []*driver
	newDriver := func(o *origin, h int, honest bool) {
		drivers = append(drivers, &driver{o: o, own: o.histories[h], tag: fmt.Sprintf("fork%d", h), honest: honest,
			rng: mrand.New(mrand.NewPCG(n.rng.Uint64(), n.rng.Uint64()))})
	}
	for _, o := range n.origins {
		switch {
		case len(o.histories) == 1:
			for range driversPerLog {
				newDriver(o, 0, true)
			}
		case o == n.origins[honestLogs] || o == fresh:
			newDriver(o, 0, false)
			newDriver(o, 1, false)
		}
	}
	c := newClient()
	defer c.CloseIdleConnections()
	var wg sync.WaitGroup
	for _, d := range drivers {
		wg.Go(func() {
			for range maxDriverRounds {
				if !n.submit(c, p.url, d) {
					return
				}
				if completed.Add(1) == killAfter {
					kill()
				}
			}
			kill() // never leave the node running if the rounds run out
		})
	}
	wg.Wait()
	kill()
	if err := p.wait(); err == nil || !strings.Contains(err.Error(), "killed") {
		n.t.Fatalf("node exited with %v instead of being killed\n%s", err, p.stderr.String())
	}
	if s := p.stderr.String(); strings.Contains(s, "level=ERROR") {
		n.t.Errorf("node logged errors:\n%s", s)
	}
}

// submit sends one request and records the outcome. It returns false when
// the node is unreachable (it has been killed).
func (n *crashNet) submit(c *http.Client, url string, d *driver) bool {
	o := d.o
	target := d.believed + 1 + uint64(d.rng.IntN(4))
	if d.believed > 0 && d.rng.IntN(8) == 0 {
		target = d.believed // same size: re-cosign, or 422 for the other fork
	}
	d.own.GrowTo(target, d.tag)
	st, err := load.NewStep(d.own, d.believed, target)
	if err != nil {
		n.fail("%s: %v", o.name, err)
		return false
	}
	code, h, body, err := post(n.t.Context(), c, url, st.Body)
	if err != nil {
		return false
	}
	switch code {
	case http.StatusOK:
		if err := load.VerifyCosignature(st.Checkpoint, body, n.verifier); err != nil {
			n.fail("%s size %d: %v", o.name, target, err)
			return false
		}
		n.record(o, st.Size, st.Root)
		d.believed = target
	case http.StatusConflict:
		size, err := strconv.ParseUint(strings.TrimSpace(string(body)), 10, 64)
		if err != nil || h.Get("Content-Type") != "text/x.tlog.size" {
			n.fail("%s: bad 409 %q %q", o.name, h.Get("Content-Type"), body)
			return false
		}
		d.believed = size
	case http.StatusUnprocessableEntity:
		if d.honest {
			n.fail("%s: honest checkpoint %d (old %d) refused as inconsistent: %s", o.name, target, st.OldSize, body)
			return false
		}
		// The witness follows the other fork: keep trying to fool it.
	default:
		n.fail("%s: unexpected status %d: %s", o.name, code, body)
		return false
	}
	return true
}

func (n *crashNet) fail(format string, args ...any) {
	if n.errs.Add(1) <= 10 {
		n.t.Errorf(format, args...)
	}
}

// record adds a returned cosignature and checks it against every other one
// returned for the origin, across forks and cycles.
func (n *crashNet) record(o *origin, size uint64, root [32]byte) {
	n.mu.Lock()
	defer n.mu.Unlock()
	m := o.mask(size, root)
	if m == 0 {
		n.fail("%s: cosigned size %d with a root no history has", o.name, size)
		return
	}
	if !o.masks[m] {
		for prev := range o.masks {
			if prev&m == 0 {
				n.fail("%s: cosigned size %d on history set %02b, inconsistent with an earlier cosignature on %02b", o.name, size, m, prev)
			}
		}
		o.masks[m] = true
	}
	o.cosigs = append(o.cosigs, cosigned{size: size, root: root, mask: m})
	if size > o.maxSize || len(o.cosigs) == 1 {
		o.maxSize, o.maxRoot = size, root
	}
}

// checkStore opens the crashed node's store and checks that every returned
// cosignature is reflected in it. Checking the largest cosigned checkpoint
// suffices: all cosignatures of an origin are pairwise consistent (record),
// so each is a prefix of the largest, which must be a prefix of the state.
func (n *crashNet) checkStore() {
	n.t.Helper()
	db, err := store.Open(filepath.Join(n.dir, "data"), store.Options{})
	if err != nil {
		n.t.Fatalf("opening the crashed node's store: %v", err)
	}
	defer db.Close()
	for _, o := range n.origins {
		st, err := db.WitnessState(context.Background(), o.name)
		if errors.Is(err, store.ErrNotFound) {
			if len(o.cosigs) > 0 {
				n.t.Fatalf("%s: %d cosignatures returned, no state stored", o.name, len(o.cosigs))
			}
			continue
		}
		if err != nil {
			n.t.Fatal(err)
		}
		if st.Size < o.stored {
			n.t.Fatalf("%s: stored size went back from %d to %d", o.name, o.stored, st.Size)
		}
		o.stored = st.Size
		if len(o.cosigs) > 0 {
			if st.Size < o.maxSize {
				n.t.Fatalf("%s: cosigned size %d, but the store holds size %d", o.name, o.maxSize, st.Size)
			}
			if o.mask(st.Size, st.Root)&o.mask(o.maxSize, o.maxRoot) == 0 {
				n.t.Fatalf("%s: stored size %d is not consistent with cosigned size %d", o.name, st.Size, o.maxSize)
			}
		}
		// The stored checkpoint is the log-signed note with the witness's
		// cosignature, for the stored size and root.
		cp, nt, err := tlog.VerifyCheckpoint(st.Checkpoint, o.name, []note.Verifier{o.verifier}, n.verifier)
		if err != nil || cp.Size != st.Size || cp.Root != st.Root || !tlog.SignedBy(nt, n.verifier) {
			n.t.Fatalf("%s: stored checkpoint does not match the state or lacks the cosignature: %v", o.name, err)
		}
	}
}

// lineWatcher is a process's stdout: it sends the rest of the first line
// starting with prefix.
type lineWatcher struct {
	prefix string
	found  chan<- string
	buf    []byte
	done   bool
}

func (w *lineWatcher) Write(p []byte) (int, error) {
	if w.done {
		return len(p), nil
	}
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		line := string(w.buf[:i])
		w.buf = w.buf[i+1:]
		if rest, ok := strings.CutPrefix(line, w.prefix); ok {
			w.done = true
			w.found <- rest
			return len(p), nil
		}
	}
}

// syncBuffer collects a process's stderr.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
