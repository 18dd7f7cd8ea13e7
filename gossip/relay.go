package gossip

import (
	"bufio"
	"context"
	"io"
	"math/rand/v2"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	vpb "github.com/vigilnet/vigil/proto"
)

// Relaying a last stop's collection to the checkpoint's first-ranked
// witness.
//
// Hand-offs go only to connected witnesses that rank higher, so on a
// network that is not a full mesh the cosignatures of one checkpoint end at
// several last stops: witnesses that no better-ranked witness is connected
// to (three to five per checkpoint among the testnet's 48 witnesses, whose
// leaves have 3 to 8 peers). Each published what it collected: a distinct
// gossip message (the message ID covers the signatures) that every node
// validated, merged and forwarded, most of what a split view still cost 50
// nodes on one machine (docs/notes/benchmarks-history.md).
//
// So a last stop that is not the checkpoint's first-ranked witness asks its
// peers, one at a time and at most maxRelayTries of them, to pass its
// collection on to that witness. A peer connected to it checks the note
// like any hand-off and passes it on; one that is not declines. The
// first-ranked witness waits one window longer than other last stops
// before it publishes, so that what is relayed to it goes out in its one
// note. If no peer takes the collection, the last stop publishes it itself,
// as before; and if gossip has not carried every cosignature of a relayed
// collection back to it within the fallback delay (a peer or the
// first-ranked witness withheld it), it publishes it then.
//
// On the cosign protocol a relay request is one frame of type frameRelay
// (a Sighting), answered with one byte: relayPassed or relayDeclined. A
// node that does not know the frame type resets the stream, which counts
// as declined.
const (
	frameRelay    = 3
	relayPassed   = 1
	relayDeclined = 0
	// maxRelayTries bounds the peers one last stop asks (8 found a peer
	// connected to the first-ranked witness for all but one or two of the
	// seven last stops per split view in the 50-node testnet; 4, for two).
	maxRelayTries = 8
	// relayTimeout bounds a last stop's requests together, answers
	// included.
	relayTimeout = time.Second
)

// relay asks this node's peers to pass signedNote, what it collected for a
// checkpoint, to the checkpoint's first-ranked witness first (route); it
// reports whether one did, and then schedules the fallback. A node that
// ranks first itself relays nothing.
func (a *aggregator) relay(ctx context.Context, first peer.ID, signedNote []byte) bool {
	if first == "" || first == a.s.self {
		return false
	}
	b, err := a.collectedSighting(signedNote)
	if err != nil {
		return false
	}
	peers := a.s.cfg.Host.Network().Peers()
	rand.Shuffle(len(peers), func(i, j int) { peers[i], peers[j] = peers[j], peers[i] })
	askCtx, cancel := context.WithTimeout(ctx, relayTimeout)
	defer cancel()
	for i, p := range peers {
		if i == maxRelayTries || askCtx.Err() != nil {
			break
		}
		if !a.askRelay(askCtx, p, b) {
			continue
		}
		a.s.metrics.relays.WithLabelValues("relayed").Inc()
		a.after(a.fallback, a.unlessBack(ctx, signedNote, vpb.Source_SOURCE_GOSSIP, a.s.metrics.relays.WithLabelValues("fallback")))
		return true
	}
	a.s.metrics.relays.WithLabelValues("unrelayed").Inc()
	return false
}

// askRelay sends one relay request to p and reports whether p passed the
// sighting on.
func (a *aggregator) askRelay(ctx context.Context, p peer.ID, sighting []byte) bool {
	st, err := a.s.cfg.Host.NewStream(ctx, p, a.s.cosignProtocol())
	if err != nil {
		return false
	}
	defer st.Close()
	if d, ok := ctx.Deadline(); ok {
		st.SetDeadline(d)
	}
	w := bufio.NewWriter(st)
	if err := writeFrame(w, frameRelay, sighting); err != nil || w.Flush() != nil || st.CloseWrite() != nil {
		st.Reset()
		return false
	}
	var answer [1]byte
	if _, err := io.ReadFull(st, answer[:]); err != nil {
		st.Reset()
		return false
	}
	return answer[0] == relayPassed
}

// pass answers a relay request for a checked sighting: it hands it to the
// checkpoint's first-ranked witness if this node is connected to it (or
// collects it, if it is that witness), and reports whether it did.
func (a *aggregator) pass(ctx context.Context, sg *sighting, data []byte) bool {
	key := cpKey{sg.origin, sg.cp.Size, sg.cp.Root}
	switch _, first := a.route(key); {
	case first == a.s.self:
		a.det.process(ctx, sg)
		a.collect(ctx, sg)
	case first == "" || a.s.cfg.Host.Network().Connectedness(first) != network.Connected || !a.send(ctx, first, data):
		a.s.metrics.relays.WithLabelValues("declined").Inc()
		return false
	}
	a.s.metrics.relays.WithLabelValues("passed").Inc()
	return true
}
