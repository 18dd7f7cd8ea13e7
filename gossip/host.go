package gossip

import (
	"fmt"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	libp2ptls "github.com/libp2p/go-libp2p/p2p/security/tls"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"
)

// DefaultListenAddrs are used when HostConfig.ListenAddrs is empty: TCP
// only. QUIC stays available (a node dials the QUIC addresses peers
// advertise and listens on one if configured), but a node does not offer it
// by default: Vigil's traffic is many small messages between a few dozen
// long-lived peers, where QUIC's strengths (fast handshakes, connection
// migration, no head-of-line blocking across streams) hardly count and
// quic-go's user-space packets and acknowledgements cost about a fifth more
// CPU per equivocation than TCP with yamux and Noise (50 nodes, one process
// each; docs/notes/benchmarks-history.md).
var DefaultListenAddrs = []string{"/ip4/0.0.0.0/tcp/4001"}

// HostConfig configures NewHost.
type HostConfig struct {
	// Identity is the node's libp2p key: separate from its cosigning key.
	Identity crypto.PrivKey
	// ListenAddrs are multiaddrs to listen on (TCP and/or QUIC v1).
	ListenAddrs []string
	// Allowlist, if not empty, is the only peers the node will connect to
	// or accept connections from.
	Allowlist []peer.ID
}

// NewHost returns a libp2p host with TCP and QUIC transports, Noise and TLS
// security, no relays, and a connection gater enforcing the allowlist. A
// listen address that cannot be bound (already in use) is an error: libp2p
// alone would go on with the others, or share the port with another
// process through SO_REUSEPORT, and peers would reach the wrong node.
func NewHost(cfg HostConfig) (host.Host, *Gater, error) {
	if cfg.Identity == nil {
		return nil, nil, fmt.Errorf("libp2p host: no identity key")
	}
	addrs := cfg.ListenAddrs
	if len(addrs) == 0 {
		addrs = DefaultListenAddrs
	}
	g := NewGater(cfg.Allowlist)
	// libp2p's default resource manager ignores DisableMetrics: it feeds
	// every stream and memory reservation to a Prometheus reporter (and
	// formats a timestamp for each), about 2 % of a busy node's CPU. This
	// is the same manager and limits, without the reporter.
	limits := rcmgr.DefaultLimits
	libp2p.SetDefaultServiceLimits(&limits)
	rm, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(limits.AutoScale()), rcmgr.WithMetricsDisabled())
	if err != nil {
		return nil, nil, fmt.Errorf("libp2p resource manager: %w", err)
	}
	h, err := libp2p.New(
		libp2p.Identity(cfg.Identity),
		// Listen below, one address at a time, to see each failure.
		libp2p.NoListenAddrs,
		// SO_REUSEPORT would let a second process listen on the same
		// address and take half the incoming connections.
		libp2p.Transport(tcp.NewTCPTransport, tcp.DisableReuseport()),
		libp2p.Transport(quic.NewTransport),
		libp2p.Security(noise.ID, noise.New),
		libp2p.Security(libp2ptls.ID, libp2ptls.New),
		libp2p.ConnectionGater(g),
		libp2p.DisableRelay(),
		libp2p.DisableMetrics(),
		libp2p.ResourceManager(rm),
	)
	if err != nil {
		rm.Close()
		return nil, nil, fmt.Errorf("starting libp2p host: %w", err)
	}
	for _, a := range addrs {
		m, err := ma.NewMultiaddr(a)
		if err == nil {
			err = h.Network().Listen(m)
		}
		if err != nil {
			h.Close()
			return nil, nil, fmt.Errorf("gossip listen address %s: %w", a, err)
		}
	}
	return h, g, nil
}

// Gater is a connection gater: an optional peer-ID allowlist plus a set of
// blocked peers that can change at run time (operators, partition tests).
type Gater struct {
	mu      sync.RWMutex
	allow   map[peer.ID]bool // nil: everyone
	blocked map[peer.ID]bool
	// until holds timed blocks (BlockUntil, ban.go).
	until map[peer.ID]time.Time
}

// NewGater returns a gater that admits only allow (everyone if empty).
func NewGater(allow []peer.ID) *Gater {
	g := &Gater{blocked: map[peer.ID]bool{}}
	if len(allow) > 0 {
		g.allow = map[peer.ID]bool{}
		for _, p := range allow {
			g.allow[p] = true
		}
	}
	return g
}

// Block refuses future connections with ps. Close existing ones with
// host.Network().ClosePeer.
func (g *Gater) Block(ps ...peer.ID) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, p := range ps {
		g.blocked[p] = true
	}
}

// Unblock lifts Block.
func (g *Gater) Unblock(ps ...peer.ID) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, p := range ps {
		delete(g.blocked, p)
	}
}

// Allowed reports whether the gater admits p.
func (g *Gater) Allowed(p peer.ID) bool {
	g.mu.RLock()
	defer g.mu.RUnlock()
	if g.blocked[p] || time.Now().Before(g.until[p]) {
		return false
	}
	return g.allow == nil || g.allow[p]
}

// InterceptPeerDial implements connmgr.ConnectionGater.
func (g *Gater) InterceptPeerDial(p peer.ID) bool { return g.Allowed(p) }

// InterceptAddrDial implements connmgr.ConnectionGater.
func (g *Gater) InterceptAddrDial(p peer.ID, _ ma.Multiaddr) bool { return g.Allowed(p) }

// InterceptAccept implements connmgr.ConnectionGater; the peer is not known
// before the security handshake.
func (g *Gater) InterceptAccept(network.ConnMultiaddrs) bool { return true }

// InterceptSecured implements connmgr.ConnectionGater.
func (g *Gater) InterceptSecured(_ network.Direction, p peer.ID, _ network.ConnMultiaddrs) bool {
	return g.Allowed(p)
}

// InterceptUpgraded implements connmgr.ConnectionGater.
func (g *Gater) InterceptUpgraded(c network.Conn) (bool, control.DisconnectReason) {
	return g.Allowed(c.RemotePeer()), 0
}
