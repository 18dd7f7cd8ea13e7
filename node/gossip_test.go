package node_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/vigilnet/vigil/node"
	"github.com/vigilnet/vigil/store"
	"github.com/vigilnet/vigil/testnet/scriptlog"
	"github.com/vigilnet/vigil/tlog"
	"github.com/vigilnet/vigil/witness"
)

// TestNodeGossip: a witness node follows a log by pull and cosigns; an
// observer node bootstrapped to it receives the cosigned checkpoint by
// gossip, and never cosigns itself.
func TestNodeGossip(t *testing.T) {
	dir := t.TempDir()
	l, err := scriptlog.New("example.com/gossiped")
	if err != nil {
		t.Fatal(err)
	}
	l.AppendN(300, "e")
	srv := httptest.NewServer(l.Handler())
	defer srv.Close()
	skey, vkey, _ := tlog.GenerateCosignerKey(rand.Reader, "w1.example")
	signer, _ := tlog.NewCosignatureSigner(skey, nil)
	rosterPath := filepath.Join(dir, "roster")
	os.WriteFile(rosterPath, fmt.Appendf(nil, "log %s %s\nwitness w1 %s\n", l.VerifierKey(), srv.URL, vkey), 0o644)

	start := func(name string, keys *node.Keys, gc node.GossipConfig) (*node.Node, *store.DB) {
		t.Helper()
		db, err := store.Open(filepath.Join(dir, name), store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		cfg := node.DefaultConfig()
		cfg.Listen, cfg.DataDir, cfg.Roster, cfg.Observer = ln.Addr().String(), filepath.Join(dir, name), rosterPath, keys.Cosigner == nil
		gc.FollowInterval = 20 * time.Millisecond
		cfg.Gossip = gc
		n, err := node.New(cfg, node.Deps{Listener: ln, Store: db, Keys: keys})
		if err != nil {
			t.Fatal(err)
		}
		runNode(t, name, n, db)
		return n, db
	}
	p2p := func() crypto.PrivKey {
		k, _, _ := crypto.GenerateEd25519Key(rand.Reader)
		return k
	}
	wn, _ := start("witness", &node.Keys{Cosigner: signer, P2P: p2p()}, node.GossipConfig{Network: "t"})
	var boot []string
	for _, a := range wn.Gossip().Host().Addrs() {
		boot = append(boot, fmt.Sprintf("%s/p2p/%s", a, wn.Gossip().ID()))
	}
	_, odb := start("observer", &node.Keys{P2P: p2p()}, node.GossipConfig{Network: "t", Bootstrap: boot, Allowlist: true})

	root, _ := l.Root(300)
	ctx := context.Background()
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		rec, err := odb.Checkpoint(ctx, l.Origin(), 300, root)
		if err == nil && rec.Cosigners == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("observer has no cosigned checkpoint: %+v %v", rec, err)
		}
		<-tick.C
	}
	if _, err := odb.WitnessState(ctx, l.Origin()); err == nil {
		t.Fatal("the observer cosigned")
	}

	// The log pushes a fork of the same size to the witness: refused (422),
	// but gossiped, so both nodes hold same-size evidence.
	fork, _ := l.Fork(299)
	fork.AppendN(1, "evil")
	cp, _ := fork.Checkpoint()
	req := &witness.AddCheckpointRequest{OldSize: 300, Checkpoint: cp}
	resp, err := http.Post(wn.URL()+"/add-checkpoint", "text/plain", bytes.NewReader(req.Marshal()))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("push of a fork: %s, want 422", resp.Status)
	}
	for {
		recs, err := odb.ListEvidence(ctx, "", 10)
		if err == nil && len(recs) == 1 && recs[0].Kind == "log-equivocation-same-size" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("observer holds no evidence of the refused fork: %v %v", recs, err)
		}
		<-tick.C
	}
}
