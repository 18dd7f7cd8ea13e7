package store_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigilnet/vigil/store"
)

// mountExt4 makes a size-MB ext4 image, mounts it with errors=remount-ro
// on a temporary directory and returns the mount point and the loop
// device's name; it skips the test when it cannot (not root).
func mountExt4(t *testing.T, size int) (mnt, dev string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("SKIPPED: needs root to mount an ext4 image (CI runs as root)")
	}
	dir := t.TempDir()
	img := filepath.Join(dir, "fs.img")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, int64(size)<<20); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", img).CombinedOutput(); err != nil {
		t.Skipf("SKIPPED: mkfs.ext4: %v: %s", err, out)
	}
	out, err := exec.Command("losetup", "--find", "--show", img).CombinedOutput()
	if err != nil {
		t.Skipf("SKIPPED: losetup: %v: %s", err, out)
	}
	loop := strings.TrimSpace(string(out))
	t.Cleanup(func() { exec.Command("losetup", "-d", loop).Run() })
	mnt = filepath.Join(dir, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-o", "errors=remount-ro", loop, mnt).CombinedOutput(); err != nil {
		t.Skipf("SKIPPED: mount: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", "-l", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount: %v: %s", err, out)
		}
	})
	return mnt, filepath.Base(loop)
}

// TestReadOnlyRemount: the data volume turns read-only under load
// (errors=remount-ro after a filesystem error). Writes must fail with
// ErrDiskFault, never a panic, for as long as it lasts; reads go on; Close
// returns.
func TestReadOnlyRemount(t *testing.T) {
	mnt, dev := mountExt4(t, 40)
	trigger := filepath.Join("/sys/fs/ext4", dev, "trigger_fs_error")
	if _, err := os.Stat(trigger); err != nil {
		t.Skipf("SKIPPED: this kernel cannot trigger an ext4 error (%v)", err)
	}
	dir := filepath.Join(mnt, "data")
	db, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var mu sync.Mutex
	acked := map[string]uint64{}
	var faults, others atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				origin := fmt.Sprintf("log%d", (w*100+i)%64)
				var size uint64
				err := db.UpdateWitnessState(ctx, origin, func(old store.WitnessState, _ bool) (store.WitnessState, error) {
					size = old.Size + 1
					return store.WitnessState{Size: size, Checkpoint: make([]byte, 200)}, nil
				})
				switch {
				case err == nil:
					mu.Lock()
					acked[origin] = max(acked[origin], size)
					mu.Unlock()
				case errors.Is(err, store.ErrDiskFault), errors.Is(err, store.ErrDiskPressure):
					faults.Add(1)
				default:
					if others.Add(1) <= 3 {
						t.Errorf("write on a failing volume: %v", err)
					}
				}
			}
		})
	}
	waitUntil(t, "writes before the error", func() bool { mu.Lock(); defer mu.Unlock(); return len(acked) == 64 })
	if err := os.WriteFile(trigger, []byte("vigil test\n"), 0o200); err != nil {
		t.Fatalf("triggering an ext4 error: %v", err)
	}
	waitUntil(t, "writes refused", func() bool { return faults.Load() > 100 })
	if reason, err := db.Degraded(); reason != "disk_fault" || !errors.Is(err, store.ErrDiskFault) {
		t.Errorf("Degraded() = %q, %v", reason, err)
	}
	// Badger's own goroutines keep failing to flush for a while: the
	// store must stay up (a panic there ends the test binary).
	hold := time.Second
	if os.Getenv("VIGIL_SOAK") == "1" {
		hold = 15 * time.Second
	}
	deadline := time.Now().Add(hold)
	for time.Now().Before(deadline) {
		if _, err := db.WitnessState(ctx, "log1"); err != nil {
			t.Fatalf("read on a read-only volume: %v", err)
		}
		n := faults.Load()
		waitUntil(t, "more refusals", func() bool { return faults.Load() > n })
	}
	close(stop)
	wg.Wait()
	// Close ends even though Badger cannot flush.
	closed := make(chan error, 1)
	go func() { closed <- db.Close() }()
	select {
	case err := <-closed:
		t.Logf("close on a read-only volume: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("Close hangs on a read-only volume")
	}
	mu.Lock()
	t.Logf("%d writes refused, %d acknowledged logs", faults.Load(), len(acked))
	mu.Unlock()
}

// waitUntil polls cond every 5 ms for up to 10 s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}
