package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
)

// The witness journal is a record, independent of Badger, of the size and
// root each log's witness state had when its batch was acknowledged. The
// journal writer writes it after Badger's sync and syncs it before any
// reply of the batch (journal_writer.go), so Badger's state of a log is never below its journal record
// unless Badger lost a write it had synced: a corrupted, truncated or
// deleted memtable log (*.mem), which Badger replays only up to the first
// bad entry, silently. Open compares the two (rollback.go).
//
// Layout: fixed-size slots written in place, one per log, chosen over an
// append log compacted by rename because a cosignature then costs one
// 128-byte pwrite and one fdatasync of a file whose size does not change
// (no metadata to sync, no compaction pause in the journal writer), and the file
// stays at 256 bytes per log. Each slot holds two records written
// alternately, each with its own CRC-32C and a sequence number: a write torn
// by a crash damages only the record being written, while the other still
// holds the previous acknowledged state. A slot with no valid record is
// reported, never ignored.
//
//	header (256 bytes): journalMagic, zero padding
//	slot i at 256·(i+1): record A (128 bytes), record B (128 bytes)
//	record: 'W' 1 0... (8) | SHA-256 of the origin (32) | size (8) |
//	        sequence (8) | root (32) | zero padding | CRC-32C of bytes 0..123 (4)
//
// The log is named by the SHA-256 of its origin (its logID), so slots are
// fixed-size whatever the origin's length.
const (
	journalName   = "WITNESS-JOURNAL"
	journalMagic  = "VIGIL-WITNESS-JOURNAL-1\n"
	journalRecord = 128
	journalSlot   = 2 * journalRecord
	journalGrow   = 64 // slots added at a time
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// journalEntry is one log's newest valid journal record.
type journalEntry struct {
	hash [32]byte
	size uint64
	root [32]byte
	seq  uint64
	slot int
	// next is the half (0 or 1) the next write goes to: never the one
	// holding the newest valid record.
	next int
}

// journalProblem is a slot or record that did not decode.
type journalProblem struct {
	slot int
	// lost means no valid record is left in the slot: the log it held is
	// unknown. Otherwise one record is torn and the other was used.
	lost   bool
	detail string
}

type journal struct {
	f        *os.File
	path     string
	entries  map[[32]byte]*journalEntry
	byOrigin map[string]*journalEntry // cache of entries by origin
	slots    int                      // slots in use (the next new slot)
	capacity int                      // slots the file has room for
	free     []int                    // slots that were never written
	rec      [journalRecord]byte
}

func logHash(origin string) [32]byte { return sha256.Sum256([]byte(origin)) }

// openJournal opens the journal in dir, or reports that there is none
// (created false, with an empty journal created).
func openJournal(dir string) (j *journal, existed bool, problems []journalProblem, err error) {
	path := filepath.Join(dir, journalName)
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		j, err := createJournal(path)
		return j, false, nil, err
	case err != nil:
		return nil, true, nil, fmt.Errorf("reading witness journal: %w", err)
	}
	if len(data) < journalSlot || !bytes.HasPrefix(data, []byte(journalMagic)) {
		return nil, true, nil, fmt.Errorf("%w: witness journal %s has no valid header", ErrCorrupt, path)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, true, nil, fmt.Errorf("opening witness journal: %w", err)
	}
	j = &journal{f: f, path: path, entries: map[[32]byte]*journalEntry{}, byOrigin: map[string]*journalEntry{}}
	j.capacity = (len(data) - journalSlot) / journalSlot
	for i := 0; i < j.capacity; i++ {
		off := journalSlot * (i + 1)
		a, aok, aempty := decodeJournalRecord(data[off : off+journalRecord])
		b, bok, bempty := decodeJournalRecord(data[off+journalRecord : off+journalSlot])
		switch {
		case aempty && bempty:
			j.free = append(j.free, i)
			continue
		case aok && bok && a.hash != b.hash:
			problems = append(problems, journalProblem{slot: i, lost: true, detail: "its two records name different logs"})
			continue
		case aok && bok:
			if b.seq > a.seq {
				a, b = b, a
				a.next = 0
			} else {
				a.next = 1
			}
		case aok:
			a.next = 1
			if !bempty {
				problems = append(problems, journalProblem{slot: i, detail: "record B is torn or corrupt; record A used"})
			}
		case bok:
			a, a.next = b, 0
			if !aempty {
				problems = append(problems, journalProblem{slot: i, detail: "record A is torn or corrupt; record B used"})
			}
		default:
			problems = append(problems, journalProblem{slot: i, lost: true, detail: "no record has a valid checksum"})
			continue
		}
		a.slot = i
		e := a
		if old, dup := j.entries[e.hash]; dup {
			problems = append(problems, journalProblem{slot: i, detail: fmt.Sprintf("log also in slot %d", old.slot)})
			if old.seq >= e.seq {
				continue
			}
		}
		j.entries[e.hash] = &e
	}
	j.slots = j.capacity
	return j, true, problems, nil
}

func createJournal(path string) (*journal, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("creating witness journal: %w", err)
	}
	hdr := make([]byte, journalSlot)
	copy(hdr, journalMagic)
	if _, err := f.WriteAt(hdr, 0); err != nil {
		f.Close()
		return nil, fmt.Errorf("creating witness journal: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, fmt.Errorf("creating witness journal: %w", err)
	}
	if err := syncDir(filepath.Dir(path)); err != nil {
		f.Close()
		return nil, fmt.Errorf("creating witness journal: %w", err)
	}
	return &journal{f: f, path: path, entries: map[[32]byte]*journalEntry{}, byOrigin: map[string]*journalEntry{}}, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// decodeJournalRecord decodes one record; empty means all zero (never
// written).
func decodeJournalRecord(b []byte) (e journalEntry, ok, empty bool) {
	if bytes.Count(b, []byte{0}) == len(b) {
		return e, false, true
	}
	if b[0] != 'W' || b[1] != 1 || crc32.Checksum(b[:124], castagnoli) != binary.BigEndian.Uint32(b[124:]) {
		return e, false, false
	}
	copy(e.hash[:], b[8:40])
	e.size = binary.BigEndian.Uint64(b[40:48])
	e.seq = binary.BigEndian.Uint64(b[48:56])
	copy(e.root[:], b[56:88])
	return e, true, false
}

func (j *journal) encode(e *journalEntry, seq uint64) []byte {
	b := j.rec[:]
	clear(b)
	b[0], b[1] = 'W', 1
	copy(b[8:40], e.hash[:])
	binary.BigEndian.PutUint64(b[40:48], e.size)
	binary.BigEndian.PutUint64(b[48:56], seq)
	copy(b[56:88], e.root[:])
	binary.BigEndian.PutUint32(b[124:], crc32.Checksum(b[:124], castagnoli))
	return b
}

// lookup returns origin's entry, or nil.
func (j *journal) lookup(origin string) *journalEntry {
	if e, ok := j.byOrigin[origin]; ok {
		return e
	}
	e := j.entries[logHash(origin)]
	if e != nil {
		j.byOrigin[origin] = e
	}
	return e
}

// put writes the records of states (not yet synced: see sync). An entry's
// in-memory state changes only once its record is written, so a failed
// write is retried into the same half.
func (j *journal) put(states map[string]WitnessState) error {
	for origin, st := range states {
		e := j.lookup(origin)
		if e != nil && e.size == st.Size && e.root == st.Root {
			continue
		}
		if e == nil {
			slot, err := j.newSlot()
			if err != nil {
				return err
			}
			e = &journalEntry{hash: logHash(origin), slot: slot}
		}
		next := *e
		next.size, next.root = st.Size, st.Root
		off := int64(journalSlot*(e.slot+1) + journalRecord*e.next)
		if _, err := j.f.WriteAt(j.encode(&next, e.seq+1), off); err != nil {
			return fmt.Errorf("writing witness journal: %w", err)
		}
		next.seq, next.next = e.seq+1, 1-e.next
		if old := j.entries[next.hash]; old != nil {
			*old = next
		} else {
			p := &next
			j.entries[next.hash] = p
			j.byOrigin[origin] = p
		}
	}
	return nil
}

// newSlot returns an unused slot, growing the file if needed.
func (j *journal) newSlot() (int, error) {
	if n := len(j.free); n > 0 {
		s := j.free[n-1]
		j.free = j.free[:n-1]
		return s, nil
	}
	if j.slots == j.capacity {
		size := int64(journalSlot * (j.capacity + journalGrow + 1))
		if err := j.f.Truncate(size); err != nil {
			return 0, fmt.Errorf("growing witness journal: %w", err)
		}
		j.capacity += journalGrow
	}
	j.slots++
	return j.slots - 1, nil
}

// sync makes the records put so far durable.
func (j *journal) sync() error {
	if err := datasync(j.f); err != nil {
		return fmt.Errorf("syncing witness journal: %w", err)
	}
	return nil
}

func (j *journal) close() error { return j.f.Close() }
