//go:build !linux

package store

import (
	"math"
	"os"
)

// freeSpace is unknown here: the watermarks never trigger, and write
// errors alone degrade the store.
func freeSpace(string) (uint64, error) { return math.MaxUint64 / 2, nil }

// allocateFile writes size zero bytes to path, synced.
func allocateFile(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	buf := make([]byte, 1<<20)
	for n := int64(0); n < size; n += int64(len(buf)) {
		if _, err := f.Write(buf[:min(int64(len(buf)), size-n)]); err != nil {
			f.Close()
			return err
		}
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// reserveFile does nothing where fallocate is not available.
func reserveFile(string) error { return nil }
