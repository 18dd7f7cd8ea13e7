package store_test

import (
	"testing"

	"github.com/vigilnet/vigil/store"
	"github.com/vigilnet/vigil/store/storetest"
)

func TestBadgerGossipConformance(t *testing.T) {
	storetest.RunGossipStoreTests(t, func(t *testing.T, dir string) storetest.GossipStore {
		t.Helper()
		db, err := store.Open(dir, store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return db
	})
}
