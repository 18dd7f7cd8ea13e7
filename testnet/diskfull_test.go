package testnet_test

// A real `vigil node` on a real full filesystem (DESIGN invariant 6): a
// 32 MB tmpfs filled to about 1.5 MB free. Writes must be 503s with
// Retry-After and a reason, reads 200, the process alive; once space is
// freed cosigning resumes without a restart; a node started on the full
// volume exits 1 naming the free space.

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vigilnet/vigil/testnet/load"
	"github.com/vigilnet/vigil/tlog"
)

// mountTmpfs mounts a tmpfs of size MB on a new temporary directory, or
// skips the test when it cannot (not root).
func mountTmpfs(t *testing.T, size int) string {
	t.Helper()
	if testing.Short() {
		t.Skip("full-disk test builds and runs a real node")
	}
	if os.Geteuid() != 0 {
		t.Skip("SKIPPED: the full-disk test mounts a tmpfs and needs root (CI runs it as root)")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%dm", size), "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("SKIPPED: cannot mount a tmpfs (%v: %s)", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", "-l", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// fill writes path until about leave bytes are free on its volume, as a
// process sharing the volume would (its writes never meet ENOSPC first).
func fill(t *testing.T, path string, leave int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 256<<10)
	for {
		var st syscall.Statfs_t
		if err := syscall.Statfs(filepath.Dir(path), &st); err != nil {
			t.Fatal(err)
		}
		free := int64(st.Bavail) * st.Bsize
		if free <= leave {
			return
		}
		if _, err := f.Write(buf[:min(int64(len(buf)), free-leave)]); err != nil {
			t.Fatalf("filling %s: %v", path, err)
		}
	}
}

// diskNet is a witness on a tmpfs with logs to cosign.
type diskNet struct {
	*crashNet
	believed map[string]uint64
}

func newDiskNet(t *testing.T, dir string, logs int) *diskNet {
	t.Helper()
	bin, err := buildVigil()
	if err != nil {
		t.Fatal(err)
	}
	n := &diskNet{crashNet: &crashNet{t: t, bin: bin, dir: dir, byName: map[string]*origin{}}, believed: map[string]uint64{}}
	out, err := exec.Command(bin, "keygen", "--name", witnessName, "--out", filepath.Join(dir, "keys")).CombinedOutput()
	if err != nil {
		t.Fatalf("vigil keygen: %v\n%s", err, out)
	}
	vkey, err := os.ReadFile(filepath.Join(dir, "keys", "witness.vkey"))
	if err != nil {
		t.Fatal(err)
	}
	if n.verifier, err = tlog.NewCosignatureVerifier(strings.TrimSpace(string(vkey))); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "vigil.yaml"), []byte("log_level: warn\nwitness:\n  rate_per_log: 0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for i := range logs {
		n.add(newOrigin(t, fmt.Sprintf("disk.vigil.example/log/%d", i), 0))
	}
	n.writeRoster()
	return n
}

// cosign asks the node to move o one step further; it returns the status
// and, for a 503, checks Retry-After and a reason. Failures are counted
// (n.errs), not fatal: it runs on many goroutines.
func (n *diskNet) cosign(c *http.Client, url string, o *origin) int {
	n.mu.Lock()
	old := n.believed[o.name]
	n.mu.Unlock()
	l := o.histories[0]
	l.GrowTo(old+1, "d")
	st, err := load.NewStep(l, old, old+1)
	if err != nil {
		n.fail("%s: %v", o.name, err)
		return 0
	}
	code, h, body, err := post(n.t.Context(), c, url, st.Body)
	if err != nil {
		n.fail("%s: add-checkpoint: %v", o.name, err)
		return 0
	}
	switch code {
	case http.StatusOK:
		if err := load.VerifyCosignature(st.Checkpoint, body, n.verifier); err != nil {
			n.fail("%s: %v", o.name, err)
			return 0
		}
		n.mu.Lock()
		n.believed[o.name] = max(n.believed[o.name], old+1)
		n.mu.Unlock()
	case http.StatusServiceUnavailable:
		if h.Get("Retry-After") == "" || !strings.Contains(string(body), "disk") {
			n.fail("%s: 503 without Retry-After or reason: %q %q", o.name, h.Get("Retry-After"), body)
		}
	case http.StatusConflict:
		// A concurrent request for the same log got there first.
	default:
		n.fail("%s: status %d: %s", o.name, code, body)
	}
	return code
}

func getURL(t *testing.T, c *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// fullCycle fills the volume under a running node, checks that writes are
// refused and reads served, frees it and waits for cosigning to resume.
func (n *diskNet) fullCycle(p *process, c *http.Client) {
	t := n.t
	t.Helper()
	filler := filepath.Join(n.dir, "filler")
	// What the node cosigned is in its feed (which takes up to the feed's
	// pacing interval) before the disk fills: reads of it must go on.
	held := time.Now().Add(5 * time.Second)
	poll := time.NewTicker(20 * time.Millisecond)
	defer poll.Stop()
	for _, o := range n.origins {
		h := sha256.Sum256([]byte(o.name))
		for {
			code, body := getURL(t, c, p.url+"/v1/logs/"+hex.EncodeToString(h[:])+"/checkpoint")
			if code == http.StatusOK {
				break
			}
			if time.Now().After(held) {
				t.Fatalf("read of %s before the disk fills: %d %s", o.name, code, body)
			}
			<-poll.C
		}
	}
	// The volume fills while the node is idle, as in the field: a filler
	// racing Badger's background flushes and compactions to the last
	// block can still kill it (docs/operations.md).
	n.waitQuiet(filepath.Join(n.dir, "data"))
	fill(t, filler, 1536<<10)
	// The node reads free space every 50 ms: it must see the full disk
	// well within a second, without a write to trigger it.
	deadline := time.Now().Add(time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		resp, err := c.Get(p.url + "/healthz")
		if err != nil {
			t.Fatalf("healthz after the disk filled: %v\n%s", err, crashOf(p.stderr.String()))
		}
		resp.Body.Close()
		code := resp.StatusCode
		if code == http.StatusServiceUnavailable {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("healthz still %d 1 s after the disk filled", code)
		}
		<-tick.C
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[int]int{}
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 25 {
				code := n.cosign(c, p.url, n.origins[(w+i)%len(n.origins)])
				mu.Lock()
				codes[code]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-p.exited:
		t.Fatalf("node exited on a full disk: %v\n%s", err, p.stderr.String())
	default:
	}
	if n.errs.Load() > 0 {
		t.FailNow()
	}
	if codes[http.StatusServiceUnavailable] != 200 {
		t.Fatalf("on a full disk: statuses %v, want only 503s", codes)
	}
	for _, o := range n.origins {
		h := sha256.Sum256([]byte(o.name))
		if code, body := getURL(t, c, p.url+"/v1/logs/"+hex.EncodeToString(h[:])+"/checkpoint"); code != http.StatusOK {
			t.Fatalf("read of %s on a full disk: %d %s", o.name, code, body)
		}
	}
	if code, body := getURL(t, c, p.url+"/healthz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "disk_pressure") {
		t.Fatalf("healthz on a full disk: %d %q", code, body)
	}
	if _, body := getURL(t, c, p.url+"/metrics"); !strings.Contains(body, `vigil_store_degraded{reason="disk_pressure"} 1`) || !strings.Contains(body, "vigil_store_writes_refused_total") {
		t.Fatal("metrics on a full disk show no degraded store or refused writes")
	}
	select {
	case err := <-p.exited:
		t.Fatalf("node exited on a full disk: %v\n%s", err, p.stderr.String())
	default:
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	freed := time.Now()
	deadline = freed.Add(5 * time.Second)
	for n.cosign(c, p.url, n.origins[0]) != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatalf("cosigning did not resume within 5 s of freeing space\n%s", p.stderr.String())
		}
		<-tick.C
	}
	t.Logf("full disk: %v; cosigning resumed %v after space was freed", codes, time.Since(freed).Round(time.Millisecond))
}

// TestDiskFull runs one fill-and-free cycle, then starts a node on a full
// volume.
func TestDiskFull(t *testing.T) {
	dir := mountTmpfs(t, 32)
	n := newDiskNet(t, dir, 4)
	p := n.start()
	c := newClient()
	defer c.CloseIdleConnections()
	for _, o := range n.origins {
		if code := n.cosign(c, p.url, o); code != http.StatusOK {
			t.Fatalf("cosigning before the disk fills: %d", code)
		}
	}
	n.fullCycle(p, c)
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := p.wait(); err != nil {
		t.Fatalf("node exit after SIGTERM: %v\n%s", err, p.stderr.String())
	}

	fill(t, filepath.Join(dir, "filler"), 1536<<10)
	cmd := exec.Command(n.bin, "node", "--config", filepath.Join(dir, "vigil.yaml"), "--listen", "127.0.0.1:0",
		"--data", filepath.Join(dir, "data"), "--keys", filepath.Join(dir, "keys"), "--roster", filepath.Join(dir, "roster.policy"))
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 || !strings.Contains(string(out), "below the low watermark") || !strings.Contains(string(out), "MB free") {
		t.Fatalf("node started on a full disk: %v\n%s", err, out)
	}
	t.Logf("start-up on a full disk: %s", strings.TrimSpace(string(out)))
}

// TestDiskFullSoak repeats the fill-and-free cycle under VIGIL_SOAK=1 for
// ten minutes against one node process.
func TestDiskFullSoak(t *testing.T) {
	if os.Getenv("VIGIL_SOAK") != "1" {
		t.Skip("set VIGIL_SOAK=1 (make soak)")
	}
	// 64 MB: under sustained load Badger's own working set (two 2 MB
	// memtable logs, up to sixteen 1 MB level-0 tables before it stalls)
	// reaches about 20 MB, which with the 16 MB low watermark and the 8 MB
	// ballast leaves a 32 MB volume no room once its filler is gone.
	dir := mountTmpfs(t, 64)
	n := newDiskNet(t, dir, 8)
	p := n.start()
	c := newClient()
	defer c.CloseIdleConnections()
	cycles := 0
	for end := time.Now().Add(10 * time.Minute); time.Now().Before(end); cycles++ {
		for _, o := range n.origins {
			n.cosign(c, p.url, o)
		}
		n.fullCycle(p, c)
	}
	t.Logf("%d full-disk cycles", cycles)
}

// TestReadOnlySoak (VIGIL_SOAK=1) runs a node on an ext4 image mounted with
// errors=remount-ro, triggers a filesystem error under load and checks for
// a minute that writes are 503s, reads 200s and the process alive, then
// that it stops on SIGTERM.
func TestReadOnlySoak(t *testing.T) {
	if os.Getenv("VIGIL_SOAK") != "1" {
		t.Skip("set VIGIL_SOAK=1 (make soak)")
	}
	if os.Geteuid() != 0 {
		t.Skip("SKIPPED: needs root to mount an ext4 image (CI runs as root)")
	}
	tmp := t.TempDir()
	img := filepath.Join(tmp, "fs.img")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 40<<20); err != nil {
		t.Fatal(err)
	}
	run := func(name string, args ...string) string {
		t.Helper()
		out, err := exec.Command(name, args...).CombinedOutput()
		if err != nil {
			t.Skipf("SKIPPED: %s %v: %v: %s", name, args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	run("mkfs.ext4", "-q", "-F", img)
	loop := run("losetup", "--find", "--show", img)
	t.Cleanup(func() { exec.Command("losetup", "-d", loop).Run() })
	mnt := filepath.Join(tmp, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	run("mount", "-o", "errors=remount-ro", loop, mnt)
	t.Cleanup(func() { exec.Command("umount", "-l", mnt).Run() })
	trigger := filepath.Join("/sys/fs/ext4", filepath.Base(loop), "trigger_fs_error")
	if _, err := os.Stat(trigger); err != nil {
		t.Skipf("SKIPPED: this kernel cannot trigger an ext4 error (%v)", err)
	}

	n := newDiskNet(t, mnt, 8)
	p := n.start()
	c := newClient()
	defer c.CloseIdleConnections()
	for _, o := range n.origins {
		if code := n.cosign(c, p.url, o); code != http.StatusOK {
			t.Fatalf("cosigning before the error: %d", code)
		}
	}
	if err := os.WriteFile(trigger, []byte("vigil soak\n"), 0o200); err != nil {
		t.Fatal(err)
	}
	codes := map[int]int{}
	for end := time.Now().Add(time.Minute); time.Now().Before(end); {
		for _, o := range n.origins {
			code, _, body, err := post(t.Context(), c, p.url, mustStep(t, o, n.believed[o.name]))
			if err != nil {
				t.Fatalf("add-checkpoint on a read-only volume: %v\n%s", err, p.stderr.String())
			}
			codes[code]++
			if code != http.StatusOK && (code != http.StatusServiceUnavailable || !strings.Contains(string(body), "storage")) {
				t.Fatalf("add-checkpoint on a read-only volume: %d %s", code, body)
			}
			if code == http.StatusOK {
				n.believed[o.name]++
			}
			h := sha256.Sum256([]byte(o.name))
			if code, body := getURL(t, c, p.url+"/v1/logs/"+hex.EncodeToString(h[:])+"/checkpoint"); code != http.StatusOK {
				t.Fatalf("read on a read-only volume: %d %s", code, body)
			}
		}
		select {
		case err := <-p.exited:
			t.Fatalf("node exited on a read-only volume: %v\n%s", err, p.stderr.String())
		default:
		}
	}
	if codes[http.StatusServiceUnavailable] == 0 || codes[http.StatusOK] > 2*len(n.origins) {
		t.Fatalf("statuses on a read-only volume: %v", codes)
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		t.Fatal("node did not stop within 30 s of SIGTERM on a read-only volume")
	}
	t.Logf("read-only volume for a minute: %v", codes)
}

func mustStep(t *testing.T, o *origin, old uint64) []byte {
	t.Helper()
	l := o.histories[0]
	l.GrowTo(old+1, "d")
	st, err := load.NewStep(l, old, old+1)
	if err != nil {
		t.Fatal(err)
	}
	return st.Body
}

// waitQuiet waits until the files in dir (names and sizes) stay the same
// over two readings 100 ms apart: Badger has finished flushing and
// compacting.
func (n *diskNet) waitQuiet(dir string) {
	n.t.Helper()
	snapshot := func() string {
		entries, err := os.ReadDir(dir)
		if err != nil {
			n.t.Fatal(err)
		}
		var b strings.Builder
		for _, e := range entries {
			if fi, err := e.Info(); err == nil {
				fmt.Fprintf(&b, "%s %d\n", e.Name(), fi.Size())
			}
		}
		return b.String()
	}
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	prev := snapshot()
	for {
		<-tick.C
		cur := snapshot()
		if cur == prev {
			return
		}
		if time.Now().After(deadline) {
			n.t.Fatalf("the data directory did not settle in 10 s:\n%s", cur)
		}
		prev = cur
	}
}

// crashOf returns the start of a Go crash report in a process's stderr,
// else its tail.
func crashOf(stderr string) string {
	for _, m := range []string{"fatal error:", "panic:", "unexpected signal", "SIGBUS"} {
		if i := strings.Index(stderr, m); i >= 0 {
			return stderr[i:min(len(stderr), i+3000)]
		}
	}
	return tail(stderr)
}
