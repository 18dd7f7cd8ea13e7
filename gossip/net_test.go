package gossip_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/vigilnet/vigil/gossip"
	"github.com/vigilnet/vigil/gossip/evidence"
	vpb "github.com/vigilnet/vigil/proto"
	"github.com/vigilnet/vigil/roster"
	"github.com/vigilnet/vigil/store"
	"github.com/vigilnet/vigil/testnet/scriptlog"
	"github.com/vigilnet/vigil/tlog"
	"github.com/vigilnet/vigil/witness"
)

// tlogger routes slog to t.Logf when VIGIL_TEST_LOG is set.
func tlogger(t testing.TB, name string) *slog.Logger {
	if os.Getenv("VIGIL_TEST_LOG") == "" {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})).With("node", name)
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Logf("%s", strings.TrimSpace(string(p)))
	return len(p), nil
}

// view is one tlog-tiles server; tests swap the log it serves to show
// different nodes different histories.
type view struct {
	srv *httptest.Server
	log atomic.Pointer[scriptlog.Log]
}

func newView(t testing.TB, l *scriptlog.Log) *view {
	v := &view{}
	v.log.Store(l)
	v.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v.log.Load().Handler().ServeHTTP(w, r)
	}))
	t.Cleanup(v.srv.Close)
	return v
}

type tnode struct {
	name     string
	host     host.Host
	gater    *gossip.Gater
	db       *store.DB
	svc      *gossip.Service
	w        *witness.Witness
	follower *witness.Follower
	view     atomic.Pointer[view]
	evidence chan store.EvidenceRecord
	scores   atomic.Pointer[map[peer.ID]float64]
}

type tnet struct {
	t      testing.TB
	roster *roster.Roster
	log    *scriptlog.Log
	views  [2]*view
	// rogue is a roster witness no node runs; tests use it to cosign both
	// sides of a split view.
	rogue *tlog.CosignatureSigner
	nodes []*tnode
}

type netOptions struct {
	nodes int
	// observers: nodes without a cosigning key.
	observers bool
	peerRate  float64
	// mdns turns on LAN discovery instead of explicit connections.
	mdns bool
	// aggregate names every node's witness (w<i>) by peer ID, which
	// turns cosignature aggregation on, with window and fallback.
	aggregate        bool
	window, fallback time.Duration
	// peers are further peers-file entries (with aggregate).
	peers []gossip.Peer
	// pushOnly: the log serves no tiles to the nodes; grace is their
	// DivergenceGrace.
	pushOnly bool
	grace    time.Duration
	// forgetPeersAfter, antiEntropy and intakeQueue set the Config fields
	// of those names; wrapStore, if set, wraps each node's store.
	forgetPeersAfter time.Duration
	antiEntropy      time.Duration
	intakeQueue      int
	subBuffer        int
	wrapStore        func(*store.DB) gossip.Store
	// ownInterval is the Config's OwnSightingInterval.
	ownInterval time.Duration
}

func newNet(t testing.TB, o netOptions) *tnet {
	t.Helper()
	n := &tnet{t: t}
	var err error
	if n.log, err = scriptlog.New("example.com/vigil-test-log"); err != nil {
		t.Fatal(err)
	}
	n.views[0], n.views[1] = newView(t, n.log), newView(t, n.log)
	policy := fmt.Sprintf("log %s %s\n", n.log.VerifierKey(), n.views[0].srv.URL)
	signers := make([]*tlog.CosignatureSigner, o.nodes)
	for i := range signers {
		skey, vkey, err := tlog.GenerateCosignerKey(rand.Reader, fmt.Sprintf("witness.test/w%d", i))
		if err != nil {
			t.Fatal(err)
		}
		if signers[i], err = tlog.NewCosignatureSigner(skey, nil); err != nil {
			t.Fatal(err)
		}
		policy += fmt.Sprintf("witness w%d %s\n", i, vkey)
	}
	skey, vkey, _ := tlog.GenerateCosignerKey(rand.Reader, "witness.test/rogue")
	n.rogue, _ = tlog.NewCosignatureSigner(skey, nil)
	policy += fmt.Sprintf("witness rogue %s\n", vkey)
	if n.roster, err = roster.ParsePolicy([]byte(policy)); err != nil {
		t.Fatal(err)
	}
	keys := make([]crypto.PrivKey, o.nodes)
	for i := range keys {
		if keys[i], _, err = crypto.GenerateEd25519Key(rand.Reader); err != nil {
			t.Fatal(err)
		}
		if o.aggregate {
			id, _ := peer.IDFromPrivateKey(keys[i])
			o.peers = append(o.peers, gossip.Peer{Name: fmt.Sprintf("w%d", i), Info: peer.AddrInfo{ID: id}})
		}
	}
	for i := 0; i < o.nodes; i++ {
		var s *tlog.CosignatureSigner
		if !o.observers {
			s = signers[i]
		}
		n.nodes = append(n.nodes, n.startNode(fmt.Sprintf("node%d", i), s, o, keys[i]))
	}
	return n
}

func (n *tnet) startNode(name string, signer *tlog.CosignatureSigner, o netOptions, key crypto.PrivKey) *tnode {
	t := n.t
	t.Helper()
	nd := &tnode{name: name, evidence: make(chan store.EvidenceRecord, 64)}
	nd.view.Store(n.views[0])
	var err error
	if nd.host, nd.gater, err = gossip.NewHost(gossip.HostConfig{Identity: key, ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nd.host.Close() })
	if nd.db, err = store.Open(t.TempDir(), store.Options{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nd.db.Close() })
	rosterFn := func() *roster.Roster { return n.roster }
	urlFor := func(*roster.Log) string { return nd.view.Load().srv.URL }
	if o.pushOnly {
		urlFor = func(*roster.Log) string { return "" }
	}
	var st gossip.Store = nd.db
	if o.wrapStore != nil {
		st = o.wrapStore(nd.db)
	}
	nd.svc, err = gossip.New(gossip.Config{
		Network:             "test",
		Host:                nd.host,
		Gater:               nd.gater,
		Roster:              rosterFn,
		Store:               st,
		ForgetPeersAfter:    o.forgetPeersAfter,
		AntiEntropyInterval: o.antiEntropy,
		IntakeQueue:         o.intakeQueue,
		SubscriptionBuffer:  o.subBuffer,
		Proofs:              &gossip.TileProofs{Roster: rosterFn, URLFor: urlFor},
		Name:                name,
		HeartbeatInterval:   50 * time.Millisecond,
		PeerRate:            o.peerRate,
		MDNS:                o.mdns,
		Peers:               o.peers,
		AggregateWindow:     o.window,
		AggregateFallback:   o.fallback,
		OwnSightingInterval: o.ownInterval,
		DivergenceGrace:     o.grace,
		OnEvidence: func(r store.EvidenceRecord) {
			select {
			case nd.evidence <- r:
			default:
			}
		},
		ScoreInspect:       func(m map[peer.ID]float64) { nd.scores.Store(&m) },
		ScoreInspectPeriod: 50 * time.Millisecond,
		Logger:             tlogger(t, name),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nd.svc.Close() })
	var cosigner witness.Cosigner
	if signer != nil {
		nd.w, err = witness.New(witness.Config{
			Signer:      signer,
			Logs:        n.roster,
			Store:       nd.db,
			AfterCosign: func(c witness.Cosigned) { nd.svc.Offer(c.Note, vpb.Source_SOURCE_COSIGN) },
		})
		if err != nil {
			t.Fatal(err)
		}
		cosigner = nd.w
	}
	nd.follower, err = witness.NewFollower(witness.FollowerConfig{
		Logs:         n.roster.Logs,
		URLFor:       urlFor,
		Cosigner:     cosigner,
		OnCheckpoint: func(_ string, note []byte) { nd.svc.Offer(note, vpb.Source_SOURCE_PULL) },
	})
	if err != nil {
		t.Fatal(err)
	}
	return nd
}

func (nd *tnode) addrInfo(quic bool) peer.AddrInfo {
	pi := peer.AddrInfo{ID: nd.host.ID()}
	for _, a := range nd.host.Addrs() {
		_, err := a.ValueForProtocol(ma.P_QUIC_V1)
		if (err == nil) == quic {
			pi.Addrs = append(pi.Addrs, a)
		}
	}
	return pi
}

// connectRing connects node i to i+1 and i+2 (mod n), alternating TCP and
// QUIC, and waits until every node has all its ring neighbours in its mesh
// of both topics.
func (n *tnet) connectRing() {
	n.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i, a := range n.nodes {
		for d := 1; d <= 2 && d < len(n.nodes); d++ {
			b := n.nodes[(i+d)%len(n.nodes)]
			if err := a.svc.Connect(ctx, b.addrInfo((i+d)%2 == 1)); err != nil {
				n.t.Fatalf("connecting %s to %s: %v", a.name, b.name, err)
			}
		}
	}
	n.waitMesh(n.nodes, ringDegree(len(n.nodes)))
}

// ringDegree is how many neighbours each of n nodes has in connectRing's
// ring: i±1 and i±2, fewer where those coincide.
func ringDegree(n int) int {
	nb := map[int]bool{}
	for _, d := range []int{1, 2, n - 1, n - 2} {
		if j := d % n; j != 0 {
			nb[j] = true
		}
	}
	return len(nb)
}

// waitMesh waits until each of nodes has at least want peers in its mesh
// of both topics. Subscriptions are not enough: a sighting published while
// a subscribed neighbour is not yet in any mesh may never reach it (see
// gossip's meshTracker), and a test that waits for every cosignature at
// every node would then wait forever (it did, about once in a hundred runs
// under load).
func (n *tnet) waitMesh(nodes []*tnode, want int) {
	n.t.Helper()
	waitFor(n.t, 30*time.Second, "meshes", func() bool {
		for _, nd := range nodes {
			cp, ev := nd.svc.MeshPeers()
			if len(cp) < want || len(ev) < want {
				return false
			}
		}
		return true
	})
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	if !waitUntil(d, cond) {
		t.Fatalf("timed out after %s waiting for %s", d, what)
	}
}

// waitUntil polls cond until it holds (true) or d passes (false).
func waitUntil(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		<-tick.C
	}
	return true
}

// push submits the checkpoint of l at its current size to nd's witness, as
// a log pushing to its witnesses would, with a proof from the witness's
// stored size.
func (n *tnet) push(nd *tnode, l *scriptlog.Log) {
	n.t.Helper()
	ctx := context.Background()
	old := uint64(0)
	if st, err := nd.db.WitnessState(ctx, l.Origin()); err == nil {
		old = st.Size
	} else if !errors.Is(err, store.ErrNotFound) {
		n.t.Fatal(err)
	}
	cp, err := l.Checkpoint()
	if err != nil {
		n.t.Fatal(err)
	}
	proof, err := l.ConsistencyProof(old, l.Size())
	if err != nil {
		n.t.Fatal(err)
	}
	if _, err := nd.w.AddCheckpoint(ctx, &witness.AddCheckpointRequest{OldSize: old, Proof: proof, Checkpoint: cp}); err != nil {
		n.t.Fatalf("push to %s: %v", nd.name, err)
	}
}

// pull makes nd's follower read its view once.
func (n *tnet) pull(nd *tnode) {
	n.t.Helper()
	l, _ := n.roster.Log(n.log.Origin())
	if err := nd.follower.Poll(context.Background(), l); err != nil {
		n.t.Fatalf("pull by %s: %v", nd.name, err)
	}
}

// waitEvidence waits until every node in nodes has stored evidence of kind,
// then checks the stored copy verifies offline.
func (n *tnet) waitEvidence(nodes []*tnode, kind string, d time.Duration) {
	n.t.Helper()
	deadline := time.After(d)
	for _, nd := range nodes {
	wait:
		for {
			select {
			case r := <-nd.evidence:
				if r.Kind == kind {
					n.checkStored(nd, r.ID)
					break wait
				}
			case <-deadline:
				n.t.Fatalf("%s holds no %s evidence after %s", nd.name, kind, d)
			}
		}
	}
}

func (n *tnet) checkStored(nd *tnode, id string) *evidence.Finding {
	n.t.Helper()
	rec, err := nd.db.Evidence(context.Background(), id)
	if err != nil {
		n.t.Fatalf("%s: stored evidence %s: %v", nd.name, id, err)
	}
	e, err := vpb.UnmarshalEvidence(rec.Data)
	if err != nil {
		n.t.Fatal(err)
	}
	f, err := evidence.Verify(e, n.roster)
	if err != nil {
		n.t.Fatalf("%s: stored evidence does not verify: %v", nd.name, err)
	}
	return f
}

// evidenceCount returns how many evidence records nd holds.
func evidenceCount(t testing.TB, nd *tnode) int {
	t.Helper()
	recs, err := nd.db.ListEvidence(context.Background(), "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	return len(recs)
}
