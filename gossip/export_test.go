package gossip

import (
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/vigilnet/vigil/tlog"
)

// NextHop returns the peer s hands its cosignature of signedNote's
// checkpoint to: empty if s collects it itself or aggregation is off.
func NextHop(s *Service, signedNote []byte) peer.ID {
	cp, err := tlog.ParseCheckpoint(noteText(signedNote))
	if s.agg == nil || err != nil {
		return ""
	}
	hop, _ := s.agg.route(cpKey{cp.Origin, cp.Size, cp.Root})
	return hop
}

// Ranking returns the witnesses s ranks for aggregating signedNote's
// checkpoint, best first (peer IDs), or nil if aggregation is off.
func Ranking(s *Service, signedNote []byte) []peer.ID {
	cp, err := tlog.ParseCheckpoint(noteText(signedNote))
	if s.agg == nil || err != nil {
		return nil
	}
	var ids []peer.ID
	for _, w := range s.agg.ranking(cpKey{cp.Origin, cp.Size, cp.Root}) {
		ids = append(ids, w.id)
	}
	return ids
}

// HoldAllEvidence makes s hold back every self-evident evidence it finds
// for hold (plus a step per rank) before publishing it unless a peer sent
// it meanwhile: no finder publishes at once (evidencehold.go).
func HoldAllEvidence(s *Service, hold time.Duration) {
	s.det.hold = evidenceHold{atOnce: 0, base: hold}
}
