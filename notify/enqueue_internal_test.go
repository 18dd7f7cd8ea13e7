package notify

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/vigilnet/vigil/store"
)

// TestEnqueueWhileStopping: what the core decided just as the node stops
// (its context canceled) is still written, so a missing witness's debounce
// survives the restart that follows.
func TestEnqueueWhileStopping(t *testing.T) {
	db, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	n, err := New(Config{Webhooks: []Webhook{{URL: "http://127.0.0.1:1/hook", Secret: strings.Repeat("s", 16)}}}, db, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	since := time.Unix(1_700_000_000, 0).UTC()
	n.enqueue(ctx, nil, map[string]WitnessDebounce{"w2": {Since: since}}, nil)
	found := false
	if err := db.OutboxScan(context.Background(), func(key string, v []byte) error {
		found = found || key == witnessKeyPrefix+"w2"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !found {
		t.Fatal("the missing witness's state decided while stopping was not written")
	}
}
