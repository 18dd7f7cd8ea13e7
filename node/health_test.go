package node_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigilnet/vigil/store"
)

// TestHealthRolledBack: a node whose store lost acknowledged witness state
// (here: the journal holds size 9, the store 5) refuses to cosign the log
// with a 503 and says why on /healthz; restarted with RecoverFromPeers it
// answers 409 with the acknowledged size and cosigns from there.
func TestHealthRolledBack(t *testing.T) {
	a := newLog(t, "example.com/a")
	cfg, vkey := newConfig(t, rosterOf(a))
	tn := startNode(t, cfg, vkey)
	for _, step := range [][2]uint64{{0, 5}, {5, 9}} {
		code, body := tn.push(a, step[0], step[1])
		requireStatus(t, "push", code, body, 200)
	}
	tn.stop()
	journal := filepath.Join(cfg.DataDir, "WITNESS-JOURNAL")
	acked, err := os.ReadFile(journal)
	if err != nil {
		t.Fatal(err)
	}
	// Roll the store back to size 5, then put back the journal of size 9.
	db, err := store.Open(cfg.DataDir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	root5, err := a.Root(5)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.UpdateWitnessState(context.Background(), a.Origin(), func(store.WitnessState, bool) (store.WitnessState, error) {
		return store.WitnessState{Size: 5, Root: root5}, nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(journal, acked, 0o600); err != nil {
		t.Fatal(err)
	}

	tn = startNode(t, cfg, vkey)
	code, body := tn.get("/healthz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "rolled_back") || !strings.Contains(body, a.Origin()) || !strings.Contains(body, "--recover-from-peers") {
		t.Fatalf("healthz of a rolled-back store: %d %q", code, body)
	}
	code, body = tn.push(a, 5, 12)
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "rolled back") {
		t.Fatalf("push from the rolled-back size: %d %q", code, body)
	}
	tn.stop()

	cfg.RecoverFromPeers = true
	tn = startNode(t, cfg, vkey)
	code, body = tn.get("/healthz")
	requireStatus(t, "healthz after recovery", code, body, 200)
	code, body = tn.push(a, 5, 12)
	if code != http.StatusConflict || strings.TrimSpace(body) != "9" {
		t.Fatalf("push from size 5 after recovery: %d %q, want 409 with 9", code, body)
	}
	code, body = tn.push(a, 9, 12)
	requireStatus(t, "push from the acknowledged size", code, body, 200)
}
