package store_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/vigilnet/vigil/store"
)

// newestMem returns the path of the highest-numbered *.mem in dir and the
// length of the data in it (the file is sized ahead; the rest is zero).
func newestMem(t *testing.T, dir string) (string, int) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.mem"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no memtable log in %s (%v)", dir, err)
	}
	sort.Strings(files)
	p := files[len(files)-1]
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return p, len(bytes.TrimRight(data, "\x00"))
}

func logID(origin string) string {
	h := sha256.Sum256([]byte(origin))
	return hex.EncodeToString(h[:])
}

// TestRolledBackWAL: a node killed under load whose newest memtable log is
// then damaged (bytes flipped mid-file, truncated, deleted) loses synced
// witness updates in Badger. The store must say so at Open, refuse to
// update those logs from the rolled-back state, and with RecoverRolledBack
// resume them at the journal's size, never below what was acknowledged.
func TestRolledBackWAL(t *testing.T) {
	damages := []struct {
		name   string
		damage func(t *testing.T, path string, n int)
	}{
		{"flipped", func(t *testing.T, path string, n int) {
			f, err := os.OpenFile(path, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			buf := make([]byte, 64)
			if _, err := f.ReadAt(buf, int64(n/2)); err != nil {
				t.Fatal(err)
			}
			for i := range buf {
				buf[i] ^= 0xa5
			}
			if _, err := f.WriteAt(buf, int64(n/2)); err != nil {
				t.Fatal(err)
			}
		}},
		{"unreadable", func(t *testing.T, path string, _ int) {
			// The first entry's header (after Badger's 20-byte log
			// header) made of continuation bytes: a varint that never
			// ends, which replay cannot take for the end of the log.
			f, err := os.OpenFile(path, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.WriteAt(bytes.Repeat([]byte{0xff}, 16), 20); err != nil {
				t.Fatal(err)
			}
		}},
		{"truncated", func(t *testing.T, path string, n int) {
			if err := os.Truncate(path, int64(n/2)); err != nil {
				t.Fatal(err)
			}
		}},
		{"deleted", func(t *testing.T, path string, _ int) {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tc := range damages {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			acked := killedWriter(t, dir, 1500)
			mem, n := newestMem(t, dir)
			tc.damage(t, mem, n)
			ctx := context.Background()

			var logs strings.Builder
			db, err := store.Open(dir, store.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			// Damage Badger's replay reads as the end of the log rolls
			// state back silently; damage it cannot read past stops
			// Open. Both must name the problem and the fix.
			unreplayable := errors.Is(err, store.ErrDamagedWAL)
			switch {
			case unreplayable:
				if !strings.Contains(err.Error(), filepath.Base(mem)) || !strings.Contains(err.Error(), "--recover-from-peers") {
					t.Fatalf("an unreplayable memtable log: %v", err)
				}
				t.Logf("Badger cannot replay the damaged log: %v", err)
			case err != nil:
				t.Fatalf("reopening: %v", err)
			}
			rolled := map[string]store.RolledBackLog{}
			if !unreplayable {
				checkRolledBack(t, ctx, db, dir, &logs, acked, rolled)
			}

			// Recovery adopts the journal (setting aside a log Badger
			// cannot replay); the next update from its size succeeds, and
			// a plain reopen afterwards is clean.
			db, err = store.Open(dir, store.Options{RecoverRolledBack: true})
			if err != nil {
				t.Fatalf("reopening to recover: %v", err)
			}
			if rb := db.RolledBack(); len(rb) != 0 {
				t.Fatalf("%d logs still refused with RecoverRolledBack", len(rb))
			}
			recovered := map[string]uint64{}
			for origin, size := range acked {
				st, err := db.WitnessState(ctx, origin)
				if err != nil || st.Size < size {
					t.Fatalf("%s after recovery: size %d (%v), acknowledged %d", origin, st.Size, err, size)
				}
				if _, ok := rolled[logID(origin)]; ok || unreplayable {
					if st.Root != childRoot(origin, st.Size) {
						t.Fatalf("%s after recovery: root is not the one cosigned at size %d", origin, st.Size)
					}
					recovered[origin] = st.Size
				}
			}
			// Half the recovered logs are updated now, half only after
			// another reopen without the option.
			i := 0
			for origin, size := range recovered {
				if i++; i%2 == 0 {
					continue
				}
				err := db.UpdateWitnessState(ctx, origin, func(old store.WitnessState, _ bool) (store.WitnessState, error) {
					if old.Size != size {
						t.Errorf("%s: update saw size %d, want %d", origin, old.Size, size)
					}
					return store.WitnessState{Size: size + 1, Root: childRoot(origin, size+1)}, nil
				})
				if err != nil {
					t.Fatalf("%s: update after recovery: %v", origin, err)
				}
				recovered[origin] = size + 1
			}
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			db, err = store.Open(dir, store.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if rb := db.RolledBack(); len(rb) != 0 {
				t.Fatalf("%d logs refused after recovery: %+v", len(rb), rb[0])
			}
			for origin, size := range recovered {
				err := db.UpdateWitnessState(ctx, origin, func(old store.WitnessState, _ bool) (store.WitnessState, error) {
					if old.Size != size {
						t.Errorf("%s: update saw size %d, want %d", origin, old.Size, size)
					}
					return store.WitnessState{Size: size + 1}, nil
				})
				if err != nil {
					t.Fatalf("%s: update after recovery and reopen: %v", origin, err)
				}
			}
		})
	}
}

// checkRolledBack checks what a store reopened over a damaged memtable log
// reports: the rolled-back logs (into rolled), the logged error naming the
// fix, and an update of each refused; then it closes db.
func checkRolledBack(t *testing.T, ctx context.Context, db *store.DB, dir string, logs *strings.Builder, acked map[string]uint64, rolled map[string]store.RolledBackLog) {
	t.Helper()
	for _, rb := range db.RolledBack() {
		rolled[rb.LogID] = rb
	}
	if len(rolled) == 0 {
		t.Fatal("no rolled-back log reported after damaging the newest memtable log")
	}
	if !strings.Contains(logs.String(), "ROLLED BACK") || !strings.Contains(logs.String(), "--recover-from-peers") {
		t.Errorf("Open logged no rollback error naming the fix:\n%s", logs.String())
	}
	for origin, size := range acked {
		rb, isRolled := rolled[logID(origin)]
		st, err := db.WitnessState(ctx, origin)
		if !isRolled {
			// Not reported: then nothing acknowledged was lost.
			if err != nil || st.Size < size {
				t.Fatalf("%s: stored %d (%v) below acknowledged %d, not reported", origin, st.Size, err, size)
			}
			continue
		}
		if rb.JournalSize < size {
			t.Fatalf("%s: journal size %d below acknowledged %d", origin, rb.JournalSize, size)
		}
		err = db.UpdateWitnessState(ctx, origin, func(old store.WitnessState, _ bool) (store.WitnessState, error) {
			return store.WitnessState{Size: old.Size + 1}, nil
		})
		if !errors.Is(err, store.ErrRolledBack) || !strings.Contains(err.Error(), "--recover-from-peers") || !strings.Contains(err.Error(), dir) {
			t.Fatalf("%s: update of a rolled-back log: %v", origin, err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}
