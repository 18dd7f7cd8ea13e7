package store

import (
	"fmt"
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
