package gossip

import (
	"context"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"

	vpb "github.com/vigilnet/vigil/proto"
)

// sightingChecks is what the aggregator needs of the sighting validator.
type sightingChecks interface {
	isKnown(signedNote []byte) bool
	checkLocalWith(data []byte, msg *vpb.Sighting, remember bool) (*sighting, pubsub.ValidationResult, string)
	peekSighting(data []byte, from peer.ID) (*sighting, pubsub.ValidationResult, string)
	markGossiped(s *sighting)
	allow(p peer.ID) bool
	result(topic string, r pubsub.ValidationResult, reason string) pubsub.ValidationResult
}

// sightingSink takes checked sightings: the detector.
type sightingSink interface {
	process(ctx context.Context, s *sighting)
}

var (
	_ sightingChecks = (*validator)(nil)
	_ sightingSink   = (*detector)(nil)
)
