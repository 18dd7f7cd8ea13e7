package gossip

import (
	"sync"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"
)

// meshTracker follows, from pubsub's trace events, which peers are in this
// node's mesh for each topic: the peers it forwards every message to.
// pubsub keeps its mesh to itself, and a peer known to subscribe
// (TopicPeers) is not yet one messages are forwarded to: until the next
// heartbeat grafts it, it gets only what its neighbours publish themselves.
// A message forwarded in that gap never reaches it: grafting sends nothing
// already seen, and gossip (IHAVE) goes only to peers outside the mesh.
// So whoever needs every message to reach every node, a test or the testnet
// harness, waits for the meshes, not the subscriptions, before publishing;
// operators see the mesh sizes (vigil_gossip_mesh_peers).
//
// pubsub calls it from its event loop, so it only updates a map and a gauge.
type meshTracker struct {
	noTrace
	mu    sync.Mutex
	mesh  map[string]map[peer.ID]struct{}
	kinds map[string]string // topic → the gauge's topic label
	gauge *prometheus.GaugeVec
}

func newMeshTracker(kinds map[string]string, gauge *prometheus.GaugeVec) *meshTracker {
	for _, k := range kinds {
		gauge.WithLabelValues(k).Set(0)
	}
	return &meshTracker{mesh: map[string]map[peer.ID]struct{}{}, kinds: kinds, gauge: gauge}
}

// peers returns topic's mesh.
func (m *meshTracker) peers(topic string) []peer.ID {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]peer.ID, 0, len(m.mesh[topic]))
	for p := range m.mesh[topic] {
		out = append(out, p)
	}
	return out
}

func (m *meshTracker) Graft(p peer.ID, topic string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.mesh[topic] == nil {
		m.mesh[topic] = map[peer.ID]struct{}{}
	}
	m.mesh[topic][p] = struct{}{}
	m.set(topic)
}

func (m *meshTracker) Prune(p peer.ID, topic string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.mesh[topic], p)
	m.set(topic)
}

// OnClosedOutboundStream is how pubsub reports a peer gone: it takes the
// peer out of every mesh without a Prune event.
func (m *meshTracker) OnClosedOutboundStream(p peer.ID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for topic, peers := range m.mesh {
		if _, ok := peers[p]; ok {
			delete(peers, p)
			m.set(topic)
		}
	}
}

// set updates topic's gauge; m.mu is held.
func (m *meshTracker) set(topic string) {
	if k, ok := m.kinds[topic]; ok {
		m.gauge.WithLabelValues(k).Set(float64(len(m.mesh[topic])))
	}
}

var _ pubsub.RawTracer = (*meshTracker)(nil)
