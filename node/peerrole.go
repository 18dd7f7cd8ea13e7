package node

import "github.com/vigilnet/vigil/roster"

// Roles of /v1/peers.
const (
	// RoleWitness: the peers file binds the peer's libp2p identity to a
	// roster witness's name.
	RoleWitness = "witness"
	// RoleObserver: the peers file names the peer, under a name that is
	// no roster witness's: a known observer.
	RoleObserver = "observer"
	// RoleUnknown: nothing this node was configured with names the peer
	// (it came by peer exchange, mDNS or an inbound connection).
	RoleUnknown = "unknown"
)

// peerRole returns the role of a peer given the name the peers file gives
// its libp2p identity ("" if none). Roles come only from configuration,
// never from what a peer says or how it behaves, so a stranger is never
// labelled an observer.
func peerRole(r *roster.Roster, name string) string {
	switch {
	case name == "":
		return RoleUnknown
	case r != nil:
		if _, ok := r.Witness(name); ok {
			return RoleWitness
		}
	}
	return RoleObserver
}
