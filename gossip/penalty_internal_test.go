package gossip

import (
	"crypto/rand"
	"fmt"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

func testPeerID(t testing.TB) peer.ID {
	t.Helper()
	sk, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p, err := peer.IDFromPrivateKey(sk)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestPenalties: offences add up to a ban at banPoints, points decay with
// penaltyHalfLife, a ban lasts banFor, and a peer is banned once per ban.
func TestPenalties(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	type ban struct {
		p     peer.ID
		until time.Time
	}
	var bans []ban
	ps := newPenalties(10*time.Minute, func(p peer.ID, until time.Time) { bans = append(bans, ban{p, until}) }, nil)
	ps.now = func() time.Time { return now }
	p := testPeerID(t)
	for i := 1; i <= 3; i++ {
		if ps.add(p, "sync", "malformed") {
			t.Fatalf("banned after %d offences", i)
		}
	}
	if got := ps.points(p); got != 3*penaltyPoints {
		t.Errorf("points %v, want %v", got, 3*penaltyPoints)
	}
	// One half-life later the points have halved: one more offence does
	// not ban.
	now = now.Add(penaltyHalfLife)
	if got := ps.points(p); got < 37 || got > 38 {
		t.Errorf("points after a half-life %v, want 37.5", got)
	}
	// 37.5 → 62.5 → 87.5: not yet.
	for range 2 {
		if ps.add(p, "sync", "malformed") {
			t.Fatal("banned below banPoints")
		}
	}
	if !ps.add(p, "proof", "malformed") {
		t.Fatal("not banned at banPoints")
	}
	if len(bans) != 1 || bans[0].p != p || !bans[0].until.Equal(now.Add(10*time.Minute)) {
		t.Fatalf("bans %v, want one of %s until %s", bans, p, now.Add(10*time.Minute))
	}
	// More offences while banned do not ban again.
	ps.add(p, "sync", "malformed")
	if len(bans) != 1 {
		t.Errorf("%d bans, want 1", len(bans))
	}
	if !ps.banned(p) || ps.bannedCount() != 1 {
		t.Error("not banned")
	}
	now = now.Add(10*time.Minute + time.Second)
	if ps.banned(p) || ps.bannedCount() != 0 {
		t.Error("still banned after the ban's end")
	}
}

// TestPenaltiesBounded: the peers remembered stay under maxPenalised, and
// a banned peer is never the one forgotten.
func TestPenaltiesBounded(t *testing.T) {
	ps := newPenalties(time.Minute, nil, nil)
	banned := testPeerID(t)
	for range banPoints / penaltyPoints {
		ps.add(banned, "sync", "malformed")
	}
	for i := range maxPenalised + 100 {
		ps.add(peer.ID(fmt.Sprint("p", i)), "sync", "malformed")
	}
	if n := len(ps.peers); n > maxPenalised {
		t.Errorf("%d peers remembered, want at most %d", n, maxPenalised)
	}
	if !ps.banned(banned) {
		t.Error("the banned peer was forgotten")
	}
}

// TestPeerRollForgets: a peer that left is reported until forgetAfter,
// configured peers always, and no more than maxDepartedPeers that left.
func TestPeerRollForgets(t *testing.T) {
	configured := testPeerID(t)
	r := newPeerRoll(map[peer.ID]bool{configured: true}, nil, time.Hour)
	scores := map[peer.ID]float64{configured: 1}
	for i := range 2 * maxDepartedPeers {
		p := peer.ID(fmt.Sprint("left", i))
		scores[p] = 0
		r.left(p)
	}
	got := r.filter(scores, nil)
	if _, ok := got[configured]; !ok {
		t.Error("configured peer not reported")
	}
	if len(got) != maxDepartedPeers+1 {
		t.Errorf("%d peers reported, want %d", len(got), maxDepartedPeers+1)
	}
	short := newPeerRoll(nil, nil, time.Nanosecond)
	short.left("gone")
	deadline := time.Now().Add(time.Second)
	for len(short.filter(map[peer.ID]float64{"gone": 0}, nil)) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("a departed peer is still reported after forgetAfter")
		}
	}
}
