package gossip_test

import (
	"crypto/rand"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/vigilnet/vigil/gossip"
)

// A second host on a gossip address already in use must fail to start, as
// an HTTP listener would, whether it listens on that address alone or on
// others as well: libp2p would otherwise share the port (SO_REUSEPORT) or
// carry on with the addresses that did bind.
func TestNewHostRefusesAddressInUse(t *testing.T) {
	newKey := func() crypto.PrivKey {
		k, _, err := crypto.GenerateEd25519Key(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	first, _, err := gossip.NewHost(gossip.HostConfig{Identity: newKey(), ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}})
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	taken := first.Addrs()[0].String()
	for _, tc := range []struct {
		name  string
		addrs []string
	}{
		{"same address", []string{taken}},
		{"with another free address", []string{"/ip4/127.0.0.1/udp/0/quic-v1", taken}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, _, err := gossip.NewHost(gossip.HostConfig{Identity: newKey(), ListenAddrs: tc.addrs})
			if err == nil {
				h.Close()
				t.Fatalf("second host on %s started; want an error", taken)
			}
			if !strings.Contains(err.Error(), taken) {
				t.Errorf("error %q does not name %s", err, taken)
			}
		})
	}
}
