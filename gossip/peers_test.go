package gossip_test

import (
	"context"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/vigilnet/vigil/gossip"
)

const (
	pidA = "12D3KooWGRUVh7Vm1fSgEC6ADGZqR3fTAv1KqRShN1BVZGjmt3z4"
	pidB = "12D3KooWJWoaqZhDaoEFshF7Rh1bpY9ohihFhzcW6d69Lr2NASuq"
)

func TestParsePeers(t *testing.T) {
	good := "# network peers\nvigil-peers/v1\npeer w1 " + pidA + " /ip4/10.0.0.1/tcp/4001 /ip4/10.0.0.1/udp/4001/quic-v1\npeer auditor " + pidB + "\n"
	ps, err := gossip.ParsePeers([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 2 || ps[0].Name != "w1" || len(ps[0].Info.Addrs) != 2 || ps[1].Info.ID.String() != pidB || len(ps[1].Info.Addrs) != 0 {
		t.Fatalf("got %+v", ps)
	}
	for name, in := range map[string]string{
		"no header":      "peer w1 " + pidA + "\n",
		"bad header":     "vigil-peers/v2\n",
		"bad id":         "vigil-peers/v1\npeer w1 nope\n",
		"bad addr":       "vigil-peers/v1\npeer w1 " + pidA + " /ip4/999.0.0.1/tcp/1\n",
		"addr with p2p":  "vigil-peers/v1\npeer w1 " + pidA + " /ip4/10.0.0.1/tcp/1/p2p/" + pidA + "\n",
		"duplicate name": "vigil-peers/v1\npeer w1 " + pidA + "\npeer w1 " + pidB + "\n",
		"duplicate id":   "vigil-peers/v1\npeer w1 " + pidA + "\npeer w2 " + pidA + "\n",
		"unknown line":   "vigil-peers/v1\nwitness w1 " + pidA + "\n",
		"too large":      "vigil-peers/v1\n" + strings.Repeat("#", gossip.MaxPeersFileSize),
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := gossip.ParsePeers([]byte(in)); !errors.Is(err, gossip.ErrPeersSyntax) {
				t.Fatalf("got %v, want ErrPeersSyntax", err)
			}
		})
	}
}

func TestParseAddrInfos(t *testing.T) {
	infos, err := gossip.ParseAddrInfos([]string{"/ip4/10.0.0.1/tcp/4001/p2p/" + pidA, "/ip4/10.0.0.1/udp/4001/quic-v1/p2p/" + pidA})
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != 1 || len(infos[0].Addrs) != 2 {
		t.Fatalf("got %+v", infos)
	}
	if _, err := gossip.ParseAddrInfos([]string{"/ip4/10.0.0.1/tcp/4001"}); err == nil {
		t.Fatal("accepted a bootstrap address without a peer ID")
	}
}

func TestAllowlistGater(t *testing.T) {
	newKey := func() crypto.PrivKey {
		k, _, err := crypto.GenerateEd25519Key(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	kFriend, kStranger := newKey(), newKey()
	friendID, _ := peer.IDFromPrivateKey(kFriend)
	listen := []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"}
	guarded, _, err := gossip.NewHost(gossip.HostConfig{Identity: newKey(), ListenAddrs: listen, Allowlist: []peer.ID{friendID}})
	if err != nil {
		t.Fatal(err)
	}
	defer guarded.Close()
	friend, _, _ := gossip.NewHost(gossip.HostConfig{Identity: kFriend, ListenAddrs: listen})
	defer friend.Close()
	stranger, _, _ := gossip.NewHost(gossip.HostConfig{Identity: kStranger, ListenAddrs: listen})
	defer stranger.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	target := peer.AddrInfo{ID: guarded.ID(), Addrs: guarded.Addrs()}
	if err := friend.Connect(ctx, target); err != nil {
		t.Fatalf("allowlisted peer refused: %v", err)
	}
	if err := stranger.Connect(ctx, target); err == nil {
		// The dialler may complete its side of the handshake before the
		// gater closes the connection; it must not stay connected.
		waitFor(t, 5*time.Second, "the stranger's connection to close", func() bool {
			return len(guarded.Network().ConnsToPeer(stranger.ID())) == 0
		})
	}
	if err := guarded.Connect(ctx, peer.AddrInfo{ID: stranger.ID(), Addrs: stranger.Addrs()}); err == nil {
		t.Fatal("dialled a peer outside the allowlist")
	}
}

func FuzzParsePeers(f *testing.F) {
	f.Add([]byte("vigil-peers/v1\npeer w1 " + pidA + " /ip4/10.0.0.1/tcp/4001\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		ps, err := gossip.ParsePeers(in)
		if err != nil {
			return
		}
		ids, names := map[peer.ID]bool{}, map[string]bool{}
		for _, p := range ps {
			if ids[p.Info.ID] || names[p.Name] || p.Name == "" {
				t.Fatalf("parsed duplicate or empty entries: %+v", ps)
			}
			ids[p.Info.ID], names[p.Name] = true, true
		}
	})
}
