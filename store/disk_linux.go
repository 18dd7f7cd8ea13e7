package store

import (
	"os"
	"syscall"
)

// freeSpace returns the bytes an unprivileged writer may still use on the
// volume holding dir.
func freeSpace(dir string) (uint64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, &os.PathError{Op: "statfs", Path: dir, Err: err}
	}
	return st.Bavail * uint64(st.Bsize), nil
}

// allocateFile creates path with size bytes of blocks reserved (not a
// sparse file), synced.
func allocateFile(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if err := syscall.Fallocate(int(f.Fd()), 0, 0, size); err != nil {
		f.Close()
		return &os.PathError{Op: "fallocate", Path: path, Err: err}
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// reserveFile allocates blocks for all of path's current size without
// changing it (FALLOC_FL_KEEP_SIZE), so writes through a mapping of it
// never need a new block.
func reserveFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if fi.Size() == 0 {
		return nil
	}
	const keepSize = 1 // FALLOC_FL_KEEP_SIZE
	if err := syscall.Fallocate(int(f.Fd()), keepSize, 0, fi.Size()); err != nil {
		return &os.PathError{Op: "reserving blocks of", Path: path, Err: err}
	}
	return nil
}
