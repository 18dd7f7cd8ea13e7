package store

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// Errors of a store that cannot write, distinguishable with errors.Is. Reads
// go on; writes are refused until the condition clears, without a restart.
var (
	// ErrDiskPressure means free space on the data volume is below the
	// low watermark.
	ErrDiskPressure = errors.New("disk pressure")
	// ErrDiskFault means a write or sync to the data volume failed
	// (read-only filesystem, I/O error, no space): writes wait for a
	// probe write to succeed.
	ErrDiskFault = errors.New("disk fault")
)

// Disk watermarks and reserve. Badger maps each memtable's write-ahead log
// (*.mem, sized at twice the 1 MB memtable) as a sparse file, and builds
// each table (a flushed memtable, a compaction's 1 MB base tables) in a
// mapped file too: when the filesystem has no block for a page it touches,
// the process dies of SIGBUS, with no error to handle. So the store must
// stop writing before Badger can run out of space, not after: below the
// low watermark it refuses writes itself. The low watermark covers what
// Badger may still write once the store stops: the current and the next
// memtable log (2 × 2 MB), the flush of a full memtable (≈ 1 MB) and a
// level-0 compaction rewriting its tables (a few MB). The value log (64 MB
// files, mapped sparse) is written only for evidence over the 150 KB value
// threshold; every other record stays in the LSM tree. Writes resume above
// the high watermark, so a volume hovering at the threshold does not flap.
//
// Free space is read with statfs by a monitor every monitorInterval, and
// by the committer at most every diskCheckInterval, or at every batch once
// it is within twice the high watermark, so a volume filling fast is
// noticed before the batch that would fill it. Another
// process can still fill the volume between two readings, faster than the
// store can react; the ballast is for that: a file of reserved blocks
// (fallocate) that the store deletes as soon as it sees pressure or a
// failed write, giving Badger's flush and compactions that much room to
// finish; it is re-created once free space is back above the high
// watermark. Free space counts the ballast as free, since it is. What this
// cannot stop is a process filling the volume to its last block faster than
// the monitor reads it while Badger flushes or compacts: the mapped table
// being built then faults. (Memtable logs are reserved as they appear,
// walreserve.go.) Keep the data directory off volumes that others fill.
const (
	DefaultLowWatermark  = 16 << 20
	DefaultHighWatermark = 24 << 20
	DefaultBallast       = 8 << 20
	diskCheckInterval    = 250 * time.Millisecond
	ballastName          = "BALLAST"
	probeName            = "WRITE-PROBE"
)

// Degraded reasons, as metric labels.
const (
	reasonDiskPressure = "disk_pressure"
	reasonDiskFault    = "disk_fault"
)

// diskGuard decides whether the committer may hand writes to Badger.
type diskGuard struct {
	dir       string
	free      func(string) (uint64, error)
	low, high uint64
	ballast   int64
	log       *slog.Logger
	metrics   *Metrics

	// Under mu (the committer and the monitor).
	checked   time.Time
	lastFree  uint64
	held      bool // the ballast file exists
	probed    time.Time
	faultErr  error
	refusedAt time.Time // last refusal logged

	// state is the current refusal (nil when writes are accepted), read by
	// Degraded from any goroutine.
	state atomic.Pointer[degradedState]
	// faults carries write errors Badger reports from its own goroutines
	// (badgerLogger) to the committer.
	mu     sync.Mutex
	fmu    sync.Mutex // guards faults only: Badger may log during a probe
	faults error
}

type degradedState struct {
	reason string // reasonDiskPressure or reasonDiskFault
	err    error  // wraps ErrDiskPressure or ErrDiskFault
}

func newDiskGuard(dir string, opts Options, lg *slog.Logger, m *Metrics) *diskGuard {
	g := &diskGuard{dir: dir, free: opts.FreeSpace, low: opts.LowWatermark, high: opts.HighWatermark, ballast: opts.Ballast, log: lg, metrics: m}
	if g.free == nil {
		g.free = freeSpace
	}
	if g.low == 0 {
		g.low = DefaultLowWatermark
	}
	if g.high < g.low {
		g.high = max(g.low, DefaultHighWatermark)
		if opts.LowWatermark != 0 {
			g.high = g.low + g.low/2
		}
	}
	switch {
	case g.ballast == 0:
		g.ballast = DefaultBallast
	case g.ballast < 0:
		g.ballast = 0
	}
	return g
}

func mb(n uint64) string { return fmt.Sprintf("%.1f MB", float64(n)/(1<<20)) }

// effectiveFree is statfs's free space plus the ballast the store holds.
func (g *diskGuard) effectiveFree() (uint64, error) {
	free, err := g.free(g.dir)
	if err != nil {
		return 0, err
	}
	if fi, err := os.Stat(filepath.Join(g.dir, ballastName)); err == nil {
		g.held = true
		free += uint64(fi.Size())
	} else {
		g.held = false
	}
	return free, nil
}

// checkOpen refuses to open a store on a volume below the low watermark.
func (g *diskGuard) checkOpen() error {
	free, err := g.effectiveFree()
	// A new store: Badger creates dir on the volume of its nearest
	// existing ancestor.
	for p := g.dir; errors.Is(err, os.ErrNotExist) && filepath.Dir(p) != p; {
		p = filepath.Dir(p)
		free, err = g.free(p)
	}
	if err != nil {
		return fmt.Errorf("reading free space of %s: %w", g.dir, err)
	}
	g.metrics.freeBytes.Set(float64(free))
	if free < g.low {
		counted := ""
		if g.held {
			counted = " (the store's ballast file counted)"
		}
		return fmt.Errorf("%w: %s free on the volume of %s%s, below the low watermark of %s; free some space (or lower store.low_watermark_mb in vigil.yaml)",
			ErrDiskPressure, mb(free), g.dir, counted, mb(g.low))
	}
	return nil
}

// ensureBallast creates the ballast file if it is missing and there is
// room for it. Committer (or Open) only.
func (g *diskGuard) ensureBallast(free uint64) {
	// The ballast must leave the volume above the low watermark without
	// counting it, or it would itself be the pressure it guards against.
	if g.ballast == 0 || g.held || free < g.low+uint64(g.ballast) {
		return
	}
	p := filepath.Join(g.dir, ballastName)
	if err := allocateFile(p, g.ballast); err != nil {
		os.Remove(p)
		g.log.Warn("cannot reserve disk ballast", "file", p, "err", err)
		return
	}
	g.held = true
}

// releaseBallast deletes the ballast, giving Badger its room.
func (g *diskGuard) releaseBallast() {
	if !g.held {
		return
	}
	p := filepath.Join(g.dir, ballastName)
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		g.log.Error("releasing disk ballast", "file", p, "err", err)
		return
	}
	g.held = false
	g.log.Warn("released disk ballast for the store's own flushes", "file", p, "bytes", g.ballast)
}

// fault records a failed write or sync: writes stop until a probe succeeds.
// Any goroutine.
func (g *diskGuard) fault(err error) {
	g.fmu.Lock()
	if g.faults == nil {
		g.faults = err
	}
	g.fmu.Unlock()
}

// admit returns nil if the committer may write to Badger now, or the
// reason it may not. Committer only.
func (g *diskGuard) admit(now time.Time, probe func() error) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.fmu.Lock()
	ferr := g.faults
	g.faults = nil
	g.fmu.Unlock()
	if ferr != nil && g.faultErr == nil {
		g.faultErr = ferr
		g.releaseBallast()
		g.set(reasonDiskFault, fmt.Errorf("%w: writing to the data volume %s failed (%v); writes resume once a probe write succeeds", ErrDiskFault, g.dir, ferr))
		g.probed = now
	}
	if g.faultErr != nil {
		if now.Sub(g.probed) < diskCheckInterval {
			return g.state.Load().err
		}
		g.probed = now
		if err := probe(); err != nil {
			g.set(reasonDiskFault, fmt.Errorf("%w: writing to the data volume %s failed (%v); writes resume once a probe write succeeds", ErrDiskFault, g.dir, err))
			return g.state.Load().err
		}
		g.log.Warn("probe write succeeded: store writes resume", "dir", g.dir, "after", g.faultErr)
		g.faultErr = nil
		g.set("", nil)
		g.checked = time.Time{}
	}
	cur := g.state.Load()
	g.evaluate(now, now.Sub(g.checked) >= diskCheckInterval || g.lastFree < 2*g.high || cur != nil)
	if s := g.state.Load(); s != nil {
		return s.err
	}
	return nil
}

// evaluate reads free space if refresh (else uses the last reading) and
// enters or leaves disk pressure. Under g.mu.
func (g *diskGuard) evaluate(now time.Time, refresh bool) {
	if refresh {
		free, err := g.effectiveFree()
		if err != nil {
			g.log.Warn("reading free space", "dir", g.dir, "err", err)
		} else {
			g.checked, g.lastFree = now, free
			g.metrics.freeBytes.Set(float64(free))
		}
	}
	cur, free := g.state.Load(), g.lastFree
	switch {
	case cur == nil && free < g.low:
		g.releaseBallast()
		g.set(reasonDiskPressure, fmt.Errorf("%w: %s free on the volume of %s, below the low watermark of %s; writes resume above %s",
			ErrDiskPressure, mb(free), g.dir, mb(g.low), mb(g.high)))
	case cur != nil && cur.reason == reasonDiskPressure && free >= g.high:
		g.log.Warn("free space above the high watermark: store writes resume", "dir", g.dir, "free", mb(free))
		g.set("", nil)
		g.ensureBallast(free)
	}
}

// monitorInterval is how often the monitor reads free space whether or not
// the store writes: Badger flushes and compacts in the background, and
// another process may fill the volume while the store is idle; the sooner
// pressure is seen, the sooner the ballast gives Badger room.
const monitorInterval = 50 * time.Millisecond

// monitor reads free space every monitorInterval until stop is closed.
func (g *diskGuard) monitor(stop <-chan struct{}) {
	t := time.NewTicker(monitorInterval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			g.mu.Lock()
			if g.faultErr == nil {
				g.evaluate(now, true)
			}
			g.mu.Unlock()
		}
	}
}

func (g *diskGuard) set(reason string, err error) {
	old := g.state.Load()
	if old != nil {
		g.metrics.degraded.WithLabelValues(old.reason).Set(0)
	}
	if err == nil {
		g.state.Store(nil)
		return
	}
	if old == nil || old.reason != reason {
		g.log.Error("store refuses writes", "reason", reason, "err", err)
	}
	g.metrics.degraded.WithLabelValues(reason).Set(1)
	g.state.Store(&degradedState{reason: reason, err: err})
}

// refused counts a refused write and logs it at most once per second.
func (g *diskGuard) refused(now time.Time, op string, err error) {
	g.metrics.refused.WithLabelValues(op).Inc()
	g.mu.Lock()
	defer g.mu.Unlock()
	if now.Sub(g.refusedAt) >= time.Second {
		g.refusedAt = now
		g.log.Warn("store write refused", "op", op, "err", err)
	}
}

// probeWrite writes and syncs a small file in the data directory, then
// reads from Badger: a store whose write failed may have lost its current
// memtable, and Badger then fails every access (a panic, recovered by
// view); such a store stays refused until restarted.
func (d *DB) probeWrite() error {
	p := filepath.Join(d.disk.dir, probeName)
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(make([]byte, 4096))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	os.Remove(p)
	if err != nil {
		return err
	}
	err = d.view("probe", func(txn *badger.Txn) error {
		_, err := get(txn, []byte("probe/"))
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("the store cannot be read after a failed write, restart the node: %w", err)
	}
	return nil
}

// Degraded reports why the store refuses writes, if it does: disk pressure
// or a disk fault. Rolled-back logs are reported by RolledBack.
func (d *DB) Degraded() (reason string, err error) {
	if d.disk == nil {
		return "", nil
	}
	if s := d.disk.state.Load(); s != nil {
		return s.reason, s.err
	}
	return "", nil
}

// faultCloseTimeout bounds Close on a volume that failed a write: Badger's
// Close waits for its memtable flush, which retries for ever on a volume
// that cannot be written, and a node must still be able to stop.
const faultCloseTimeout = 5 * time.Second

// closeBadger closes Badger, giving up after faultCloseTimeout if the
// store is degraded by a disk fault (its files stay as the failure left
// them; the journal tells the next Open what was acknowledged).
func (d *DB) closeBadger() error {
	reason, _ := d.Degraded()
	if reason != reasonDiskFault {
		return d.db.Close()
	}
	done := make(chan error, 1)
	go func() { done <- d.db.Close() }()
	select {
	case err := <-done:
		return err
	case <-time.After(faultCloseTimeout):
		return fmt.Errorf("%w: badger did not close within %v on a failing volume", ErrDiskFault, faultCloseTimeout)
	}
}
