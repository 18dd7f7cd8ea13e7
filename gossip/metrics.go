package gossip

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the gossip layer's Prometheus collectors.
type Metrics struct {
	validated     *prometheus.CounterVec
	sightings     *prometheus.CounterVec
	evidenceFirst prometheus.Counter
	evidenceHeld  *prometheus.CounterVec
	pushes        prometheus.Counter
	evidence      *prometheus.CounterVec
	suspicions    prometheus.Counter
	resolutions   *prometheus.CounterVec
	detectLatency prometheus.Histogram
	// validationWait and deliveryWait: waits.go.
	validationWait prometheus.Histogram
	deliveryWait   prometheus.Histogram
	proofFetch     *prometheus.CounterVec
	handOffs       *prometheus.CounterVec
	relays         *prometheus.CounterVec
	peers          prometheus.GaugeFunc
	mesh           *prometheus.GaugeVec
	// penalties, gated and banned: penalty.go; dropped: drops.go.
	penalties *prometheus.CounterVec
	gated     prometheus.Counter
	banned    prometheus.GaugeFunc
	dropped   *prometheus.CounterVec
	queued    prometheus.GaugeFunc
	queuedB   prometheus.GaugeFunc
	digests   *prometheus.CounterVec
	// rpcMessages and rpcControl: rpcstats.go.
	rpcMessages *prometheus.CounterVec
	rpcControl  *prometheus.CounterVec
}

// newMetrics returns the collectors; peers, banned, queued and queuedBytes
// report the connected peers, the peers banned now, and the sightings
// waiting for the detector and their estimated size.
func newMetrics(peers, banned, queued, queuedBytes func() float64) *Metrics {
	return &Metrics{
		rpcMessages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_gossip_rpc_messages_total",
			Help: "Pubsub messages by topic kind and direction: received (every copy from every peer), duplicate (copies already seen, dropped before validation) and sent (every copy to every peer).",
		}, []string{"topic", "dir"}),
		rpcControl: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_gossip_rpc_control_total",
			Help: "Pubsub control traffic by kind (ihave_ids, iwant_ids and idontwant_ids count message IDs; graft and prune count requests) and direction (received, sent).",
		}, []string{"kind", "dir"}),
		queued: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "vigil_gossip_intake_queued",
			Help: "Accepted sightings waiting for the detector (long while the disk is slow; drops.go).",
		}, queued),
		queuedB: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "vigil_gossip_intake_queued_bytes",
			Help: "Estimated heap bytes held by the sightings waiting for the detector (bounded by the gossip config's IntakeBytes, default 16 MiB; drops.go).",
		}, queuedBytes),
		penalties: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_gossip_penalties_total",
			Help: "Penalties charged to peers for malformed traffic, by protocol (sync, proof, cosign, digest, pubsub) and reason.",
		}, []string{"protocol", "reason"}),
		gated: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vigil_gossip_peers_gated_total",
			Help: "Peers banned for malformed traffic: disconnected and refused on dial and accept for the ban duration.",
		}),
		banned: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "vigil_gossip_peers_banned",
			Help: "Peers banned for malformed traffic now.",
		}, banned),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_gossip_dropped_total",
			Help: "Gossip messages dropped between pubsub and the detector, by topic kind and reason: subscriber_too_slow (pubsub's subscription buffer was full), validation_queue_full and validation_throttled (pubsub dropped them before validation), intake_full and intake_bytes (the detector's intake queue held its maximum count or bytes of sightings).",
		}, []string{"topic", "reason"}),
		digests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_gossip_digest_exchanges_total",
			Help: "Anti-entropy digest exchanges (antientropy.go), by role (sent, served) and result (same, differ, error).",
		}, []string{"role", "result"}),
		validated: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_gossip_validated_total",
			Help: "Gossip messages validated, by topic kind, result (accept, reject, ignore) and reason.",
		}, []string{"topic", "result", "reason"}),
		sightings: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_gossip_sightings_published_total",
			Help: "Sightings this node published, by source.",
		}, []string{"source"}),
		pushes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vigil_gossip_evidence_pushes_total",
			Help: "Evidence sent straight to a peer on the sync protocol (a push), besides the evidence topic.",
		}),
		evidenceFirst: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vigil_gossip_evidence_first_waits_total",
			Help: "Times routine gossip work (sighting validation, detection) waited for evidence in flight at this node.",
		}),
		evidenceHeld: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_gossip_evidence_found_published_total",
			Help: "Self-evident evidence this node found, by what it did on the evidence topic: published at_once (it ranks first among its peers), held back and then published (no peer sent it within the hold), or held back and heard (a peer sent it).",
		}, []string{"result"}),
		evidence: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_evidence_total",
			Help: "Evidence stored by this node, by kind and whether it found it itself (detected) or received it (gossip).",
		}, []string{"kind", "via"}),
		suspicions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vigil_suspicions_total",
			Help: "Unproven divergences recorded: two checkpoints of a log, of different sizes, that no proof (or, for a log without tiles, no witness cosigning both) showed consistent within the grace period.",
		}),
		resolutions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_suspicions_resolved_total",
			Help: "Unproven divergences settled, by resolution (consistent, evidence).",
		}, []string{"resolution"}),
		detectLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "vigil_detector_seconds",
			Help:    "Time the detector spends on one accepted sighting, including proof fetches and store writes.",
			Buckets: prometheus.ExponentialBuckets(100e-6, 2, 16),
		}),
		validationWait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "vigil_gossip_validation_wait_seconds",
			Help:    "Time a gossip message received from a peer waited between pubsub's event loop taking it in and this node's validator starting on it (queueing and pubsub's signature check; long on a node short of CPU).",
			Buckets: prometheus.ExponentialBuckets(100e-6, 2, 16),
		}),
		deliveryWait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "vigil_gossip_delivery_wait_seconds",
			Help:    "Time an accepted sighting waited between its validation and the detector taking it (long on a node short of CPU).",
			Buckets: prometheus.ExponentialBuckets(100e-6, 2, 16),
		}),
		proofFetch: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_detector_proof_fetches_total",
			Help: "Consistency proofs the detector obtained, by source (tiles, peer, cache: one checked before) and result.",
		}, []string{"source", "result"}),
		handOffs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_gossip_cosign_handoffs_total",
			Help: "Own cosignatures handed to aggregators instead of published, by result: sent, unreachable (no aggregator took it; published), fallback (not back in gossip in time; published).",
		}, []string{"result"}),
		relays: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_gossip_cosign_relays_total",
			Help: "Collections of cosignatures relayed to a checkpoint's first-ranked witness, by result: at a last stop relayed (a peer passed it on), unrelayed (no peer could; published), fallback (not back in gossip in time; published); at a peer asked, passed or declined.",
		}, []string{"result"}),
		peers: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "vigil_gossip_peers",
			Help: "Connected libp2p peers.",
		}, peers),
		mesh: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "vigil_gossip_mesh_peers",
			Help: "Peers in this node's gossipsub mesh (those it forwards every message to), by topic kind.",
		}, []string{"topic"}),
	}
}

func (m *Metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.validated, m.sightings, m.pushes, m.evidenceFirst, m.evidenceHeld, m.evidence, m.suspicions, m.resolutions, m.detectLatency, m.validationWait, m.deliveryWait, m.proofFetch, m.handOffs, m.relays, m.peers, m.mesh, m.penalties, m.gated, m.banned, m.dropped, m.queued, m.queuedB, m.digests, m.rpcMessages, m.rpcControl}
}
