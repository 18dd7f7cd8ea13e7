package store

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/dgraph-io/badger/v4"
)

// ErrRolledBack means the store holds a log's witness state below what the
// witness acknowledged (its journal record): Badger lost writes it had
// synced. Cosigning from that state could sign a fork of a checkpoint
// already cosigned, so the store refuses to update it (DESIGN invariant 1)
// until the node is restarted with Options.RecoverRolledBack.
var ErrRolledBack = errors.New("witness state rolled back below what was acknowledged")

// RecoverHint is the fix an operator is told about for rolled-back logs.
const RecoverHint = "restart with `vigil node --recover-from-peers` to adopt the journal's sizes"

// RolledBackLog is a log whose witness state in Badger is below (or, at the
// same size, other than) its journal record, or missing from Badger.
type RolledBackLog struct {
	// LogID is the lowercase hex SHA-256 of the origin.
	LogID string `json:"log_id"`
	// Origin is empty when Badger has no state at all for the log (the
	// journal knows logs by their hash only).
	Origin      string `json:"origin,omitempty"`
	StoredSize  uint64 `json:"stored_size"`
	JournalSize uint64 `json:"journal_size"`
	Reason      string `json:"reason"`
}

// rollbacks is what Open found; immutable once Open returns.
type rollbacks struct {
	refused map[[32]byte]RolledBackLog
	// adopted holds, with RecoverRolledBack, the journal's state for logs
	// Badger has no state for, until their first update writes it (the
	// journal knows a log by hash, not by origin, so it cannot be written
	// at Open).
	adopted map[[32]byte]WitnessState
	list    []RolledBackLog
	hint    string
}

// refuse returns an error wrapping ErrRolledBack if origin is refused.
func (r *rollbacks) refuse(origin string) error {
	if len(r.refused) == 0 {
		return nil
	}
	rb, ok := r.refused[logHash(origin)]
	if !ok {
		return nil
	}
	return fmt.Errorf("%w: log %q: %s; %s", ErrRolledBack, origin, rb.Reason, r.hint)
}

// adoptedState returns the journal's state of a log Badger lost.
func (r *rollbacks) adoptedState(origin string) (WitnessState, bool) {
	if len(r.adopted) == 0 {
		return WitnessState{}, false
	}
	st, ok := r.adopted[logHash(origin)]
	return st, ok
}

// RolledBack lists the logs Open found rolled back and refuses to update
// (empty with RecoverRolledBack, which adopts the journal for them).
func (d *DB) RolledBack() []RolledBackLog { return d.rb.list }

// newestMemtable returns the path of the newest memtable log in dir, the
// one a crash leaves half-written, for messages about rolled-back state.
func newestMemtable(dir string) string {
	entries, _ := os.ReadDir(dir)
	best, name := -1, ""
	for _, e := range entries {
		n, ok := strings.CutSuffix(e.Name(), ".mem")
		if !ok {
			continue
		}
		if id, err := strconv.Atoi(n); err == nil && id > best {
			best, name = id, e.Name()
		}
	}
	if name == "" {
		return "(none left)"
	}
	return filepath.Join(dir, name)
}

// checkRollback compares Badger's witness states with the journal, before
// the committer starts. A log below its journal record is refused, or with
// recover set, given the journal's size and root (its note is empty: the
// node fetches it from its peers). A missing journal is rebuilt from Badger.
func (d *DB) checkRollback(dir, wal string, j *journal, existed bool, problems []journalProblem, recover bool) error {
	type stored struct {
		origin string
		st     WitnessState
	}
	states := map[[32]byte]stored{}
	err := d.WitnessStates(context.Background(), func(origin string, st WitnessState) error {
		states[logHash(origin)] = stored{origin, st}
		return nil
	})
	if err != nil {
		return fmt.Errorf("reading witness states: %w", err)
	}
	adoptedBefore, err := d.adoptedStates()
	if err != nil {
		return fmt.Errorf("reading recovered witness states: %w", err)
	}
	d.rb = &rollbacks{hint: fmt.Sprintf("the store in %s lost writes it had synced (newest write-ahead log %s corrupted, truncated or deleted?); %s", dir, wal, RecoverHint)}
	rebuild := map[string]WitnessState{}
	if !existed {
		if len(states) > 0 {
			d.log.Warn("witness journal missing; rebuilding it from the store (an upgrade, or the journal alone was lost)", "file", j.path, "logs", len(states))
		}
		for _, s := range states {
			rebuild[s.origin] = s.st
		}
		return d.writeJournal(j, rebuild)
	}
	lostSlots := 0
	for _, p := range problems {
		if p.lost {
			lostSlots++
		}
		d.log.Error("witness journal damaged", "file", j.path, "slot", p.slot, "problem", p.detail)
	}
	var found []RolledBackLog
	adopt := map[string]WitnessState{}
	for h, s := range states {
		e := j.entries[h]
		switch {
		case e == nil && lostSlots > 0:
			found = append(found, RolledBackLog{LogID: hex.EncodeToString(h[:]), Origin: s.origin, StoredSize: s.st.Size,
				Reason: fmt.Sprintf("its journal record is unreadable (%d damaged slots in %s)", lostSlots, j.path)})
		case e == nil:
			// Synced by Badger, killed before the journal write: the
			// reply was never sent.
			rebuild[s.origin] = s.st
		case s.st.Size < e.size || (s.st.Size == e.size && s.st.Root != e.root):
			found = append(found, RolledBackLog{LogID: hex.EncodeToString(h[:]), Origin: s.origin, StoredSize: s.st.Size, JournalSize: e.size,
				Reason: fmt.Sprintf("stored size %d is below the acknowledged size %d", s.st.Size, e.size)})
			adopt[s.origin] = WitnessState{Size: e.size, Root: e.root}
		}
	}
	for h, e := range j.entries {
		if st, ok := adoptedBefore[h]; ok && st.Size == e.size && st.Root == e.root {
			// Recovered by an earlier open, not yet updated.
			if d.rb.adopted == nil {
				d.rb.adopted = map[[32]byte]WitnessState{}
			}
			d.rb.adopted[h] = st
			continue
		}
		if _, ok := states[h]; !ok {
			found = append(found, RolledBackLog{LogID: hex.EncodeToString(h[:]), JournalSize: e.size,
				Reason: fmt.Sprintf("no stored state, acknowledged size %d", e.size)})
		}
	}
	sort.Slice(found, func(a, b int) bool { return found[a].LogID < found[b].LogID })
	if !recover {
		if len(found) > 0 {
			d.rb.refused = map[[32]byte]RolledBackLog{}
			for _, rb := range found {
				var h [32]byte
				hex.Decode(h[:], []byte(rb.LogID))
				d.rb.refused[h] = rb
			}
			d.rb.list = found
			d.log.Error("WITNESS STATE ROLLED BACK: refusing to cosign these logs from the rolled-back state; "+d.rb.hint,
				"logs", len(found), "rolled_back", found)
		}
		return d.writeJournal(j, rebuild)
	}
	// Recovery: adopt the journal where it has a record; keep the store's
	// state where the journal record is unreadable. A log Badger lost
	// entirely is known by its hash only: its adopted state is kept under
	// that hash until its first update writes it under its origin.
	if d.rb.adopted == nil {
		d.rb.adopted = map[[32]byte]WitnessState{}
	}
	byHash := map[[32]byte]WitnessState{}
	for _, rb := range found {
		var h [32]byte
		hex.Decode(h[:], []byte(rb.LogID))
		e := j.entries[h]
		switch {
		case e == nil:
			rebuild[rb.Origin] = states[h].st
		case rb.Origin == "":
			d.rb.adopted[h] = WitnessState{Size: e.size, Root: e.root}
			byHash[h] = d.rb.adopted[h]
		}
	}
	if len(adopt)+len(byHash) > 0 {
		err := d.db.Update(func(txn *badger.Txn) error {
			for origin, st := range adopt {
				if err := txn.Set(witnessKey(origin), encodeWitnessState(st)); err != nil {
					return err
				}
			}
			for h, st := range byHash {
				if err := txn.Set(adoptedKey(h), encodeWitnessState(st)); err != nil {
					return err
				}
			}
			return nil
		})
		if err == nil {
			err = d.db.Sync()
		}
		if err != nil {
			return fmt.Errorf("adopting the witness journal: %w", err)
		}
	}
	if len(found) > 0 {
		d.log.Warn("witness state recovered from the journal: these logs resume at their acknowledged size and root, with no stored note until peers supply it",
			"logs", len(found), "recovered", found)
	}
	return d.writeJournal(j, rebuild)
}

func (d *DB) writeJournal(j *journal, states map[string]WitnessState) error {
	if len(states) == 0 {
		return nil
	}
	if err := j.put(states); err != nil {
		return err
	}
	return j.sync()
}

// adoptedPrefix keys the journal states adopted for logs Badger lost
// entirely, by the log's hash, until their first update.
const adoptedPrefix = "wj/"

func adoptedKey(h [32]byte) []byte { return append([]byte(adoptedPrefix), h[:]...) }

func (d *DB) adoptedStates() (map[[32]byte]WitnessState, error) {
	out := map[[32]byte]WitnessState{}
	err := d.view("witness_adopted", func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(adoptedPrefix), PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			k := it.Item().Key()[len(adoptedPrefix):]
			if len(k) != 32 {
				continue
			}
			v, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			st, err := decodeWitnessState(v)
			if err != nil {
				return err
			}
			out[[32]byte(k)] = st
		}
		return nil
	})
	return out, err
}
