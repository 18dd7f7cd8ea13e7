package node_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vigilnet/vigil/feed"
	"github.com/vigilnet/vigil/gossip/evidence"
	"github.com/vigilnet/vigil/node"
	vpb "github.com/vigilnet/vigil/proto"
	"github.com/vigilnet/vigil/scitt"
	"github.com/vigilnet/vigil/store"
	"golang.org/x/mod/sumdb/note"
)

// TestEvidenceRegistered checks evidence.register_to: evidence the node
// stores is registered as a signed evidence statement in a real
// transparency service, its entry ID is listed in GET /v1/evidence and kept
// in the data directory, and the entry's receipt verifies for the
// statement rebuilt from the evidence file.
func TestEvidenceRegistered(t *testing.T) {
	dir := t.TempDir()
	// The transparency service.
	logSKey, _, err := note.GenerateKey(rand.Reader, "ts.vigil.test/log")
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := note.NewSigner(logSKey)
	rskey, _, _ := scitt.GenerateKey(rand.Reader, "ts.vigil.test")
	receiptKey, _ := scitt.ParsePrivateKey(rskey)
	issuerSKey, _, _ := scitt.GenerateKey(rand.Reader, "node.vigil.test")
	issuer, _ := scitt.ParsePrivateKey(issuerSKey)
	keyFile := filepath.Join(dir, "issuer.key")
	if err := os.WriteFile(keyFile, []byte(issuerSKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	pol, err := scitt.ParsePolicy(fmt.Appendf(nil, "issuers:\n  - name: node.vigil.test\n    keys: [%q]\n    kinds: [evidence]\n", issuer.Public().String()))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	svc, err := scitt.New(ctx, scitt.Config{Dir: filepath.Join(dir, "ts"), LogSigner: signer, ReceiptKey: receiptKey, Policy: pol})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(scitt.NewHandler(svc, scitt.HandlerOptions{}))
	defer func() { ts.Close(); _ = svc.Close(ctx) }()

	var dataDir string
	fn := startFeedNodeWith(t, nil, func(c *node.Config) {
		dataDir = c.DataDir
		c.Evidence = node.EvidenceConfig{RegisterTo: ts.URL, IssuerKey: keyFile, Interval: 50 * time.Millisecond}
	})
	fn.log.AppendN(5, "main")
	fork, _ := fn.log.Fork(5)
	fn.log.AppendN(1, "main")
	fork.AppendN(1, "fork")
	a, _ := fn.log.Checkpoint()
	b, _ := fork.Checkpoint()
	ev := &vpb.Evidence{Kind: vpb.Kind_KIND_LOG_EQUIVOCATION_SAME_SIZE, CheckpointA: a, CheckpointB: b, DetectedUnixMs: 1700000000000}
	finding, err := evidence.Verify(ev, fn.r)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := vpb.MarshalEvidence(ev)
	eid := evidence.ID(ev)
	if _, err := fn.db.PutEvidence(ctx, store.EvidenceRecord{ID: eid, Kind: vpb.KindName(ev.Kind), Origin: fn.log.Origin(), Statement: finding.Statement(), Stored: time.Now(), Data: data}); err != nil {
		t.Fatal(err)
	}

	var entry string
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for deadline := time.Now().Add(20 * time.Second); entry == ""; <-tick.C {
		if time.Now().After(deadline) {
			t.Fatal("evidence not registered in time")
		}
		code, body := fn.get("/v1/evidence")
		var l feed.EvidenceList
		if code != 200 || json.Unmarshal([]byte(body), &l) != nil {
			t.Fatalf("GET /v1/evidence: %d %s", code, body)
		}
		for _, e := range l.Evidence {
			if e.ID == eid {
				entry = e.Entry
			}
		}
	}
	// The statement is the evidence file signed by the node's issuer key
	// (Ed25519 signatures are deterministic), so it can be rebuilt.
	file, _ := evidence.MarshalFile(ev)
	stmt, err := scitt.SignStatement(issuer, "urn:vigil:evidence:"+eid, scitt.KindEvidence, file, scitt.SignOptions{})
	if err != nil {
		t.Fatal(err)
	}
	entryBytes, _ := scitt.EntryFor(stmt)
	if want := hex.EncodeToString(scitt.LeafHash(entryBytes)); entry != want {
		t.Fatalf("entry %s, want %s", entry, want)
	}
	rcpt, err := svc.Receipt(ctx, entry)
	if err != nil {
		t.Fatal(err)
	}
	if err := scitt.VerifyReceipt(stmt, rcpt, receiptKey.Public()); err != nil {
		t.Fatal(err)
	}
	// vigil evidence list --data reads the entry from the data directory.
	entries, err := node.ReadEvidenceEntries(dataDir)
	if err != nil || entries[eid] != entry {
		t.Fatalf("entries file: %v %v", entries, err)
	}
}
