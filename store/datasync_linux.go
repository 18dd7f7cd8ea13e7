package store

import (
	"os"
	"syscall"
)

// datasync flushes f's data (and its size, if that changed) without its
// timestamps: the journal is rewritten in place, so this is one device
// flush rather than a filesystem-journal commit per batch.
func datasync(f *os.File) error { return syscall.Fdatasync(int(f.Fd())) }
