package gossip_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/mod/sumdb/note"

	"github.com/vigilnet/vigil/gossip"
	"github.com/vigilnet/vigil/gossip/evidence"
	vpb "github.com/vigilnet/vigil/proto"
	"github.com/vigilnet/vigil/roster"
	"github.com/vigilnet/vigil/store"
	"github.com/vigilnet/vigil/testnet/scriptlog"
	"github.com/vigilnet/vigil/tlog"
	"github.com/vigilnet/vigil/witness"
)

// ownWorld is a roster of one log and two witnesses, w0 (the node under
// test) and w1.
type ownWorld struct {
	t      *testing.T
	log    *scriptlog.Log
	logV   note.Verifier
	w0, w1 *tlog.CosignatureSigner
	w0V    *tlog.CosignatureVerifier
	roster *roster.Roster
}

func newOwnWorld(t *testing.T) *ownWorld {
	t.Helper()
	ow := &ownWorld{t: t}
	var err error
	if ow.log, err = scriptlog.New("example.com/own-test-log"); err != nil {
		t.Fatal(err)
	}
	ow.log.AppendN(30, "entry")
	if ow.logV, err = note.NewVerifier(ow.log.VerifierKey()); err != nil {
		t.Fatal(err)
	}
	policy := fmt.Sprintf("log %s\n", ow.log.VerifierKey())
	for i, s := range []**tlog.CosignatureSigner{&ow.w0, &ow.w1} {
		skey, vkey, err := tlog.GenerateCosignerKey(rand.Reader, fmt.Sprintf("witness.test/w%d", i))
		if err != nil {
			t.Fatal(err)
		}
		if *s, err = tlog.NewCosignatureSigner(skey, nil); err != nil {
			t.Fatal(err)
		}
		policy += fmt.Sprintf("witness w%d %s\n", i, vkey)
	}
	if ow.w0V, err = tlog.NewCosignatureVerifier(ow.w0.VerifierKey()); err != nil {
		t.Fatal(err)
	}
	if ow.roster, err = roster.ParsePolicy([]byte(policy)); err != nil {
		t.Fatal(err)
	}
	return ow
}

// cosigned returns the log's checkpoint at size n cosigned by signers.
func (ow *ownWorld) cosigned(n uint64, signers ...note.Signer) []byte {
	ow.t.Helper()
	cp, err := ow.log.CheckpointAt(n)
	if err != nil {
		ow.t.Fatal(err)
	}
	nt, err := note.Open(cp, note.VerifierList(ow.logV))
	if err != nil {
		ow.t.Fatal(err)
	}
	nt.UnverifiedSigs = nil
	msg, err := note.Sign(nt, signers...)
	if err != nil {
		ow.t.Fatal(err)
	}
	return msg
}

// forged returns msg with a byte of its last signature changed.
func forged(msg []byte) []byte {
	out := append([]byte(nil), msg...)
	i := len(out) - 20 // well inside the base64 of the last line
	if out[i] == 'A' {
		out[i] = 'B'
	} else {
		out[i] = 'A'
	}
	return out
}

// store puts msg as a checkpoint record in db, as gossip would.
func (ow *ownWorld) store(db *store.DB, n uint64, msg []byte) {
	ow.t.Helper()
	root, err := ow.log.Root(n)
	if err != nil {
		ow.t.Fatal(err)
	}
	err = db.MergeCheckpoint(context.Background(), ow.log.Origin(), n, root, func(store.CheckpointRecord, bool) (store.CheckpointRecord, bool, error) {
		return store.CheckpointRecord{Note: msg, Cosigners: 1, FirstSeen: time.Now()}, true, nil
	})
	if err != nil {
		ow.t.Fatal(err)
	}
}

type ownNode struct {
	host host.Host
	db   *store.DB
	svc  *gossip.Service
	own  *gossip.OwnHistory
}

// start runs a gossip service on a fresh store; need > 0 gives it w0's
// own history with that recovery.
func (ow *ownWorld) start(name string, withOwn bool, need int) *ownNode {
	t := ow.t
	t.Helper()
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	nd := &ownNode{}
	if nd.host, _, err = gossip.NewHost(gossip.HostConfig{Identity: key, ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nd.host.Close() })
	if nd.db, err = store.Open(t.TempDir(), store.Options{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nd.db.Close() })
	if withOwn {
		if nd.own, err = gossip.NewOwnHistory(gossip.OwnHistoryConfig{Key: ow.w0V, Store: nd.db, RecoveryPeers: need, Logger: tlogger(t, name+"/own")}); err != nil {
			t.Fatal(err)
		}
	}
	nd.svc, err = gossip.New(gossip.Config{
		Network:           "test",
		Host:              nd.host,
		Roster:            func() *roster.Roster { return ow.roster },
		Store:             nd.db,
		Name:              name,
		Own:               nd.own,
		HeartbeatInterval: 50 * time.Millisecond,
		Logger:            tlogger(t, name),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nd.svc.Close() })
	return nd
}

func connect(t *testing.T, a, b host.Host) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Connect(ctx, peer.AddrInfo{ID: b.ID(), Addrs: b.Addrs()}); err != nil {
		t.Fatal(err)
	}
}

// TestOwnRecoveryFromPeers: a witness with an empty store refuses every
// log until a peer answered, then holds as its floor the newest checkpoint
// the peer stores with the witness's valid cosignature (not a newer one
// cosigned only by another witness, nor one whose cosignature is forged).
func TestOwnRecoveryFromPeers(t *testing.T) {
	ow := newOwnWorld(t)
	origin := ow.log.Origin()
	peerNode := ow.start("peer", false, 0)
	ow.store(peerNode.db, 5, ow.cosigned(5, ow.w0))
	ow.store(peerNode.db, 8, ow.cosigned(8, ow.w1, ow.w0))
	ow.store(peerNode.db, 10, ow.cosigned(10, ow.w1))
	ow.store(peerNode.db, 12, forged(ow.cosigned(12, ow.w0)))

	u := ow.start("w0", true, 1)
	short, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	_, _, err := u.own.Floor(short, origin)
	cancel()
	var ue *witness.UnavailableError
	if !errors.As(err, &ue) || ue.Reason != "recovering cosigned state from peers (0 of 1 answered)" || ue.RetryAfter <= 0 {
		t.Fatalf("Floor before recovery: %v, want 503 recovering (0 of 1 answered)", err)
	}

	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	done := make(chan struct{})
	go func() {
		defer close(done)
		u.svc.RecoverOwn(ctx, u.own, ow.w0.VerifierKey(), []peer.ID{peerNode.host.ID()})
	}()
	connect(t, u.host, peerNode.host)
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("recovery did not finish")
	}
	f, ok, err := u.own.Floor(context.Background(), origin)
	if err != nil || !ok || f.Size != 8 {
		t.Fatalf("floor after recovery: size %d ok %v err %v, want 8", f.Size, ok, err)
	}
	cp, nt, err := tlog.VerifyCheckpoint(f.Checkpoint, origin, []note.Verifier{ow.logV}, ow.w0V)
	if err != nil || cp.Size != 8 || cp.Root != f.Root || !tlog.SignedBy(nt, ow.w0V) {
		t.Fatalf("floor's note does not carry w0's cosignature on size 8: %v", err)
	}
	// Durable: the store holds it for the next start.
	if st, err := u.db.OwnFloor(context.Background(), origin); err != nil || st.Size != 8 {
		t.Fatalf("stored floor %d %v, want 8", st.Size, err)
	}
}

// TestOwnRecoveryIgnoresForgedAnswers: a peer answering checkpoints whose
// cosignature does not verify under the witness's key, or that its log did
// not sign, counts as having answered but raises nothing.
func TestOwnRecoveryIgnoresForgedAnswers(t *testing.T) {
	ow := newOwnWorld(t)
	u := ow.start("w0", true, 1)
	hostile := ow.start("hostile", false, 0)
	other, err := scriptlog.New("example.com/own-test-log")
	if err != nil {
		t.Fatal(err)
	}
	other.AppendN(40, "other")
	otherCP, err := other.CheckpointAt(40)
	if err != nil {
		t.Fatal(err)
	}
	answers := [][]byte{
		forged(ow.cosigned(20, ow.w0)), // w0's cosignature forged
		ow.cosigned(25, ow.w1),         // not w0's
		otherCP,                        // same origin, another key
		[]byte("not a note"),
	}
	hostile.host.SetStreamHandler("/vigil/1/test/own/1.0.0", func(st network.Stream) {
		defer st.Close()
		w := bufio.NewWriter(st)
		for _, a := range answers {
			w.WriteByte(2)
			w.Write(binary.AppendUvarint(nil, uint64(len(a))))
			w.Write(a)
		}
		w.Flush()
	})
	done := make(chan struct{})
	go func() {
		defer close(done)
		u.svc.RecoverOwn(context.Background(), u.own, ow.w0.VerifierKey(), []peer.ID{hostile.host.ID()})
	}()
	connect(t, u.host, hostile.host)
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("recovery did not finish")
	}
	if f, ok, err := u.own.Floor(context.Background(), ow.log.Origin()); err != nil || ok {
		t.Fatalf("floor from forged answers: size %d ok %v err %v, want none", f.Size, ok, err)
	}
}

// TestOwnQueryMalformed: a request that is not one query frame gets the
// stream closed with nothing written.
func TestOwnQueryMalformed(t *testing.T) {
	ow := newOwnWorld(t)
	peerNode := ow.start("peer", false, 0)
	ow.store(peerNode.db, 5, ow.cosigned(5, ow.w0))
	client := ow.start("client", false, 0)
	connect(t, client.host, peerNode.host)
	for name, req := range map[string][]byte{
		"wrong frame type": append([]byte{9, byte(len(ow.w0.VerifierKey()))}, ow.w0.VerifierKey()...),
		"oversized":        append([]byte{1}, binary.AppendUvarint(nil, 1<<20)...),
		"truncated":        {1, 50, 'a'},
	} {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			st, err := client.host.NewStream(ctx, peerNode.host.ID(), "/vigil/1/test/own/1.0.0")
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			st.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := st.Write(req); err != nil {
				t.Fatal(err)
			}
			st.CloseWrite()
			b, _ := io.ReadAll(st)
			if len(b) != 0 {
				t.Fatalf("answered a malformed request with %d bytes", len(b))
			}
		})
	}
	// The well-formed query gets its answer.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := client.host.NewStream(ctx, peerNode.host.ID(), "/vigil/1/test/own/1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	vkey := ow.w0.VerifierKey()
	st.Write(append(append([]byte{1}, binary.AppendUvarint(nil, uint64(len(vkey)))...), vkey...))
	st.CloseWrite()
	b, _ := io.ReadAll(st)
	if len(b) < 2 || b[0] != 2 {
		t.Fatalf("answer %q, want one answer frame", b)
	}
	n, k := binary.Uvarint(b[1:])
	if k <= 0 || uint64(len(b)-1-k) != n {
		t.Fatalf("answer %q is not exactly one frame", b)
	}
	cp, nt, err := tlog.VerifyCheckpoint(b[1+k:], ow.log.Origin(), []note.Verifier{ow.logV}, ow.w0V)
	if err != nil || cp.Size != 5 || !tlog.SignedBy(nt, ow.w0V) {
		t.Fatalf("answer is not the size-5 checkpoint with w0's cosignature: size %d, %v", cp.Size, err)
	}
}

// TestOwnLearnsFromGossip: a sighting carrying the witness's cosignature
// raises its floor; one without it does not.
func TestOwnLearnsFromGossip(t *testing.T) {
	ow := newOwnWorld(t)
	u := ow.start("w0", true, 0)
	p := ow.start("peer", false, 0)
	connect(t, u.host, p.host)
	waitFor(t, 20*time.Second, "mesh", func() bool {
		a, _ := u.svc.MeshPeers()
		b, _ := p.svc.MeshPeers()
		return len(a) > 0 && len(b) > 0
	})
	ctx := context.Background()
	if err := p.svc.PublishSighting(ctx, ow.cosigned(14, ow.w1), vpb.Source_SOURCE_PULL); err != nil {
		t.Fatal(err)
	}
	if err := p.svc.PublishSighting(ctx, ow.cosigned(11, ow.w0, ow.w1), vpb.Source_SOURCE_PULL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "floor at 11", func() bool {
		f, ok, err := u.own.Floor(ctx, ow.log.Origin())
		return err == nil && ok && f.Size == 11
	})
	// The size-14 sighting (w1 only) arrives too, and does not raise it.
	waitFor(t, 20*time.Second, "size 14 delivered", func() bool {
		_, err := u.db.Checkpoint(ctx, ow.log.Origin(), 14, mustRoot(t, ow.log, 14))
		return err == nil
	})
	if f, _, _ := u.own.Floor(ctx, ow.log.Origin()); f.Size != 11 {
		t.Fatalf("floor %d, want 11", f.Size)
	}
}

func mustRoot(t *testing.T, l *scriptlog.Log, n uint64) [32]byte {
	t.Helper()
	r, err := l.Root(n)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestOwnLearnsFromEvidence: evidence that reaches the node (here by the
// catch-up sync, with no checkpoint record beside it) raises the floor to
// the side carrying the witness's cosignature.
func TestOwnLearnsFromEvidence(t *testing.T) {
	ow := newOwnWorld(t)
	fork, err := ow.log.Fork(10)
	if err != nil {
		t.Fatal(err)
	}
	fork.GrowTo(30, "fork")
	cpB, err := fork.CheckpointAt(12)
	if err != nil {
		t.Fatal(err)
	}
	nb, err := note.Open(cpB, note.VerifierList(ow.logV))
	if err != nil {
		t.Fatal(err)
	}
	nb.UnverifiedSigs = nil
	viewB, err := note.Sign(nb, ow.w0)
	if err != nil {
		t.Fatal(err)
	}
	e := &vpb.Evidence{Kind: vpb.Kind_KIND_LOG_EQUIVOCATION_SAME_SIZE, CheckpointA: ow.cosigned(12, ow.w1), CheckpointB: viewB}
	data, err := vpb.MarshalEvidence(e)
	if err != nil {
		t.Fatal(err)
	}
	p := ow.start("peer", false, 0)
	ctx := context.Background()
	if _, err := p.db.PutEvidence(ctx, store.EvidenceRecord{ID: evidence.ID(e), Kind: vpb.KindName(e.Kind), Origin: ow.log.Origin(), Stored: time.Now(), Data: data}); err != nil {
		t.Fatal(err)
	}
	u := ow.start("w0", true, 0)
	connect(t, u.host, p.host)
	rootB := mustRoot(t, fork, 12)
	waitFor(t, 20*time.Second, "floor at view B", func() bool {
		f, ok, err := u.own.Floor(ctx, ow.log.Origin())
		return err == nil && ok && f.Size == 12 && f.Root == rootB
	})
}
