package gossip

import (
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// maxTimedBlocks bounds the timed blocks a Gater keeps; expired ones are
// dropped when it is reached.
const maxTimedBlocks = 10_000

// BlockUntil refuses connections with p, on dial and accept, until the
// given time (a ban for misbehaviour, penalty.go). It is independent of
// Block: lifting one leaves the other in force. Existing connections are
// not closed: use host.Network().ClosePeer.
func (g *Gater) BlockUntil(p peer.ID, until time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.until == nil {
		g.until = map[peer.ID]time.Time{}
	}
	if len(g.until) >= maxTimedBlocks {
		now := time.Now()
		for q, t := range g.until {
			if !now.Before(t) {
				delete(g.until, q)
			}
		}
	}
	if until.After(g.until[p]) {
		g.until[p] = until
	}
}
