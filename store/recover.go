//go:build unix

package store

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// removeEmptyMemtables deletes zero-length memtable logs (*.mem) from a
// Badger directory before it is opened.
//
// Badger creates a memtable's write-ahead log when it opens a store and
// whenever a memtable fills: it creates the file, then sizes, maps and
// stamps it. A process killed between the first two steps (the crash soak
// does this: SIGKILL at any moment, including just after a restart) leaves
// an empty file, which Badger then refuses on every later open ("while
// opening memtables err: while opening fid: N err: Create a new file"):
// the node could never start again. An empty log cannot hold a single
// entry (entries follow a header that is not there), so nothing is lost by
// deleting it, and Badger creates it anew.
//
// It takes Badger's directory lock first, as Badger does (flock of the
// directory): a store that another process has open is left alone
// (Badger's own open then reports the lock), since its newest memtable log
// may be empty only for the moment between those two steps.
func removeEmptyMemtables(dir string, lg *slog.Logger) error {
	d, err := os.Open(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil // a new store
	}
	if err != nil {
		return err
	}
	defer d.Close()
	if err := syscall.Flock(int(d.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return nil // in use: Badger's open says so
	}
	defer syscall.Flock(int(d.Fd()), syscall.LOCK_UN)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".mem") {
			continue
		}
		info, err := e.Info()
		if err != nil {
			return err
		}
		if info.Size() != 0 {
			continue
		}
		p := filepath.Join(dir, e.Name())
		if err := os.Remove(p); err != nil {
			return fmt.Errorf("removing empty memtable log %s: %w", p, err)
		}
		lg.Warn("removed an empty memtable log left by a crash", "file", p)
	}
	return nil
}
