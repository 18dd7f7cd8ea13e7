package gossip

import (
	"bytes"
	"context"
	"crypto/sha256"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Holding back self-evident evidence.
//
// When both sides of a split view are announced to the whole network at
// once, nearly every node finds the evidence itself (Service.selfEvident),
// and each finder that published it sent the network one more copy of a
// message its neighbours mostly held already: at 25 nodes about 90 of the
// 114 evidence copies a split view cost. The evidence topic is the safety
// net for nodes that miss one side; it needs the evidence published once,
// not by every finder, since pubsub forwards every copy it accepts through
// the whole mesh, holders and finders included.
//
// So a finder publishes self-evident evidence at once only if it ranks
// first, by SHA-256 of the evidence ID and the peer ID, among itself and
// its peers on the evidence topic: about one node per neighbourhood, spread
// over the network, and all alike for one evidence (the rank needs no
// coordination). Any other finder holds it back and publishes it only if no
// peer sent it a copy on the topic within a hold that grows with its rank
// (holdFor): a finder ranking first that missed one side, or a network
// where the first-ranked finders are cut off, costs detection that hold
// and no more. A copy a peer sent is proof that the topic carries the
// evidence: this node's pubsub forwards it to its own mesh.
//
// Nothing is trusted: a copy counts only once the validator verified it
// (validator.evidence), and a peer can at most make this node wait its
// hold (a low-ranking peer ID) and then publish.

const (
	// defaultEvidenceHold is the hold of the finder ranking second in its
	// neighbourhood: a split view's evidence crosses a 50-node network's
	// mesh, three or four hops of one verification each, well within it.
	defaultEvidenceHold = 200 * time.Millisecond
	// evidenceHoldStep is added per further rank, so that where no
	// neighbourhood leader published, the held finders do not all publish
	// at once: the first to do so reaches the others.
	evidenceHoldStep = 50 * time.Millisecond
	// maxEvidenceHold bounds the hold whatever the rank.
	maxEvidenceHold = time.Second
)

// evidenceHold decides, for self-evident evidence this node found, when
// it publishes. A zero atOnce holds every finder back (tests of the
// safety net).
type evidenceHold struct {
	// atOnce is how many of the best-ranked nodes of a neighbourhood
	// publish at once (1).
	atOnce int
	// base is the hold of the first rank that holds back.
	base time.Duration
}

func defaultHold() evidenceHold { return evidenceHold{atOnce: 1, base: defaultEvidenceHold} }

// holdFor returns how long self holds back evidence id, given its peers on
// the evidence topic: 0 (publish at once) if self ranks among the first
// atOnce of itself and peers, else a hold that grows with its rank. A
// peer listed twice, or self among peers, counts once.
func (h evidenceHold) holdFor(id string, self peer.ID, peers []peer.ID) time.Duration {
	mine := evidenceRank(id, self)
	ahead, seen := 0, map[peer.ID]bool{self: true}
	for _, p := range peers {
		if seen[p] {
			continue
		}
		seen[p] = true
		r := evidenceRank(id, p)
		if c := bytes.Compare(r[:], mine[:]); c < 0 || (c == 0 && p < self) {
			ahead++
		}
	}
	if ahead < h.atOnce {
		return 0
	}
	return min(h.base+time.Duration(ahead-h.atOnce)*evidenceHoldStep, maxEvidenceHold)
}

// evidenceRank is p's rank key for evidence id: lower ranks first.
func evidenceRank(id string, p peer.ID) [32]byte {
	b := make([]byte, 0, len(id)+1+len(p))
	b = append(b, id...)
	b = append(b, 0)
	b = append(b, p...)
	return sha256.Sum256(b)
}

// publishFound publishes self-evident evidence this node found and stored
// at once or, as its rank says (evidenceHold), after a hold unless a peer
// sent it a copy on the evidence topic meanwhile.
func (s *Service) publishFound(ctx context.Context, id string, data []byte) {
	d := s.det.hold.holdFor(id, s.self, s.evidenceT.ListPeers())
	if d == 0 {
		s.metrics.evidenceHeld.WithLabelValues("at_once").Inc()
		s.publishEvidence(ctx, id, data)
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		if s.det.wasHeard(id) {
			s.metrics.evidenceHeld.WithLabelValues("heard").Inc()
			return
		}
		s.metrics.evidenceHeld.WithLabelValues("published").Inc()
		s.publishEvidence(s.ctx, id, data)
	}()
}

// heardEvidence records that a peer sent evidence id on the evidence
// topic and the validator verified it.
func (d *detector) heardEvidence(id string) {
	d.heard.update(id, func(bool, bool) bool { return true })
}

// wasHeard reports whether a peer sent evidence id on the evidence topic
// (heardEvidence).
func (d *detector) wasHeard(id string) bool {
	_, ok := d.heard.get(id)
	return ok
}

func (s *Service) publishEvidence(ctx context.Context, id string, data []byte) {
	if err := s.evidenceT.Publish(ctx, data); err != nil && ctx.Err() == nil {
		s.log.Error("publishing evidence", "id", id, "err", err)
	}
}
