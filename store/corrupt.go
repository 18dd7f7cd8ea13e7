package store

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"strings"

	"github.com/dgraph-io/badger/v4"
)

// openBadger opens Badger, turning a panic while it reads its files (a
// table or manifest whose bytes were damaged) into an error: a damaged data
// directory is named, never a crash. Tables are also checksummed as they
// open (Options.WithChecksumVerificationMode in Open), so Badger names the
// damaged file itself.
func openBadger(bo badger.Options) (db *badger.DB, err error) {
	defer func() {
		if p := recover(); p != nil {
			db, err = nil, fmt.Errorf("%w: badger panicked reading %s: %v", ErrCorrupt, bo.Dir, p)
		}
	}()
	db, err = badger.Open(bo)
	if err != nil && isCorruption(err.Error()) {
		err = fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return db, err
}

// ErrDamagedWAL means Badger cannot replay a memtable log (*.mem): its
// bytes were damaged in a way its replay does not take for the end of the
// log. The error names the file and the fix.
var ErrDamagedWAL = errors.New("damaged memtable log")

// walInError finds the memtable log a Badger open error names.
var walInError = regexp.MustCompile(`(\S+\.mem)\b`)

// damagedWAL returns the memtable log that Badger's open error err says it
// could not replay, if it says so.
func damagedWAL(err error) (string, bool) {
	msg := err.Error()
	if !strings.Contains(msg, "while opening memtables") {
		return "", false
	}
	m := walInError.FindStringSubmatch(msg)
	if m == nil {
		return "", false
	}
	return m[1], true
}

// openBadgerWAL is openBadger that turns a memtable log Badger cannot
// replay into ErrDamagedWAL naming it and the fix; with setAside (vigil
// node --recover-from-peers) it renames the file to *.damaged and opens
// again. Its entries are lost either way; the witness journal (rollback.go)
// then finds the logs whose acknowledged state went with them.
func openBadgerWAL(bo badger.Options, setAside bool, lg *slog.Logger) (*badger.DB, error) {
	db, err := openBadger(bo)
	if err == nil {
		return db, nil
	}
	wal, ok := damagedWAL(err)
	if !ok {
		return nil, err
	}
	if !setAside {
		return nil, fmt.Errorf("%w: %s cannot be replayed (%v); its entries may include acknowledged cosignatures: run `vigil node --recover-from-peers` to set it aside and restore the witness state from the witness journal and from peers", ErrDamagedWAL, wal, err)
	}
	aside := wal + ".damaged"
	if rerr := os.Rename(wal, aside); rerr != nil {
		return nil, fmt.Errorf("%w: setting aside %s: %v (opening: %v)", ErrDamagedWAL, wal, rerr, err)
	}
	lg.Error("set aside a memtable log Badger cannot replay; the witness journal restores what it acknowledged", "file", wal, "now", aside, "err", err)
	return openBadger(bo)
}

func isCorruption(msg string) bool {
	msg = strings.ToLower(msg)
	return strings.Contains(msg, "checksum") || strings.Contains(msg, "corrupt")
}

// isDiskFailure reports whether a Badger error message says the volume
// cannot be written.
func isDiskFailure(msg string) bool {
	msg = strings.ToLower(msg)
	for _, s := range []string{"no space left", "read-only file system", "input/output error", "disk quota exceeded"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}
