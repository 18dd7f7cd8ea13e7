package gossip

import (
	"net"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Score thresholds (docs/gossip.md explains each choice).
const (
	gossipThreshold    = -10
	publishThreshold   = -50
	graylistThreshold  = -80
	acceptPXThreshold  = 5
	opportunisticGraft = 3
	// allowlistBonus is the application score of a configured peer
	// (bootstrap or peers-file entry): enough to accept its peer exchange.
	allowlistBonus = 10
)

// scoreParams returns the peer-scoring parameters for the network's two
// topics. trusted reports configured peers (bootstrap / peers file);
// penalty returns a peer's penalty points for malformed traffic outside
// gossipsub's view (penalty.go), subtracted from its application score.
func scoreParams(network string, trusted func(peer.ID) bool, penalty func(peer.ID) float64) (*pubsub.PeerScoreParams, *pubsub.PeerScoreThresholds) {
	decay := func(d time.Duration) float64 { return pubsub.ScoreParameterDecay(d) }
	_, lo4, _ := net.ParseCIDR("127.0.0.0/8")
	_, lo6, _ := net.ParseCIDR("::1/128")
	p := &pubsub.PeerScoreParams{
		Topics: map[string]*pubsub.TopicScoreParams{
			CheckpointsTopic(network): {
				TopicWeight: 1,
				// P1: a little credit for staying in the mesh, capped at 10.
				TimeInMeshWeight:  0.01,
				TimeInMeshQuantum: time.Second,
				TimeInMeshCap:     1000,
				// P2: credit for being first with a valid sighting.
				FirstMessageDeliveriesWeight: 1,
				FirstMessageDeliveriesDecay:  decay(10 * time.Minute),
				FirstMessageDeliveriesCap:    50,
				// P3/P3b off: logs update irregularly (seconds to hours), so
				// a mesh delivery quota would punish honest quiet peers.
				MeshMessageDeliveriesDecay:      decay(time.Minute),
				MeshMessageDeliveriesCap:        1,
				MeshMessageDeliveriesThreshold:  1,
				MeshMessageDeliveriesActivation: time.Minute,
				MeshFailurePenaltyDecay:         decay(time.Minute),
				// P4: each rejected message counts, squared: 3 invalid
				// messages (-90) graylist a peer; it takes about an hour to
				// decay back.
				InvalidMessageDeliveriesWeight: -10,
				InvalidMessageDeliveriesDecay:  decay(time.Hour),
			},
			EvidenceTopic(network): {
				TopicWeight:                     1,
				TimeInMeshQuantum:               time.Second,
				TimeInMeshCap:                   1,
				FirstMessageDeliveriesWeight:    5,
				FirstMessageDeliveriesDecay:     decay(time.Hour),
				FirstMessageDeliveriesCap:       10,
				MeshMessageDeliveriesDecay:      decay(time.Minute),
				MeshMessageDeliveriesCap:        1,
				MeshMessageDeliveriesThreshold:  1,
				MeshMessageDeliveriesActivation: time.Minute,
				MeshFailurePenaltyDecay:         decay(time.Minute),
				// Forged evidence is an attack on the network's credibility:
				// one invalid evidence message graylists the sender.
				InvalidMessageDeliveriesWeight: -100,
				InvalidMessageDeliveriesDecay:  decay(24 * time.Hour),
			},
		},
		TopicScoreCap: 100,
		// P5: the configured-peer bonus, less penalty points (each
		// malformed stream costs penaltyPoints; four reach the graylist).
		AppSpecificScore: func(p peer.ID) float64 {
			score := -penalty(p)
			if trusted(p) {
				score += allowlistBonus
			}
			return score
		},
		AppSpecificWeight: 1,
		// P6: more than 10 peers from one IP is suspicious (Sybils);
		// loopback is exempt so tests and single-host testnets work.
		IPColocationFactorWeight:    -5,
		IPColocationFactorThreshold: 10,
		IPColocationFactorWhitelist: []*net.IPNet{lo4, lo6},
		// P7: protocol misbehaviour (broken promises, GRAFT floods).
		BehaviourPenaltyWeight:    -10,
		BehaviourPenaltyThreshold: 6,
		BehaviourPenaltyDecay:     decay(10 * time.Minute),
		DecayInterval:             time.Second,
		DecayToZero:               0.01,
		RetainScore:               time.Hour,
	}
	t := &pubsub.PeerScoreThresholds{
		GossipThreshold:             gossipThreshold,
		PublishThreshold:            publishThreshold,
		GraylistThreshold:           graylistThreshold,
		AcceptPXThreshold:           acceptPXThreshold,
		OpportunisticGraftThreshold: opportunisticGraft,
	}
	return p, t
}
