package gossip

import (
	"errors"
	"math"
	"sync"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Penalties for peers that misbehave outside gossipsub's view: malformed
// frames or requests on Vigil's stream protocols (sync, proof, cosign,
// digest) and pubsub RPCs that pubsub drops before any validator sees them
// (oversized or undecodable, rpclog.go). Gossipsub's own score already
// punishes invalid topic messages (P4); these penalties feed its
// application-specific score (P5), so a peer sending junk streams is
// graylisted like one sending invalid messages, and past banPoints it is
// disconnected and gated for BanDuration.
//
// Points decay with a half-life of penaltyHalfLife, so an honest peer hit
// by one corrupt stream (a bug, a middlebox) recovers; a peer that keeps
// sending junk stays banned.
const (
	// penaltyPoints is what one offence costs; banPoints is where a peer
	// is banned. Four malformed streams in quick succession ban a peer;
	// pubsub graylists it (score below graylistThreshold) after the
	// fourth as well.
	penaltyPoints = 25
	banPoints     = 100
	// penaltyHalfLife is how fast points decay.
	penaltyHalfLife = 10 * time.Minute
	// defaultBanDuration is how long a banned peer stays gated.
	defaultBanDuration = 10 * time.Minute
	// maxPenalised bounds the peers with points remembered; beyond it the
	// ones with the fewest points are forgotten first.
	maxPenalised = 10_000
)

// PeerGater is what the penalties need from the node's connection gater:
// refuse a peer, on dial and accept, until a time. *Gater is one.
type PeerGater interface {
	BlockUntil(p peer.ID, until time.Time)
}

var _ PeerGater = (*Gater)(nil)

// penaltyState is one peer's standing.
type penaltyState struct {
	points float64
	at     time.Time // when points was last brought up to date
	until  time.Time // banned until
}

// penalties tracks misbehaviour per peer.
type penalties struct {
	now    func() time.Time
	banFor time.Duration
	// ban disconnects and gates a peer; it is called without mu held.
	ban     func(peer.ID, time.Time)
	counted func(proto, reason string)

	mu    sync.Mutex
	peers map[peer.ID]*penaltyState
}

func newPenalties(banFor time.Duration, ban func(peer.ID, time.Time), counted func(proto, reason string)) *penalties {
	return &penalties{now: time.Now, banFor: banFor, ban: ban, counted: counted, peers: map[peer.ID]*penaltyState{}}
}

// decayed returns st's points at now.
func decayed(st *penaltyState, now time.Time) float64 {
	dt := now.Sub(st.at)
	if dt <= 0 {
		return st.points
	}
	return st.points * math.Exp2(-float64(dt)/float64(penaltyHalfLife))
}

// add charges p one offence on protocol proto and bans it if that takes it
// to banPoints. It reports whether p is (now or already) banned.
func (ps *penalties) add(p peer.ID, proto, reason string) bool {
	if ps.counted != nil {
		ps.counted(proto, reason)
	}
	now := ps.now()
	ps.mu.Lock()
	st, ok := ps.peers[p]
	if !ok {
		if len(ps.peers) >= maxPenalised {
			ps.evictLocked(now)
		}
		st = &penaltyState{at: now}
		ps.peers[p] = st
	}
	st.points = decayed(st, now) + penaltyPoints
	st.at = now
	// (Less one point: points decay a little between offences moments
	// apart, and four of them in a row must ban.)
	banNow := st.points >= banPoints-1 && !now.Before(st.until)
	if banNow {
		st.until = now.Add(ps.banFor)
	}
	until := st.until
	ps.mu.Unlock()
	if banNow && ps.ban != nil {
		ps.ban(p, until)
	}
	return now.Before(until)
}

// evictLocked forgets the peers with the fewest points (at least one),
// never one that is banned.
func (ps *penalties) evictLocked(now time.Time) {
	var minP peer.ID
	minPts := math.Inf(1)
	for p, st := range ps.peers {
		if now.Before(st.until) {
			continue
		}
		pts := decayed(st, now)
		if pts < 1 {
			delete(ps.peers, p)
			continue
		}
		if pts < minPts {
			minP, minPts = p, pts
		}
	}
	if len(ps.peers) >= maxPenalised && minP != "" {
		delete(ps.peers, minP)
	}
}

// points returns p's current penalty points (0 if none).
func (ps *penalties) points(p peer.ID) float64 {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	st, ok := ps.peers[p]
	if !ok {
		return 0
	}
	return decayed(st, ps.now())
}

// banned reports whether p is banned now.
func (ps *penalties) banned(p peer.ID) bool {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	st, ok := ps.peers[p]
	return ok && ps.now().Before(st.until)
}

// bannedCount returns how many peers are banned now.
func (ps *penalties) bannedCount() int {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	now, n := ps.now(), 0
	for _, st := range ps.peers {
		if now.Before(st.until) {
			n++
		}
	}
	return n
}

// penalise charges the remote peer of st one offence on proto and resets
// the stream: nothing more is read from a peer that sent something
// malformed.
func (s *Service) penalise(st network.Stream, proto, reason string) {
	st.Reset()
	s.penalties.add(st.Conn().RemotePeer(), proto, reason)
}

// streamError ends a stream whose frame could not be read: with a penalty
// if the frame was malformed (errBadFrame), without one if the stream just
// broke off.
func (s *Service) streamError(st network.Stream, proto string, err error) {
	if errors.Is(err, errBadFrame) {
		s.penalise(st, proto, "malformed")
		return
	}
	st.Reset()
}

// rejectStream ends a stream at a frame its validator rejected for reason,
// with a penalty unless the reason does not prove bad faith (penalised).
func (s *Service) rejectStream(st network.Stream, proto, reason string) {
	if penalised(pubsub.ValidationReject, reason) {
		s.penalise(st, proto, reason)
		return
	}
	st.Reset()
}

// banPeer disconnects p and has the gater refuse it until until.
func (s *Service) banPeer(p peer.ID, until time.Time) {
	s.log.Warn("banning peer for malformed traffic", "peer", p, "until", until.UTC().Format(time.RFC3339))
	s.metrics.gated.Inc()
	if s.cfg.Gater != nil {
		s.cfg.Gater.BlockUntil(p, until)
	}
	// Closing from a notifee or stream handler must not wait on them.
	go s.cfg.Host.Network().ClosePeer(p)
}

// refused reports whether a stream from its remote peer must be refused
// (the peer is banned); it resets the stream if so.
func (s *Service) refused(st network.Stream) bool {
	if s.penalties.banned(st.Conn().RemotePeer()) {
		st.Reset()
		return true
	}
	return false
}
