package gossip

import (
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// noTrace is a pubsub.RawTracer that does nothing. The node's tracers
// (meshTracker, arrivals) embed it and define only the events they follow.
type noTrace struct{}

func (noTrace) Graft(peer.ID, string)                                {}
func (noTrace) Prune(peer.ID, string)                                {}
func (noTrace) Join(string)                                          {}
func (noTrace) Leave(string)                                         {}
func (noTrace) ValidateMessage(*pubsub.Message)                      {}
func (noTrace) DeliverMessage(*pubsub.Message)                       {}
func (noTrace) RejectMessage(*pubsub.Message, string)                {}
func (noTrace) DuplicateMessage(*pubsub.Message)                     {}
func (noTrace) ThrottlePeer(peer.ID)                                 {}
func (noTrace) RecvRPC(*pubsub.RPC)                                  {}
func (noTrace) SendRPC(*pubsub.RPC, peer.ID)                         {}
func (noTrace) SendRPCCompleted(*pubsub.RPC, peer.ID, time.Duration) {}
func (noTrace) DropRPC(*pubsub.RPC, peer.ID)                         {}
func (noTrace) UndeliverableMessage(*pubsub.Message)                 {}
func (noTrace) OnNewOutboundStream(peer.ID, protocol.ID)             {}
func (noTrace) OnClosedOutboundStream(peer.ID)                       {}

var _ pubsub.RawTracer = noTrace{}
