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

// check reserves the memtable logs Badger has created since the last check
// (one, as a transaction is written to a single memtable). Committer only,
// after each commit.
func (w *walReserver) check() error {
	for {
		p := filepath.Join(w.dir, memName(w.next))
		if fi, err := os.Stat(p); err != nil || fi.Size() == 0 {
			return nil // not yet created, or created but not yet sized
		}
		w.next++
		if err := reserveFile(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
}

// current is the fid of Badger's current memtable log as of the last
// check: the log a transaction committed just before that check was
// written to. Badger creates a memtable's log before writing to it, and
// the newest log is the current memtable's, both at Open and after a
// rotation. Committer only.
func (w *walReserver) current() int { return w.next - 1 }

// memLogs is a range of memtable log fids; the zero value is empty.
type memLogs struct {
	lo, hi int
	ok     bool
}

func (m *memLogs) add(fid int) {
	if !m.ok {
		*m = memLogs{fid, fid, true}
		return
	}
	m.lo, m.hi = min(m.lo, fid), max(m.hi, fid)
}

func (m *memLogs) merge(o memLogs) {
	if o.ok {
		m.add(o.lo)
		m.add(o.hi)
	}
}

// syncRotated syncs, with syncLog, the logs of written that Badger's Sync,
// just returned, may have missed: it syncs only the memtable log current
// when it ran. That is every log below written.hi (Badger had rotated past
// it before the last write to written.hi), and written.hi itself if Badger
// has created the next one. A log that is gone (or, for written.hi, whose
// successor is gone) was flushed first to a table Badger synced before
// deleting the log: Badger flushes memtables in order, one at a time, and
// deletes a log only after its flush. Syncer only.
func syncRotated(dir string, written memLogs, syncLog func(path string) error) error {
	if !written.ok {
		return nil
	}
	for fid := written.lo; fid <= written.hi; fid++ {
		if fid == written.hi {
			if _, err := os.Stat(filepath.Join(dir, memName(fid+1))); errors.Is(err, os.ErrNotExist) {
				return nil
			}
		}
		if err := syncLog(filepath.Join(dir, memName(fid))); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}
