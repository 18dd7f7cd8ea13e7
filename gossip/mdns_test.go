package gossip_test

import (
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
)

// TestMDNSDiscovery: two nodes with mDNS on and no bootstrap peers find
// and connect to each other.
func TestMDNSDiscovery(t *testing.T) {
	n := newNet(t, netOptions{nodes: 2, observers: true, mdns: true})
	a, b := n.nodes[0], n.nodes[1]
	waitFor(t, 20*time.Second, "mDNS discovery", func() bool {
		return a.host.Network().Connectedness(b.host.ID()) == network.Connected
	})
}
