package store_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sync/errgroup"

	"github.com/vigilnet/vigil/store"
)

// TestCorruptTable: bytes flipped in the middle of a table (*.sst) make
// Open fail with an error naming the file, never a panic.
func TestCorruptTable(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	db, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var g errgroup.Group
	for w := range 32 {
		g.Go(func() error {
			for i := w; i < 2000; i += 32 {
				origin := fmt.Sprintf("example.com/log%04d", i)
				err := db.UpdateWitnessState(ctx, origin, func(store.WitnessState, bool) (store.WitnessState, error) {
					return store.WitnessState{Size: uint64(i + 1), Checkpoint: make([]byte, 200)}, nil
				})
				if err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil { // flushes the memtable to a table
		t.Fatal(err)
	}
	tables, _ := filepath.Glob(filepath.Join(dir, "*.sst"))
	if len(tables) == 0 {
		t.Fatal("no table written")
	}
	sst := tables[len(tables)-1]
	data, err := os.ReadFile(sst)
	if err != nil {
		t.Fatal(err)
	}
	for i := len(data) / 2; i < len(data)/2+32; i++ {
		data[i] ^= 0xff
	}
	if err := os.WriteFile(sst, data, 0o644); err != nil {
		t.Fatal(err)
	}
	db, err = store.Open(dir, store.Options{})
	if err == nil {
		db.Close()
		t.Fatal("a corrupted table opened without an error")
	}
	if !errors.Is(err, store.ErrCorrupt) || !strings.Contains(err.Error(), filepath.Base(sst)) {
		t.Fatalf("opening with a corrupted table: %v; want ErrCorrupt naming %s", err, filepath.Base(sst))
	}
	t.Log(err)
}
