package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigilnet/vigil/feed"
	"github.com/vigilnet/vigil/gossip/evidence"
	"github.com/vigilnet/vigil/node"
	vpb "github.com/vigilnet/vigil/proto"
	"github.com/vigilnet/vigil/store"
)

// TestEvidenceListEntry checks the ENTRY column of vigil evidence list:
// the transparency-service entry of registered evidence, from the data
// directory and from the feed, and "-" for evidence not registered.
func TestEvidenceListEntry(t *testing.T) {
	dir := t.TempDir()
	_, _, e := splitViewEvidence(t, dir)
	id := evidence.ID(e)
	entry := strings.Repeat("ab", 32)
	data := filepath.Join(dir, "data")
	db, err := store.Open(data, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := vpb.MarshalEvidence(e)
	if _, err := db.PutEvidence(context.Background(), store.EvidenceRecord{ID: id, Kind: vpb.KindName(e.Kind), Origin: "example.com/cli-log", Statement: "s", Data: raw}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if code, out, errOut := runCLI("evidence", "list", "--data", data); code != 0 || !strings.Contains(out, "ENTRY") || !hasRow(out, id, "-") {
		t.Fatalf("list before registration: exit %d\n%s%s", code, out, errOut)
	}
	line := `{"evidence":"` + id + `","entry":"` + entry + `"}` + "\n"
	if err := os.WriteFile(filepath.Join(data, node.EvidenceEntriesFile), []byte(line), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := runCLI("evidence", "list", "--data", data); code != 0 || !hasRow(out, id, entry) {
		t.Fatalf("list --data: exit %d\n%s%s", code, out, errOut)
	}

	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(feed.EvidenceList{Evidence: []feed.Evidence{{ID: id, Kind: "k", Origin: "o", Summary: "s", Entry: entry}}})
	}))
	defer srv.Close()
	if code, out, errOut := runCLI("evidence", "list", "--feed", srv.URL); code != 0 || !hasRow(out, id, entry) {
		t.Fatalf("list --feed: exit %d\n%s%s", code, out, errOut)
	}
}

// hasRow reports whether a line of out starts with id and has field.
func hasRow(out, id, field string) bool {
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) > 4 && f[0] == id && f[4] == field {
			return true
		}
	}
	return false
}
