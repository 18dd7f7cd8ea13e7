package store_test

import (
	"context"
	"errors"
	"testing"

	"github.com/vigilnet/vigil/store"
)

// TestOwnFloor: the floor only rises, another root at its size marks a
// conflict that stays, and a reopened store keeps all of it.
func TestOwnFloor(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	const origin = "example.com/log"
	if _, err := db.OwnFloor(ctx, origin); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("OwnFloor of a new store: %v, want ErrNotFound", err)
	}
	rootA, rootB, rootC := [32]byte{1}, [32]byte{2}, [32]byte{3}
	steps := []struct {
		name         string
		size         uint64
		root         [32]byte
		wantSize     uint64
		wantRoot     [32]byte
		wantConflict bool
	}{
		{"first", 10, rootA, 10, rootA, false},
		{"newer raises", 12, rootA, 12, rootA, false},
		{"older is ignored", 5, rootB, 12, rootA, false},
		{"same is ignored", 12, rootA, 12, rootA, false},
		{"another root at the floor's size is a conflict", 12, rootB, 12, rootA, true},
		{"a newer one raises and the conflict stays", 14, rootC, 14, rootC, true},
	}
	for _, s := range steps {
		f, err := db.RaiseOwnFloor(ctx, origin, s.size, s.root, []byte(s.name))
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if f.Size != s.wantSize || f.Root != s.wantRoot || f.Conflict != s.wantConflict {
			t.Fatalf("%s: floor %d %x conflict %v, want %d %x %v", s.name, f.Size, f.Root[:1], f.Conflict, s.wantSize, s.wantRoot[:1], s.wantConflict)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if db, err = store.Open(dir, store.Options{}); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	f, err := db.OwnFloor(ctx, origin)
	if err != nil {
		t.Fatal(err)
	}
	if f.Size != 14 || f.Root != rootC || string(f.Note) != steps[5].name || !f.Conflict || f.ConflictSize != 12 || f.ConflictRoot != rootB {
		t.Fatalf("reopened floor %+v", f)
	}
	if _, err := db.OwnFloor(ctx, "example.com/other"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("another log: %v, want ErrNotFound", err)
	}
}
