package node_test

import (
	"crypto/rand"
	"fmt"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/vigilnet/vigil/feed"
	"github.com/vigilnet/vigil/node"
	"github.com/vigilnet/vigil/store"
	"github.com/vigilnet/vigil/testnet/scriptlog"
	"github.com/vigilnet/vigil/tlog"
)

// TestNodeWitnessTimelineGossip: three real nodes on loopback, with real
// libp2p gossip and Badger stores. Witness nodes w1 and w2 follow a log
// over HTTP and cosign; an observer node sees their cosignatures only by
// gossip. w2's node stops while the log grows (w2 turns late, then missing
// on the observer) and comes back (alive again), as the observer's events,
// /v1/witnesses and metrics say.
func TestNodeWitnessTimelineGossip(t *testing.T) {
	dir := t.TempDir()
	l, err := scriptlog.New("example.com/gossip-witnessed")
	if err != nil {
		t.Fatal(err)
	}
	l.AppendN(10, "a")
	srv := httptest.NewServer(l.Handler())
	defer srv.Close()
	policy := fmt.Sprintf("log %s %s\n", l.VerifierKey(), srv.URL)
	keys := map[string]*node.Keys{}
	for _, name := range []string{"w1", "w2", "observer"} {
		p2p, _, err := crypto.GenerateEd25519Key(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		keys[name] = &node.Keys{P2P: p2p}
		if name == "observer" {
			continue
		}
		skey, vkey, err := tlog.GenerateCosignerKey(rand.Reader, name+".example")
		if err != nil {
			t.Fatal(err)
		}
		if keys[name].Cosigner, err = tlog.NewCosignatureSigner(skey, nil); err != nil {
			t.Fatal(err)
		}
		policy += fmt.Sprintf("witness %s %s\n", name, vkey)
	}
	policy += "group q 1 w1 w2\nquorum q\n"
	rosterPath := filepath.Join(dir, "roster")
	if err := os.WriteFile(rosterPath, []byte(policy), 0o644); err != nil {
		t.Fatal(err)
	}
	interval := 1500 * time.Millisecond // late after 1.5 s behind, missing after 4.5 s

	start := func(name string, boot []string) (*node.Node, func()) {
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
		cfg.Listen, cfg.DataDir, cfg.Roster = ln.Addr().String(), filepath.Join(dir, name), rosterPath
		cfg.Observer = keys[name].Cosigner == nil
		cfg.Gossip.Network = "witnesses"
		cfg.Gossip.Bootstrap = boot
		cfg.Gossip.FollowInterval = 20 * time.Millisecond
		cfg.Feed.WitnessInterval = interval
		n, err := node.New(cfg, node.Deps{Listener: ln, Store: db, Keys: keys[name]})
		if err != nil {
			t.Fatal(err)
		}
		return n, runNode(t, name, n, db)
	}
	obs, _ := start("observer", nil)
	var boot []string
	for _, a := range obs.Gossip().Host().Addrs() {
		boot = append(boot, fmt.Sprintf("%s/p2p/%s", a, obs.Gossip().ID()))
	}
	events := subscribeSSE(t, obs.URL())
	on := &feedNode{t: t, n: obs}
	start("w1", boot)
	_, stopW2 := start("w2", boot)

	// Both witnesses cosign size 10 and gossip it to the observer.
	events.waitWitnesses(t, feed.WitnessAlive, "w1", "w2")

	// w2's node goes down; the log grows and only w1 cosigns.
	stopW2()
	l.AppendN(5, "b")
	late := events.waitWitness(t, "w2", feed.WitnessLate)
	if late.Previous != feed.WitnessAlive || late.LastCosignedAt == nil {
		t.Errorf("late event %+v", late)
	}
	events.waitWitness(t, "w2", feed.WitnessMissing)
	ws := witnessesOfQuorum(t, on, 1)
	if w := ws["w2"]; w.State != feed.WitnessMissing || w.LagSize != 5 || w.LastCosignature == nil || w.LastCosignature.Size != 10 {
		t.Errorf("w2 while down: %+v", w)
	}
	if w := ws["w1"]; w.State != feed.WitnessAlive || w.LastCosignature == nil || w.LastCosignature.Size != 15 {
		t.Errorf("w1 while w2 is down: %+v", w)
	}
	if v := metricValue(t, on, `vigil_witness_alive{witness="w2"}`); v != "0" {
		t.Errorf("vigil_witness_alive{w2} = %q, want 0", v)
	}

	// w2's node comes back on its data directory, catches up and cosigns
	// size 15; the observer learns it by gossip.
	start("w2", boot)
	back := events.waitWitness(t, "w2", feed.WitnessAlive)
	if back.Previous != feed.WitnessMissing {
		t.Errorf("return event %+v", back)
	}
	ws = witnessesOfQuorum(t, on, 1)
	if w := ws["w2"]; w.State != feed.WitnessAlive || w.LagSize != 0 || w.LastCosignature.Size != 15 {
		t.Errorf("w2 back: %+v", w)
	}
	if v := metricValue(t, on, "vigil_witnesses_alive"); v != "2" {
		t.Errorf("vigil_witnesses_alive = %q, want 2", v)
	}
}
