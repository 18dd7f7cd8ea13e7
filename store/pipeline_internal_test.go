package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// gatedSyncs does the real syncs, except that once armed its next sync of
// the armed kind (Badger's or the journal's) signals entered, waits for
// release and then fails with fail (or, if fail is nil, syncs). It records
// the memtable logs it is asked to sync.
type gatedSyncs struct {
	real diskSyncs

	mu      sync.Mutex
	armed   string // "db", "journal" or ""
	fail    error
	entered chan struct{}
	release chan struct{}
	logs    []string
}

func gate(t *testing.T, d *DB) *gatedSyncs {
	t.Helper()
	g := &gatedSyncs{real: diskSyncs{d.db}}
	// Set before the first update: the syncer and the journal writer
	// read it after receiving that update's batch.
	d.syncs.ops = g
	return g
}

// arm makes the next sync of kind wait for release, then fail with fail.
func (g *gatedSyncs) arm(kind string, fail error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.armed, g.fail = kind, fail
	g.entered, g.release = make(chan struct{}), make(chan struct{})
}

// wait holds a sync of kind if armed for it, and returns its injected
// failure.
func (g *gatedSyncs) wait(kind string) error {
	g.mu.Lock()
	armed, fail, entered, release := g.armed == kind, g.fail, g.entered, g.release
	if armed {
		g.armed = ""
	}
	g.mu.Unlock()
	if !armed {
		return nil
	}
	close(entered)
	<-release
	return fail
}

func (g *gatedSyncs) syncDB() error {
	if err := g.wait("db"); err != nil {
		return err
	}
	return g.real.syncDB()
}

func (g *gatedSyncs) syncJournal(j *journal) error {
	if err := g.wait("journal"); err != nil {
		return err
	}
	return g.real.syncJournal(j)
}

func (g *gatedSyncs) syncLog(path string) error {
	g.mu.Lock()
	g.logs = append(g.logs, filepath.Base(path))
	g.mu.Unlock()
	return g.real.syncLog(path)
}

func (g *gatedSyncs) synced() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.logs)
}

func bumpState(old WitnessState, _ bool) (WitnessState, error) {
	return WitnessState{Size: old.Size + 1, Root: [32]byte{byte(old.Size + 1)}, Checkpoint: fmt.Appendf(nil, "checkpoint %d\n", old.Size+1)}, nil
}

// waitUntil polls cond every few milliseconds until it holds, or fails
// the test after 20 s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		<-tick.C
	}
}

// badgerSize reads origin's witness state straight from Badger, where a
// committed transaction is visible before it is synced.
func badgerSize(t *testing.T, d *DB, origin string) uint64 {
	t.Helper()
	var size uint64
	err := d.db.View(func(txn *badger.Txn) error {
		v, err := get(txn, witnessKey(origin))
		if err != nil {
			return err
		}
		st, err := decodeWitnessState(v)
		size = st.Size
		return err
	})
	if err != nil && !errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}
	return size
}

// TestSyncFailureBetweenPipelinedBatches: batch N's sync fails while batch
// N+1 (the same log's next state, computed from N's) and N+2 (evidence)
// are committed behind it. Every one of their callers gets ErrDiskFault,
// the cache forgets their states, the next write is refused, the journal
// never records them, and the reopened store shows no rolled-back state.
func TestSyncFailureBetweenPipelinedBatches(t *testing.T) {
	dir := t.TempDir()
	d, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	g := gate(t, d)
	ctx := context.Background()
	if err := d.UpdateWitnessState(ctx, "a", bumpState); err != nil {
		t.Fatal(err)
	}
	injected := errors.New("injected: fsync: input/output error")
	g.arm("db", injected)
	errs := make(chan error, 3)
	go func() { errs <- d.UpdateWitnessState(ctx, "a", bumpState) }()
	<-g.entered // batch N is committed and its sync has begun
	go func() { errs <- d.UpdateWitnessState(ctx, "a", bumpState) }()
	waitUntil(t, "batch N+1 is committed", func() bool { return badgerSize(t, d, "a") == 3 })
	go func() {
		_, err := d.PutEvidence(ctx, EvidenceRecord{ID: "e1", Kind: "k", Origin: "a", Data: []byte("x")})
		errs <- err
	}()
	waitUntil(t, "batch N+2 is committed", func() bool {
		err := d.db.View(func(txn *badger.Txn) error {
			_, err := get(txn, evidenceKey("e1"))
			return err
		})
		return err == nil
	})
	select {
	case err := <-errs:
		t.Fatalf("an update was answered before its sync: %v", err)
	default:
	}
	close(g.release)
	for range 3 {
		if err := <-errs; !errors.Is(err, ErrDiskFault) || !errors.Is(err, injected) {
			t.Errorf("update of a failed sync returned %v, want ErrDiskFault", err)
		}
	}
	if st, ok := d.witness.get("a"); ok {
		t.Errorf("the cache still holds %+v after the failed sync", st)
	}
	if err := d.UpdateWitnessState(ctx, "a", bumpState); !errors.Is(err, ErrDiskFault) {
		t.Errorf("update after the failed sync returned %v, want ErrDiskFault", err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	j, _, _, err := openJournal(dir)
	if err != nil {
		t.Fatal(err)
	}
	e := j.lookup("a")
	j.close()
	if e == nil || e.size != 1 {
		t.Fatalf("journal of a: %+v, want the acknowledged size 1", e)
	}
	reopenNotRolledBack(t, dir, "a")
}

// TestJournalFailureBetweenPipelinedBatches: the journal's sync for batch
// N fails while batch N+1 is committed (and synced in Badger) behind it:
// both callers get ErrDiskFault, the next write is refused, and the
// reopened store shows no rolled-back state.
func TestJournalFailureBetweenPipelinedBatches(t *testing.T) {
	dir := t.TempDir()
	d, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	g := gate(t, d)
	ctx := context.Background()
	if err := d.UpdateWitnessState(ctx, "a", bumpState); err != nil {
		t.Fatal(err)
	}
	injected := errors.New("injected: fdatasync: input/output error")
	g.arm("journal", injected)
	errs := make(chan error, 2)
	go func() { errs <- d.UpdateWitnessState(ctx, "a", bumpState) }()
	<-g.entered // batch N is synced in Badger, its journal sync has begun
	go func() { errs <- d.UpdateWitnessState(ctx, "a", bumpState) }()
	waitUntil(t, "batch N+1 is committed", func() bool { return badgerSize(t, d, "a") == 3 })
	close(g.release)
	for range 2 {
		if err := <-errs; !errors.Is(err, ErrDiskFault) || !errors.Is(err, injected) {
			t.Errorf("update of a failed journal sync returned %v, want ErrDiskFault", err)
		}
	}
	if st, ok := d.witness.get("a"); ok {
		t.Errorf("the cache still holds %+v after the failed sync", st)
	}
	if err := d.UpdateWitnessState(ctx, "a", bumpState); !errors.Is(err, ErrDiskFault) {
		t.Errorf("update after the failed sync returned %v, want ErrDiskFault", err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	reopenNotRolledBack(t, dir, "a")
}

// TestWitnessStateOnlySynced: while a batch is being synced, readers see
// the states synced before it: the cached one of a log updated before, and
// for a log written for the first time, nothing until the sync (Badger
// shows the state already); afterwards, the new states.
func TestWitnessStateOnlySynced(t *testing.T) {
	d, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	g := gate(t, d)
	ctx := context.Background()
	if err := d.UpdateWitnessState(ctx, "a", bumpState); err != nil {
		t.Fatal(err)
	}
	g.arm("journal", nil)
	errs := make(chan error, 2)
	go func() { errs <- d.UpdateWitnessState(ctx, "a", bumpState) }()
	go func() { errs <- d.UpdateWitnessState(ctx, "fresh", bumpState) }()
	<-g.entered
	waitUntil(t, "both updates are committed", func() bool {
		return badgerSize(t, d, "a") == 2 && badgerSize(t, d, "fresh") == 1
	})
	if st, err := d.WitnessState(ctx, "a"); err != nil || st.Size != 1 {
		t.Errorf("a while its update syncs: %+v, %v; want the synced size 1", st, err)
	}
	// Not yet synced: the read waits, here for a context already done.
	done, cancel := context.WithCancel(ctx)
	cancel()
	if st, err := d.WitnessState(done, "fresh"); !errors.Is(err, context.Canceled) {
		t.Errorf("fresh while its first update syncs: %+v, %v; want to wait", st, err)
	}
	read := make(chan WitnessState, 1)
	go func() {
		st, err := d.WitnessState(ctx, "fresh")
		if err != nil {
			t.Error(err)
		}
		read <- st
	}()
	close(g.release)
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if st := <-read; st.Size != 1 {
		t.Errorf("read of fresh across its sync: %+v", st)
	}
	if st, err := d.WitnessState(ctx, "a"); err != nil || st.Size != 2 {
		t.Errorf("a after the sync: %+v, %v", st, err)
	}
}

// memFids returns the fids of the memtable logs in dir, ascending.
func memFids(t *testing.T, dir string) []int {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var fids []int
	for _, e := range entries {
		if n, ok := strings.CutSuffix(e.Name(), ".mem"); ok {
			if fid, err := strconv.Atoi(n); err == nil {
				fids = append(fids, fid)
			}
		}
	}
	slices.Sort(fids)
	return fids
}

// TestSyncAfterMemtableRotation: batch N is committed to memtable log F;
// before its sync runs, later batches (≈ 5 MB of evidence) make Badger
// rotate past F, so Badger's Sync syncs a newer log. The syncer must sync
// F itself before it answers N.
func TestSyncAfterMemtableRotation(t *testing.T) {
	dir := t.TempDir()
	d, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	g := gate(t, d)
	ctx := context.Background()
	g.arm("db", nil)
	first := make(chan error, 1)
	go func() { first <- d.UpdateWitnessState(ctx, "rotation/first", bumpState) }()
	<-g.entered
	fids := memFids(t, dir)
	f := fids[len(fids)-1]
	if data, err := os.ReadFile(filepath.Join(dir, memName(f))); err != nil || !bytes.Contains(data, []byte("w/rotation/first")) {
		t.Fatalf("batch N is not in the newest memtable log %s (%v)", memName(f), err)
	}
	const puts = 40
	errs := make(chan error, puts)
	for i := range puts {
		go func() {
			_, err := d.PutEvidence(ctx, EvidenceRecord{ID: fmt.Sprint("big", i), Kind: "k", Origin: "o", Data: bytes.Repeat([]byte{byte(i)}, 100<<10)})
			errs <- err
		}()
	}
	waitUntil(t, "Badger rotates past "+memName(f), func() bool {
		fids := memFids(t, dir)
		return fids[len(fids)-1] > f
	})
	select {
	case err := <-first:
		t.Fatalf("batch N answered before its sync: %v", err)
	default:
	}
	close(g.release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(g.synced(), memName(f)) {
		t.Fatalf("batch N's memtable log %s was not synced after the rotation; synced %v", memName(f), g.synced())
	}
	for range puts {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// TestSyncRotated: which memtable logs syncRotated syncs besides Badger's
// Sync, given the logs written and those on disk.
func TestSyncRotated(t *testing.T) {
	cases := []struct {
		name    string
		written memLogs
		onDisk  []int
		want    []int
	}{
		{"nothing written", memLogs{}, []int{3}, nil},
		{"current log only", memLogs{3, 3, true}, []int{3}, nil},
		{"current log rotated since", memLogs{3, 3, true}, []int{3, 4}, []int{3}},
		{"rotated in between", memLogs{3, 4, true}, []int{3, 4}, []int{3}},
		{"rotated in between and since", memLogs{3, 4, true}, []int{3, 4, 5}, []int{3, 4}},
		{"rotated logs already flushed", memLogs{2, 4, true}, []int{4}, []int{2, 3}},
		{"successor flushed and gone", memLogs{3, 3, true}, []int{5}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, fid := range c.onDisk {
				if err := os.WriteFile(filepath.Join(dir, memName(fid)), []byte("log"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			var asked []int
			err := syncRotated(dir, c.written, func(path string) error {
				fid, _ := strconv.Atoi(strings.TrimSuffix(filepath.Base(path), ".mem"))
				asked = append(asked, fid)
				return diskSyncs{}.syncLog(path)
			})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(asked, c.want) {
				t.Fatalf("synced %v, want %v", asked, c.want)
			}
		})
	}
}

// TestCloseDuringSync: Close while a sync is under way and updates are
// queued behind it answers every update and returns.
func TestCloseDuringSync(t *testing.T) {
	d, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	g := gate(t, d)
	ctx := context.Background()
	g.arm("db", nil)
	const n = 20
	errs := make(chan error, n)
	go func() { errs <- d.UpdateWitnessState(ctx, "first", bumpState) }()
	<-g.entered
	for i := 1; i < n; i++ {
		go func() { errs <- d.UpdateWitnessState(ctx, fmt.Sprint("log", i), bumpState) }()
	}
	closed := make(chan error, 1)
	go func() { closed <- d.Close() }()
	<-d.closing
	close(g.release)
	for range n {
		if err := <-errs; err != nil && !errors.Is(err, ErrClosed) {
			t.Errorf("update: %v", err)
		}
	}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
}

// reopenNotRolledBack opens the closed store in dir again and checks that
// it finds no rollback and still holds a witness state of origin.
func reopenNotRolledBack(t *testing.T, dir, origin string) {
	t.Helper()
	d, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if rb := d.RolledBack(); len(rb) != 0 {
		t.Fatalf("rolled back after reopening: %+v", rb)
	}
	if st, err := d.WitnessState(context.Background(), origin); err != nil || st.Size < 1 {
		t.Fatalf("witness state after reopening: %+v, %v", st, err)
	}
}
