package gossip

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// ErrPeersSyntax is returned (wrapped, with the line number) for a peers
// file that does not parse.
var ErrPeersSyntax = errors.New("peers file syntax error")

// MaxPeersFileSize bounds a peers file.
const MaxPeersFileSize = 1 << 20

// Peer is one entry of a peers file: a node's libp2p identity and addresses,
// bound to its roster witness name (or an observer's label).
type Peer struct {
	Name string
	Info peer.AddrInfo
}

// ParsePeers parses a Vigil peers file, which says what tlog-policy cannot:
// how to reach each witness over libp2p.
//
//	# comment
//	vigil-peers/v1
//	peer <name> <libp2p peer ID> [<multiaddr>...]
//
// The header is the first non-comment line. Names and peer IDs are unique.
// A peer without addresses can still be allowlisted; it is found by peer
// exchange or mDNS.
func ParsePeers(data []byte) ([]Peer, error) {
	if len(data) > MaxPeersFileSize {
		return nil, fmt.Errorf("%w: file larger than %d bytes", ErrPeersSyntax, MaxPeersFileSize)
	}
	var out []Peer
	names, ids := map[string]bool{}, map[peer.ID]bool{}
	header := false
	sc := bufio.NewScanner(bytes.NewReader(data))
	for ln := 1; sc.Scan(); ln++ {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		fail := func(format string, args ...any) error {
			return fmt.Errorf("%w: line %d: %s", ErrPeersSyntax, ln, fmt.Sprintf(format, args...))
		}
		if !header {
			if len(f) != 1 || f[0] != "vigil-peers/v1" {
				return nil, fail("first line must be vigil-peers/v1")
			}
			header = true
			continue
		}
		if f[0] != "peer" || len(f) < 3 {
			return nil, fail("want: peer <name> <peer ID> [<multiaddr>...]")
		}
		id, err := peer.Decode(f[2])
		if err != nil {
			return nil, fail("bad peer ID %q: %v", f[2], err)
		}
		if names[f[1]] || ids[id] {
			return nil, fail("peer %q or ID %s listed twice", f[1], id)
		}
		names[f[1]], ids[id] = true, true
		p := Peer{Name: f[1], Info: peer.AddrInfo{ID: id}}
		for _, s := range f[3:] {
			a, err := ma.NewMultiaddr(s)
			if err != nil {
				return nil, fail("bad multiaddr %q: %v", s, err)
			}
			if _, last := ma.SplitLast(a); last != nil && last.Protocol().Code == ma.P_P2P {
				return nil, fail("multiaddr %q must not end in /p2p/<id>; the ID is its own field", s)
			}
			p.Info.Addrs = append(p.Info.Addrs, a)
		}
		out = append(out, p)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrPeersSyntax, err)
	}
	if !header {
		return nil, fmt.Errorf("%w: missing vigil-peers/v1 header", ErrPeersSyntax)
	}
	return out, nil
}

// LoadPeers reads and parses a peers file.
func LoadPeers(path string) ([]Peer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading peers file: %w", err)
	}
	return ParsePeers(b)
}

// ParseAddrInfos parses bootstrap multiaddrs of the form
// <multiaddr>/p2p/<peer ID>, merging addresses of the same peer.
func ParseAddrInfos(addrs []string) ([]peer.AddrInfo, error) {
	mas := make([]ma.Multiaddr, 0, len(addrs))
	for _, s := range addrs {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			return nil, fmt.Errorf("bootstrap address %q: %w", s, err)
		}
		mas = append(mas, a)
	}
	infos, err := peer.AddrInfosFromP2pAddrs(mas...)
	if err != nil {
		return nil, fmt.Errorf("bootstrap addresses: %w", err)
	}
	return infos, nil
}

// The peers a node reports (ScoreInspect, which feeds /v1/peers and the
// dashboard). Pubsub keeps the score of a peer that left for an hour, so
// that leaving does not wash a bad score; reporting all of them let 500
// identities that connect and leave fill the list for that hour. A node
// reports the peers it is connected to, the configured ones (bootstrap,
// peers file) and, of the others that left, only the maxDepartedPeers most
// recent and none longer than Config.ForgetPeersAfter.
const (
	defaultForgetPeersAfter = 5 * time.Minute
	maxDepartedPeers        = 64
)

// peerRoll decides which peers ScoreInspect reports.
type peerRoll struct {
	configured  map[peer.ID]bool
	forgetAfter time.Duration
	// departed holds when unconfigured peers left, most recent kept.
	departed *lru[peer.ID, time.Time]
}

func newPeerRoll(trusted map[peer.ID]bool, named []Peer, forgetAfter time.Duration) *peerRoll {
	r := &peerRoll{configured: map[peer.ID]bool{}, forgetAfter: forgetAfter, departed: newLRU[peer.ID, time.Time](maxDepartedPeers)}
	for p := range trusted {
		r.configured[p] = true
	}
	for _, p := range named {
		r.configured[p.Info.ID] = true
	}
	return r
}

// connected notes that p is connected (again).
func (r *peerRoll) connected(p peer.ID) { r.departed.remove(p) }

// left notes that p's last connection closed.
func (r *peerRoll) left(p peer.ID) {
	if !r.configured[p] {
		r.departed.update(p, func(time.Time, bool) time.Time { return time.Now() })
	}
}

// filter returns the scores of the peers to report; connected reports a
// live connection (nil: none).
func (r *peerRoll) filter(scores map[peer.ID]float64, connected func(peer.ID) bool) map[peer.ID]float64 {
	out := make(map[peer.ID]float64, len(scores))
	now := time.Now()
	for p, sc := range scores {
		if r.configured[p] || (connected != nil && connected(p)) {
			out[p] = sc
			continue
		}
		if at, ok := r.departed.get(p); ok && now.Sub(at) < r.forgetAfter {
			out[p] = sc
		}
	}
	return out
}
