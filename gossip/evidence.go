package gossip

import (
	"context"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/mod/sumdb/note"

	"github.com/vigilnet/vigil/gossip/evidence"
	vpb "github.com/vigilnet/vigil/proto"
	"github.com/vigilnet/vigil/store"
)

// raise verifies evidence this node found, stores it and, if it is new,
// publishes it on the evidence topic: at once, or, if it is self-evident
// (selfEvident), as its rank among its peers says (evidencehold.go), since
// its neighbours then find it too. Evidence this node holds
// already (its ID covers the kind, the accused key and both checkpoints,
// not the signatures or who found it) is left alone: when both sides of a
// split view reach every node at once, most nodes receive the evidence from
// a neighbour before or while their own detector finds it.
func (s *Service) raise(ctx context.Context, e *vpb.Evidence) {
	id := evidence.ID(e)
	if s.holds(id) {
		return
	}
	e.Observer = s.cfg.Name
	e.DetectedUnixMs = time.Now().UnixMilli()
	f, err := s.verifyEvidence(e)
	if err != nil {
		// The detector only raises what it checked; this is a bug.
		s.log.Error("detector produced invalid evidence", "err", err)
		return
	}
	data, err := vpb.MarshalEvidence(e)
	if err != nil {
		s.log.Error("encoding evidence", "err", err)
		return
	}
	selfEvident := s.selfEvident(e, f)
	push := pushAny
	if selfEvident {
		push = pushNone
	}
	added := s.storeEvidence(ctx, id, e, f, data, "detected", "", push)
	if !added {
		return
	}
	if selfEvident {
		s.publishFound(ctx, id, data) // at once or after a hold (evidencehold.go)
		return
	}
	s.publishEvidence(ctx, id, data)
}

// receiveEvidence stores evidence accepted from the evidence topic. It
// pushes it to the peers outside its mesh unless it is self-evident here
// (selfEvident): then both sides reached this node in gossip, through a
// mesh its peers share, and they find it themselves. At 50 nodes the
// pushes of nodes that took the evidence from the topic before their own
// detector found it were about a hundred streams per split view, nearly
// all to peers that held it or were finding it.
func (s *Service) receiveEvidence(ctx context.Context, ve *verifiedEvidence) {
	if ve.from == s.self {
		return // our own publication, stored before it was sent
	}
	data, err := vpb.MarshalEvidence(ve.e)
	if err != nil {
		return
	}
	push := pushOffMesh
	if s.selfEvident(ve.e, ve.finding) {
		push = pushNone
	}
	s.storeEvidence(ctx, ve.id, ve.e, ve.finding, data, "gossip", ve.from, push)
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

// verifyEvidence is evidence.Verify against the current roster, through
// the node's cache of verified signatures (sigcache.go): the checkpoints of
// a split view reached this node in gossip, so their signatures are
// nearly always verified already.
func (s *Service) verifyEvidence(e *vpb.Evidence) (*evidence.Finding, error) {
	r := s.cfg.Roster()
	return evidence.VerifyWith(e, r, func(vs ...note.Verifier) []note.Verifier { return s.sigs.wrap(r, vs...) })
}

// holds reports whether this node stored, or is storing, evidence id
// (since it started).
func (s *Service) holds(id string) bool {
	_, ok := s.held.get(id)
	return ok
}

// claim marks evidence id as being stored by the caller; it reports false
// if it is stored or being stored already.
func (s *Service) claim(id string) bool {
	first := false
	s.held.update(id, func(_ bool, held bool) bool {
		first = !held
		return true
	})
	return first
}

// pushMode says which peers storeEvidence pushes new evidence to.
type pushMode int

const (
	// pushNone: the neighbours have it or find it themselves (selfEvident).
	pushNone pushMode = iota
	// pushAny: any peers (evidence this node found).
	pushAny
	// pushOffMesh: peers outside this node's mesh of the evidence topic
	// (evidence taken from the topic, which pubsub forwards to the mesh).
	pushOffMesh
	// pushOffTopic: peers not subscribed to the evidence topic (evidence
	// taken from a stream, which this node then publishes: flood
	// publishing sends it to every subscribed peer).
	pushOffTopic
)

// storeEvidence stores verified evidence and, the first time this node
// sees it, pushes it to peers as push says; from is the peer it came from
// (its author on the evidence topic, the sender on a stream), which is not
// pushed to, or empty if this node found it.
func (s *Service) storeEvidence(ctx context.Context, id string, e *vpb.Evidence, f *evidence.Finding, data []byte, via string, from peer.ID, push pushMode) bool {
	// One store write per evidence: a copy that arrives while another is
	// being written (the detector and the topic deliver the same evidence
	// at nearly the same moment) or after is not new. A write that fails
	// gives the claim back, so that a later copy is written.
	if !s.claim(id) {
		return false
	}
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
	if s.firstSeen(id) && push != pushNone {
		s.pushEvidence(data, from, push)
	}
	added, err := s.cfg.Store.PutEvidence(ctx, rec)
	if err != nil {
		s.held.remove(id)
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
// random, other than from (which has it) and, as mode says, other than
// those pubsub sends it to from this node anyway; besides the evidence
// topic. pubsub validates the messages of both topics in one FIFO queue, in
// which evidence would wait at every hop behind the burst of routine
// sightings that the same split view causes. The receiver checks it like
// gossip (receiveSync) and, if it is new to it, stores, publishes and
// pushes it on: each node pushes each evidence once.
//
// Relays leave out the peers pubsub reaches from them: a relay that took
// the evidence from the topic forwards it to its mesh, and one that took
// it from a stream publishes it to every subscribed peer, so a push to
// those peers was a second copy of what this node sent them (at 25 nodes,
// 50 of 55 pushes per split view arrived where the evidence was known).
// Peers outside the mesh hear of it only by gossip at a later heartbeat,
// and peers not subscribed not at all: they are still pushed to.
func (s *Service) pushEvidence(data []byte, from peer.ID, mode pushMode) {
	if s.ctx.Err() != nil {
		return
	}
	var reached map[peer.ID]bool
	switch mode {
	case pushOffMesh:
		_, mesh := s.MeshPeers()
		reached = setOf(mesh)
	case pushOffTopic:
		reached = setOf(s.evidenceT.ListPeers())
	}
	peers := slices.DeleteFunc(s.cfg.Host.Network().Peers(), func(p peer.ID) bool { return p == from || reached[p] })
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

func setOf(ps []peer.ID) map[peer.ID]bool {
	m := make(map[peer.ID]bool, len(ps))
	for _, p := range ps {
		m[p] = true
	}
	return m
}
