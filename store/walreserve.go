package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Badger maps each memtable's write-ahead log (*.mem) as a sparse file, so
// the first write to each of its pages needs a free block, and without one
// the process dies of SIGBUS in the middle of a commit. walReserver gives
// every memtable log its blocks (fallocate, keeping its size) as soon as it
// appears: at Open, and after each commit, when it checks (one stat) for
// the log Badger creates next. Only the batch that made Badger open a new
// memtable writes to unreserved pages, and a volume with no room for the
// reservation is reported as a disk fault (an error) instead.
type walReserver struct {
	dir  string
	next int // fid of the memtable log Badger creates next
}

func memName(fid int) string { return fmt.Sprintf("%05d.mem", fid) }

// newWALReserver reserves the memtable logs in dir and returns the reserver
// of the next ones.
func newWALReserver(dir string) (*walReserver, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	w := &walReserver{dir: dir, next: 1}
	for _, e := range entries {
		n, ok := strings.CutSuffix(e.Name(), ".mem")
		if !ok {
			continue
		}
		fid, err := strconv.Atoi(n)
		if err != nil {
			continue
		}
		w.next = max(w.next, fid+1)
		// Badger, open already, may have flushed and deleted this log
		// since the directory was read.
		if err := reserveFile(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
	}
	return w, nil
}

// check reserves the next memtable log if Badger has created it.
// Committer only.
func (w *walReserver) check() error {
	p := filepath.Join(w.dir, memName(w.next))
	if fi, err := os.Stat(p); err != nil || fi.Size() == 0 {
		return nil // not yet created, or created but not yet sized
	}
	w.next++
	if err := reserveFile(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}
