package gossip

import (
	"testing"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
)

// TestTakeValidatorDataDetaches checks that a delivered message no longer
// references what the validator attached, so pubsub's gossip history,
// which keeps the message, does not keep the sighting.
func TestTakeValidatorDataDetaches(t *testing.T) {
	sg := &sighting{origin: "example.com/log"}
	m := &pubsub.Message{ValidatorData: sg}
	if got := takeValidatorData[*sighting](m); got != sg {
		t.Fatalf("took %p, want the attached sighting %p", got, sg)
	}
	if m.ValidatorData != nil {
		t.Fatalf("the message still references %v", m.ValidatorData)
	}
}
