package store_test

import (
	"context"
	"strings"
	"testing"

	"github.com/vigilnet/vigil/store"
)

// TestOutbox: items are listed in key order, replaced, deleted, and kept
// across a reopen.
func TestOutbox(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	list := func(db *store.DB) string {
		t.Helper()
		var out []string
		if err := db.OutboxScan(ctx, func(k string, v []byte) error { out = append(out, k+"="+string(v)); return nil }); err != nil {
			t.Fatal(err)
		}
		return strings.Join(out, " ")
	}
	if err := db.OutboxPut(ctx, map[string][]byte{"b": []byte("2"), "a": []byte("1"), "c": []byte("3")}); err != nil {
		t.Fatal(err)
	}
	if err := db.OutboxPut(ctx, map[string][]byte{"b": []byte("2'")}); err != nil {
		t.Fatal(err)
	}
	if err := db.OutboxDelete(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if err := db.OutboxDelete(ctx, "missing"); err != nil {
		t.Fatalf("deleting a missing key: %v", err)
	}
	if got := list(db); got != "b=2' c=3" {
		t.Fatalf("outbox %q", got)
	}
	if err := db.OutboxPut(ctx, map[string][]byte{"": nil}); err == nil {
		t.Fatal("an empty key was accepted")
	}
	db.Close()
	db, err = store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if got := list(db); got != "b=2' c=3" {
		t.Fatalf("after reopen: outbox %q", got)
	}
}
