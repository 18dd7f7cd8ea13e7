package store_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/vigilnet/vigil/store"
)

// TestJournalDamage: a journal record that is torn (one of a slot's two)
// is survived with the other; a slot with no valid record names nothing,
// so every log in the store the journal cannot vouch for (here the one
// whose slot it was) is refused until recovered; a
// missing journal is rebuilt from the store.
func TestJournalDamage(t *testing.T) {
	const logs = 4
	setup := func(t *testing.T) (string, []byte) {
		dir := t.TempDir()
		db, err := store.Open(dir, store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		for i := range logs {
			// Two updates each: both records of every slot are written.
			for range 2 {
				if err := db.UpdateWitnessState(context.Background(), fmt.Sprint("log", i), bump); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		j, err := os.ReadFile(filepath.Join(dir, "WITNESS-JOURNAL"))
		if err != nil {
			t.Fatal(err)
		}
		return dir, j
	}
	const slot, record = 256, 128
	for _, tc := range []struct {
		name    string
		damage  func(j []byte) []byte
		refused int
	}{
		{"one record torn", func(j []byte) []byte { j[slot+record+50] ^= 1; return j }, 0},
		{"both records of a slot", func(j []byte) []byte { j[slot+50] ^= 1; j[slot+record+50] ^= 1; return j }, 1},
		{"journal deleted", nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, j := setup(t)
			path := filepath.Join(dir, "WITNESS-JOURNAL")
			if tc.damage == nil {
				if err := os.Remove(path); err != nil {
					t.Fatal(err)
				}
			} else if err := os.WriteFile(path, tc.damage(j), 0o600); err != nil {
				t.Fatal(err)
			}
			db, err := store.Open(dir, store.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if got := len(db.RolledBack()); got != tc.refused {
				t.Fatalf("%d logs refused, want %d: %+v", got, tc.refused, db.RolledBack())
			}
			err = db.UpdateWitnessState(context.Background(), "log0", bump)
			if tc.refused > 0 != errors.Is(err, store.ErrRolledBack) {
				t.Fatalf("update: %v", err)
			}
			db.Close()
			if tc.refused == 0 {
				return
			}
			// Recovery keeps the store's state where the journal has
			// nothing to say, and rewrites the journal.
			db, err = store.Open(dir, store.Options{RecoverRolledBack: true})
			if err != nil {
				t.Fatal(err)
			}
			if err := db.UpdateWitnessState(context.Background(), "log0", func(old store.WitnessState, _ bool) (store.WitnessState, error) {
				if old.Size != 2 {
					t.Errorf("recovered size %d, want 2", old.Size)
				}
				return bump(old, true)
			}); err != nil {
				t.Fatal(err)
			}
			db.Close()
			db, err = store.Open(dir, store.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if rb := db.RolledBack(); len(rb) != 0 {
				t.Fatalf("after recovery: %+v", rb)
			}
		})
	}
}
