package witness_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigilnet/vigil/roster"
	"github.com/vigilnet/vigil/store"
	"github.com/vigilnet/vigil/testnet/scriptlog"
	"github.com/vigilnet/vigil/tlog"
	"github.com/vigilnet/vigil/witness"
)

type followFixture struct {
	log    *scriptlog.Log
	srv    *httptest.Server
	roster *roster.Roster
	db     *store.DB
	w      *witness.Witness
	// serving is the log the HTTP server currently serves.
	serving atomic.Pointer[scriptlog.Log]
}

func newFollowFixture(t *testing.T) *followFixture {
	t.Helper()
	fx := &followFixture{}
	var err error
	if fx.log, err = scriptlog.New("example.com/pull"); err != nil {
		t.Fatal(err)
	}
	fx.serving.Store(fx.log)
	fx.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fx.serving.Load().Handler().ServeHTTP(w, r)
	}))
	t.Cleanup(fx.srv.Close)
	skey, vkey, err := tlog.GenerateCosignerKey(rand.Reader, "witness.example/w1")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := tlog.NewCosignatureSigner(skey, nil)
	if err != nil {
		t.Fatal(err)
	}
	if fx.roster, err = roster.ParsePolicy(fmt.Appendf(nil, "log %s %s\nwitness w1 %s\n", fx.log.VerifierKey(), fx.srv.URL, vkey)); err != nil {
		t.Fatal(err)
	}
	if fx.db, err = store.Open(t.TempDir(), store.Options{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fx.db.Close() })
	if fx.w, err = witness.New(witness.Config{Signer: signer, Logs: fx.roster, Store: fx.db}); err != nil {
		t.Fatal(err)
	}
	return fx
}

func (fx *followFixture) follower(t *testing.T, cosigner witness.Cosigner, seen *[][]byte) *witness.Follower {
	t.Helper()
	f, err := witness.NewFollower(witness.FollowerConfig{
		Logs:     fx.roster.Logs,
		Cosigner: cosigner,
		OnCheckpoint: func(origin string, n []byte) {
			if seen != nil {
				*seen = append(*seen, n)
			}
		},
		Interval: time.Millisecond,
		Timeout:  10 * time.Second,
		Logger:   slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func (fx *followFixture) cosignedSize(t *testing.T) uint64 {
	t.Helper()
	st, err := fx.db.WitnessState(context.Background(), fx.log.Origin())
	if errors.Is(err, store.ErrNotFound) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return st.Size
}

func TestFollowerCosignsAcrossTiles(t *testing.T) {
	ctx := context.Background()
	fx := newFollowFixture(t)
	var seen [][]byte
	f := fx.follower(t, fx.w, &seen)
	l, _ := fx.roster.Log(fx.log.Origin())
	for _, step := range []int{3, 300, 1, 70000 - 304, 0, 256} {
		fx.log.AppendN(step, "e")
		if err := f.Poll(ctx, l); err != nil {
			t.Fatalf("poll at %d: %v", fx.log.Size(), err)
		}
		if got := fx.cosignedSize(t); got != fx.log.Size() {
			t.Fatalf("cosigned %d, log is at %d", got, fx.log.Size())
		}
	}
	if len(seen) != 5 { // the step of 0 entries is not new
		t.Fatalf("OnCheckpoint saw %d checkpoints, want 5", len(seen))
	}
}

func TestFollowerLearnsWitnessStateFromConflict(t *testing.T) {
	ctx := context.Background()
	fx := newFollowFixture(t)
	l, _ := fx.roster.Log(fx.log.Origin())
	fx.log.AppendN(10, "e")
	if err := fx.follower(t, fx.w, nil).Poll(ctx, l); err != nil {
		t.Fatal(err)
	}
	fx.log.AppendN(10, "e")
	// A fresh follower (e.g. after a restart) believes the witness is at 0.
	if err := fx.follower(t, fx.w, nil).Poll(ctx, l); err != nil {
		t.Fatal(err)
	}
	if got := fx.cosignedSize(t); got != 20 {
		t.Fatalf("cosigned %d, want 20", got)
	}
}

func TestFollowerRefusesFork(t *testing.T) {
	ctx := context.Background()
	fx := newFollowFixture(t)
	l, _ := fx.roster.Log(fx.log.Origin())
	fx.log.AppendN(20, "e")
	f := fx.follower(t, fx.w, nil)
	if err := f.Poll(ctx, l); err != nil {
		t.Fatal(err)
	}
	fork, err := fx.log.Fork(10)
	if err != nil {
		t.Fatal(err)
	}
	fork.AppendN(30, "evil")
	fx.serving.Store(fork)
	err = f.Poll(ctx, l)
	if !errors.Is(err, witness.ErrInconsistent) {
		t.Fatalf("poll of a fork: %v, want ErrInconsistent", err)
	}
	if got := fx.cosignedSize(t); got != 20 {
		t.Fatalf("cosigned %d after the fork, want 20", got)
	}
}

func TestFollowerObserverAndErrors(t *testing.T) {
	ctx := context.Background()
	fx := newFollowFixture(t)
	l, _ := fx.roster.Log(fx.log.Origin())
	var seen [][]byte
	f := fx.follower(t, nil, &seen)
	fx.log.AppendN(5, "e")
	if err := f.Poll(ctx, l); err != nil {
		t.Fatal(err)
	}
	if len(seen) != 1 || fx.cosignedSize(t) != 0 {
		t.Fatalf("observer: seen %d, cosigned %d", len(seen), fx.cosignedSize(t))
	}
	want, _ := fx.log.Checkpoint()
	if !bytes.Equal(seen[0], want) {
		t.Fatal("OnCheckpoint got other bytes than the log served")
	}
	// A checkpoint signed by another key is refused.
	other, _ := scriptlog.New(fx.log.Origin())
	other.AppendN(5, "x")
	fx.serving.Store(other)
	if err := f.Poll(ctx, l); !errors.Is(err, tlog.ErrUnsigned) {
		t.Fatalf("foreign signature: %v", err)
	}
	if len(seen) != 1 {
		t.Fatal("an unauthenticated checkpoint reached OnCheckpoint")
	}
}

func TestFollowerRunBacksOffAndStops(t *testing.T) {
	fx := newFollowFixture(t)
	fx.log.AppendN(5, "e")
	got := make(chan []byte, 16)
	f, err := witness.NewFollower(witness.FollowerConfig{
		Logs:         fx.roster.Logs,
		Cosigner:     fx.w,
		OnCheckpoint: func(_ string, n []byte) { got <- n },
		Interval:     time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	deadline := time.After(10 * time.Second)
	for want := uint64(5); want <= 7; want++ {
		select {
		case n := <-got:
			if !bytes.Contains(n, fmt.Appendf(nil, "\n%d\n", want)) {
				t.Fatalf("got checkpoint %q, want size %d", n, want)
			}
		case <-deadline:
			t.Fatalf("no checkpoint of size %d", want)
		}
		fx.log.AppendN(1, "e")
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

func TestTileClientProofs(t *testing.T) {
	ctx := context.Background()
	l, _ := scriptlog.New("example.com/tiles")
	l.AppendN(600, "e")
	srv := httptest.NewServer(l.Handler())
	defer srv.Close()
	c, err := witness.NewTileClient(srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range [][2]uint64{{1, 2}, {7, 300}, {255, 256}, {256, 257}, {100, 513}, {512, 600}, {599, 600}} {
		got, err := c.ConsistencyProof(ctx, p[0], p[1])
		if err != nil {
			t.Fatalf("%v: %v", p, err)
		}
		want, _ := l.ConsistencyProof(p[0], p[1])
		if len(got) != len(want) {
			t.Fatalf("%v: %d hashes, want %d", p, len(got), len(want))
		}
		for i := range got {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("%v: hash %d differs", p, i)
			}
		}
	}
	for _, m := range []uint64{1, 2, 256, 512} {
		got, err := c.SubtreeRoot(ctx, m, 600)
		want, _ := l.Root(m)
		if err != nil || !bytes.Equal(got, want[:]) {
			t.Fatalf("subtree root %d: %v", m, err)
		}
	}
	if _, err := c.ConsistencyProof(ctx, 1, 601); err == nil {
		t.Fatal("built a proof beyond the log")
	}
}

func TestFollowerPicksUpRosterChanges(t *testing.T) {
	fx := newFollowFixture(t)
	fx.log.AppendN(5, "e")
	var logs atomic.Pointer[[]*roster.Log]
	empty := []*roster.Log{}
	logs.Store(&empty)
	got := make(chan []byte, 16)
	f, err := witness.NewFollower(witness.FollowerConfig{
		Logs:         func() []*roster.Log { return *logs.Load() },
		OnCheckpoint: func(_ string, n []byte) { got <- n },
		Interval:     time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	// The roster gains the log while Run is running.
	all := fx.roster.Logs()
	logs.Store(&all)
	select {
	case <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("a log added to the roster was never polled")
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}
