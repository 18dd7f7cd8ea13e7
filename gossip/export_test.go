package gossip

import (
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
