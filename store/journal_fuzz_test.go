package store

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzOpenJournal: whatever bytes the journal file holds, opening it
// returns entries or an error, never panics; every entry it returns
// survives a rewrite and a reopen unchanged.
func FuzzOpenJournal(f *testing.F) {
	dir := f.TempDir()
	j, err := createJournal(filepath.Join(dir, journalName))
	if err != nil {
		f.Fatal(err)
	}
	if err := j.put(map[string]WitnessState{"a": {Size: 1}, "b": {Size: 7, Root: [32]byte{7}}}); err != nil {
		f.Fatal(err)
	}
	if err := j.put(map[string]WitnessState{"a": {Size: 2, Root: [32]byte{2}}}); err != nil {
		f.Fatal(err)
	}
	j.close()
	seed, err := os.ReadFile(filepath.Join(dir, journalName))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add([]byte(journalMagic))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, journalName), data, 0o600); err != nil {
			t.Fatal(err)
		}
		j, existed, _, err := openJournal(dir)
		if err != nil {
			return
		}
		if !existed {
			t.Fatal("an existing journal reported missing")
		}
		want := map[[32]byte]journalEntry{}
		for h, e := range j.entries {
			want[h] = *e
			// Rewrite each entry in place (the half not in use).
			off := int64(journalSlot*(e.slot+1) + journalRecord*e.next)
			if _, err := j.f.WriteAt(j.encode(e, e.seq+1), off); err != nil {
				t.Fatal(err)
			}
		}
		j.close()
		j, _, _, err = openJournal(dir)
		if err != nil {
			t.Fatalf("reopening a rewritten journal: %v", err)
		}
		defer j.close()
		for h, w := range want {
			e := j.entries[h]
			if e == nil || e.size != w.size || e.root != w.root || e.seq != w.seq+1 {
				t.Fatalf("entry %x: %+v after rewrite, want %+v (seq+1)", h[:4], e, w)
			}
		}
	})
}
