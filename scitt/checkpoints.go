package scitt

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"sync"
)

// checkpointStore keeps every checkpoint the service publishes (each one
// larger than the last), with the cosignatures it was published with, so
// that a witnessed receipt can be served for any entry at any later time,
// not only against the latest checkpoint.
//
// The file is a sequence of records, each a 4-byte big-endian length and a
// signed note. Records are appended without fsync: a checkpoint lost to a
// crash only means a later one is used for the entries it covered. A torn
// last record is cut off when the file is opened. Memory: 20 bytes per
// checkpoint, one per published size.
type checkpointStore struct {
	origin string

	mu   sync.RWMutex
	f    *os.File
	end  int64
	refs []cpRef // ascending size
	last []byte  // the last checkpoint seen, to skip re-reads cheaply
}

type cpRef struct {
	size uint64
	off  int64 // of the note, after its length
	n    uint32
}

// maxStoredCheckpoint bounds one record: a note with dozens of
// post-quantum cosignature lines fits.
const maxStoredCheckpoint = 1 << 20

// openCheckpointStore opens (or creates) the store at path for origin.
func openCheckpointStore(path, origin string) (*checkpointStore, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening checkpoint store: %w", err)
	}
	s := &checkpointStore{origin: origin, f: f}
	if err := s.load(); err != nil {
		f.Close()
		return nil, err
	}
	return s, nil
}

// load indexes the records and cuts off a torn or unreadable tail.
func (s *checkpointStore) load() error {
	b, err := io.ReadAll(s.f)
	if err != nil {
		return fmt.Errorf("reading checkpoint store: %w", err)
	}
	var off int64
	for int64(len(b))-off >= 4 {
		n := binary.BigEndian.Uint32(b[off:])
		if n == 0 || n > maxStoredCheckpoint || int64(len(b))-off-4 < int64(n) {
			break
		}
		cp := b[off+4 : off+4+int64(n)]
		size, _, err := parseCheckpoint(cp, s.origin)
		if err != nil || (len(s.refs) > 0 && size <= s.refs[len(s.refs)-1].size) {
			break
		}
		s.refs = append(s.refs, cpRef{size: size, off: off + 4, n: n})
		off += 4 + int64(n)
	}
	if off != int64(len(b)) {
		if err := s.f.Truncate(off); err != nil {
			return fmt.Errorf("truncating checkpoint store: %w", err)
		}
	}
	s.end = off
	return nil
}

// record appends cp if it is larger than every stored checkpoint.
func (s *checkpointStore) record(cp []byte) error {
	s.mu.RLock()
	same := bytes.Equal(cp, s.last)
	s.mu.RUnlock()
	if same {
		return nil
	}
	size, _, err := parseCheckpoint(cp, s.origin)
	if err != nil {
		return err
	}
	if len(cp) > maxStoredCheckpoint {
		return fmt.Errorf("checkpoint of %d bytes is too large to store", len(cp))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.last = bytes.Clone(cp)
	if len(s.refs) > 0 && size <= s.refs[len(s.refs)-1].size {
		return nil
	}
	rec := make([]byte, 4+len(cp))
	binary.BigEndian.PutUint32(rec, uint32(len(cp)))
	copy(rec[4:], cp)
	if _, err := s.f.WriteAt(rec, s.end); err != nil {
		return fmt.Errorf("writing checkpoint store: %w", err)
	}
	s.refs = append(s.refs, cpRef{size: size, off: s.end + 4, n: uint32(len(cp))})
	s.end += int64(len(rec))
	return nil
}

func (s *checkpointStore) read(r cpRef) ([]byte, error) {
	b := make([]byte, r.n)
	if _, err := s.f.ReadAt(b, r.off); err != nil {
		return nil, fmt.Errorf("reading checkpoint store: %w", err)
	}
	return b, nil
}

// errNoCheckpoint reports that no stored checkpoint meets a request.
var errNoCheckpoint = errors.New("no stored checkpoint")

// first returns the smallest stored checkpoint of size at least size for
// which ok holds (nil ok: any).
func (s *checkpointStore) first(size uint64, ok func([]byte) bool) ([]byte, error) {
	s.mu.RLock()
	refs := s.refs
	s.mu.RUnlock()
	i := sort.Search(len(refs), func(i int) bool { return refs[i].size >= size })
	for ; i < len(refs); i++ {
		cp, err := s.read(refs[i])
		if err != nil {
			return nil, err
		}
		if ok == nil || ok(cp) {
			return cp, nil
		}
	}
	return nil, errNoCheckpoint
}

// latest returns the largest stored checkpoint of size at least size for
// which ok holds.
func (s *checkpointStore) latest(size uint64, ok func([]byte) bool) ([]byte, error) {
	s.mu.RLock()
	refs := s.refs
	s.mu.RUnlock()
	for i := len(refs) - 1; i >= 0 && refs[i].size >= size; i-- {
		cp, err := s.read(refs[i])
		if err != nil {
			return nil, err
		}
		if ok == nil || ok(cp) {
			return cp, nil
		}
	}
	return nil, errNoCheckpoint
}

// count returns how many checkpoints are stored.
func (s *checkpointStore) count() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.refs)
}

func (s *checkpointStore) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.f.Sync(); err != nil {
		s.f.Close()
		return fmt.Errorf("syncing checkpoint store: %w", err)
	}
	return s.f.Close()
}
