package gossip

import (
	"context"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/vigilnet/vigil/gossip/evidence"
	vpb "github.com/vigilnet/vigil/proto"
	"github.com/vigilnet/vigil/store"
)

// raise verifies evidence this node found, stores it and, if it is new,
// publishes it on the evidence topic at once.
func (s *Service) raise(ctx context.Context, e *vpb.Evidence) {
	e.Observer = s.cfg.Name
	e.DetectedUnixMs = time.Now().UnixMilli()
	f, err := evidence.Verify(e, s.cfg.Roster())
	if err != nil {
		// The detector only raises what it checked; this is a bug.
		s.log.Error("detector produced invalid evidence", "err", err)
		return
	}
	id := evidence.ID(e)
	data, err := vpb.MarshalEvidence(e)
	if err != nil {
		s.log.Error("encoding evidence", "err", err)
		return
	}
	added := s.storeEvidence(ctx, id, e, f, data, "detected", "", !s.selfEvident(e, f))
	if !added {
		return
	}
	if err := s.evidenceT.Publish(ctx, data); err != nil {
		s.log.Error("publishing evidence", "id", id, "err", err)
	}
}

// receiveEvidence stores evidence accepted from the evidence topic.
func (s *Service) receiveEvidence(ctx context.Context, ve *verifiedEvidence) {
	if ve.from == s.self {
		return // our own publication, stored before it was sent
	}
	data, err := vpb.MarshalEvidence(ve.e)
	if err != nil {
		return
	}
	s.storeEvidence(ctx, ve.id, ve.e, ve.finding, data, "gossip", ve.from, true)
}

// selfEvident reports whether the evidence this node found is evidence its
// gossip neighbours find by themselves, so that pushing it to them
// (pushEvidence) would only send them what they have: it needs nothing but
// the two checkpoints (same-size log equivocation: no consistency proof,
// which a peer might be unable to fetch), both are in gossip (they went
// through the checkpoints topic here, or through aggregation, which
// announces them), and this node's mesh is not empty. A node that learnt
// either side otherwise (a catch-up sync) pushes as before. When both
// sides of a split view are announced to the whole network at once,
// nearly every node finds the evidence itself, and their pushes, some 400
// streams per split view at 50 nodes, arrived where it was already known;
// the evidence topic still carries it to everyone.
func (s *Service) selfEvident(e *vpb.Evidence, f *evidence.Finding) bool {
	if e.Kind != vpb.Kind_KIND_LOG_EQUIVOCATION_SAME_SIZE || !s.val.wasGossiped(f.A) || !s.val.wasGossiped(f.B) {
		return false
	}
	cp, _ := s.MeshPeers()
	return len(cp) > 0
}

// storeEvidence stores verified evidence and, the first time this node
// sees it, pushes it to its peers if push is set; from is the peer it came
// from (its author on the evidence topic, the sender on a stream), which
// is not pushed to, or empty if this node found it.
func (s *Service) storeEvidence(ctx context.Context, id string, e *vpb.Evidence, f *evidence.Finding, data []byte, via string, from peer.ID, push bool) bool {
	s.gate.enter()
	defer s.gate.exit()
	rec := store.EvidenceRecord{
		ID:        id,
		Kind:      vpb.KindName(e.Kind),
		Origin:    f.Origin,
		Witness:   f.Witness,
		Statement: f.Statement(),
		Stored:    time.Now(),
		Data:      data,
	}
	// Spread it before the durable write, which on a busy node can wait
	// for a commit in progress: the peers need not wait for this node's
	// disk (the evidence is verified; a copy lost here is theirs).
	if s.firstSeen(id) && push {
		s.pushEvidence(data, from)
	}
	added, err := s.cfg.Store.PutEvidence(ctx, rec)
	if err != nil {
		s.log.Error("storing evidence", "id", id, "err", err)
		return false
	}
	if !added {
		return false
	}
	s.sawOwnEvidence(ctx, e)
	s.metrics.evidence.WithLabelValues(rec.Kind, via).Inc()
	// Logged once per node: PutEvidence adds each ID once.
	s.log.Warn("split view evidence", "id", id, "kind", rec.Kind, "origin", rec.Origin, "via", via, "statement", rec.Statement)
	if s.cfg.OnEvidence != nil {
		s.cfg.OnEvidence(rec)
	}
	return true
}

// firstSeen reports whether this is the first time storeEvidence sees id
// since the service started (then its copy is pushed to the peers).
func (s *Service) firstSeen(id string) bool {
	first := false
	s.spread.update(id, func(_ bool, seen bool) bool {
		first = !seen
		return true
	})
	return first
}

// evidencePushFanout bounds the peers pushEvidence sends one evidence to:
// an epidemic of fan-out 8 reaches a connected network of 50 in two or
// three hops, and the evidence topic carries it besides. The node that
// found the evidence used to send it to every peer, on the reasoning that
// few nodes find it themselves; but when a split view's two checkpoints
// reach the whole network at once (aggregate.go announces each side as one
// message), nearly every node finds it, and their pushes to every peer,
// nearly all to nodes that had it, were about a fifth of what a split view
// cost 50 nodes on one machine (docs/notes/benchmarks-history.md). Most nodes that find
// it now push it to no one (selfEvident).
const evidencePushFanout = 8

// pushEvidence sends evidence this node is storing, on the catch-up sync
// protocol, straight to up to evidencePushFanout of its peers chosen at
// random, other than from (which has it); besides the evidence topic.
// pubsub validates the messages of both topics in one FIFO queue, in which
// evidence would wait at every hop behind the burst of routine sightings
// that the same split view causes. The receiver checks it like gossip
// (receiveSync) and, if it is new to it, stores, publishes and pushes it
// on: each node pushes each evidence once.
func (s *Service) pushEvidence(data []byte, from peer.ID) {
	if s.ctx.Err() != nil {
		return
	}
	peers := slices.DeleteFunc(s.cfg.Host.Network().Peers(), func(p peer.ID) bool { return p == from })
	if len(peers) > evidencePushFanout {
		rand.Shuffle(len(peers), func(i, j int) { peers[i], peers[j] = peers[j], peers[i] })
		peers = peers[:evidencePushFanout]
	}
	s.metrics.pushes.Add(float64(len(peers)))
	for _, p := range peers {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if err := s.sendFrames(s.ctx, p, s.syncProtocol(), []syncFrame{{frameEvidence, data}}); err != nil {
				s.log.Debug("pushing evidence", "peer", p, "err", err)
			}
		}()
	}
}
