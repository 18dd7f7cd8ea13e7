package node

import (
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// TestRecoveryPeers: how many peers must answer a witness's recovery
// query after a start, and whose answers count.
func TestRecoveryPeers(t *testing.T) {
	ids := make([]peer.ID, 3)
	keys := make([]crypto.PrivKey, 3)
	for i := range ids {
		k, _, err := crypto.GenerateEd25519Key(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		keys[i] = k
		if ids[i], err = peer.IDFromPrivateKey(k); err != nil {
			t.Fatal(err)
		}
	}
	self := keys[0]
	boot := fmt.Sprintf("/ip4/127.0.0.1/tcp/4001/p2p/%s", ids[1])
	peersFile := filepath.Join(t.TempDir(), "peers")
	// The peers file names every node, this one included.
	content := fmt.Sprintf("vigil-peers/v1\npeer w0 %s\npeer w1 %s\npeer w2 %s\n", ids[0], ids[1], ids[2])
	if err := os.WriteFile(peersFile, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		gc       GossipConfig
		want     int
		wantPeer int // how many peers' answers count (0: any peer's)
	}{
		{"standalone", GossipConfig{}, 0, 0},
		{"gossip off", GossipConfig{Disabled: true, Bootstrap: []string{boot}}, 0, 0},
		{"one bootstrap peer", GossipConfig{Bootstrap: []string{boot}}, 1, 1},
		{"peers file, self excluded", GossipConfig{Peers: peersFile, Bootstrap: []string{boot}}, 1, 2},
		{"more asked than configured", GossipConfig{Peers: peersFile, RecoveryPeers: 5}, 2, 2},
		{"two asked", GossipConfig{Peers: peersFile, RecoveryPeers: 2}, 2, 2},
		{"turned off", GossipConfig{Peers: peersFile, RecoveryPeers: -1}, 0, 0},
		{"mDNS only", GossipConfig{MDNS: true}, 1, 0},
		{"mDNS is not capped by the configured peers", GossipConfig{MDNS: true, Bootstrap: []string{boot}, RecoveryPeers: 3}, 3, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := &Node{cfg: Config{Gossip: tt.gc}, keys: &Keys{P2P: self}}
			need, peers, err := n.recoveryPeers()
			if err != nil {
				t.Fatal(err)
			}
			if need != tt.want || len(peers) != tt.wantPeer {
				t.Fatalf("need %d of %d peers (%v), want %d of %d", need, len(peers), peers, tt.want, tt.wantPeer)
			}
			for _, p := range peers {
				if p == ids[0] {
					t.Fatal("the node counts itself as a peer")
				}
			}
		})
	}
}
