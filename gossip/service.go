package gossip

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/discovery/mdns"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilnet/vigil/gossip/evidence"
	vpb "github.com/vigilnet/vigil/proto"
	"github.com/vigilnet/vigil/roster"
	"github.com/vigilnet/vigil/store"
)

// Store is the durable state the gossip layer needs; *store.DB is one.
type Store interface {
	MergeCheckpoint(ctx context.Context, origin string, size uint64, root [32]byte, fn func(old store.CheckpointRecord, exists bool) (store.CheckpointRecord, bool, error)) error
	Checkpoint(ctx context.Context, origin string, size uint64, root [32]byte) (store.CheckpointRecord, error)
	CheckpointsAtSize(ctx context.Context, origin string, size uint64) ([]store.CheckpointRecord, error)
	NewestCheckpoint(ctx context.Context, origin string, minCosigners int) (store.CheckpointRecord, error)
	PutEvidence(ctx context.Context, rec store.EvidenceRecord) (bool, error)
	RecordSuspicion(ctx context.Context, origin string, size uint64, root [32]byte, reason string, at time.Time) error
	RecordDivergence(ctx context.Context, origin string, small, large store.SuspicionSide, reason string, at time.Time) error
	ResolveSuspicion(ctx context.Context, origin string, size uint64, root [32]byte, resolution string, at time.Time) error
}

// Config configures a Service. Network, Host, Roster and Store are required;
// zero values of the rest mean the documented defaults.
type Config struct {
	// Network names the gossip network; it is part of the topic names.
	Network string
	// Signatures, if set, is the cache of verified signatures the service
	// uses, shared with the node's other readers of gossiped notes; nil
	// means one of its own.
	Signatures *SignatureCache
	// Host is the node's libp2p host (see NewHost); the Service does not
	// close it.
	Host host.Host
	// Roster returns the current roster; all nodes of a network share it.
	Roster func() *roster.Roster
	Store  Store
	// Proofs builds consistency proofs; nil means no log's tree can be
	// read, and every log is checked across sizes as a push-only one is
	// (docs/gossip.md, Detector).
	Proofs ProofSource
	// Name is this node's name in the sightings and evidence it publishes.
	Name string
	// Bootstrap peers are dialled at start and whenever the node has fewer
	// than MinPeers connections.
	Bootstrap []peer.AddrInfo
	// Trusted peers (bootstrap, peers file) get a score bonus that lets
	// their peer exchange be accepted.
	Trusted []peer.ID
	// MinPeers is the connection count below which bootstrap peers are
	// redialled (default 4); BootstrapInterval how often to check (30s).
	MinPeers          int
	BootstrapInterval time.Duration
	// MDNS enables LAN discovery (off by default).
	MDNS bool
	// DisablePeerExchange turns gossipsub peer exchange off.
	DisablePeerExchange bool
	// PeerRate and PeerBurst bound messages per second accepted from one
	// propagating peer (default 200/s, burst 1000); excess is ignored.
	PeerRate  float64
	PeerBurst int
	// CosignPublishRate bounds how many of its own cosigned checkpoints per
	// second the node announces (default 500/s, in bursts of a tenth of
	// that; negative: no bound but OwnSightingInterval); newer ones replace
	// older ones of the same log while they wait, a quiet log's goes out
	// ahead of busy logs' (offers.go). Other sightings are never held back.
	CosignPublishRate float64
	// Peers are the entries of the network's peers file. Roster witnesses
	// named there by peer ID aggregate each other's cosignatures
	// (aggregate.go); without any, every witness gossips its own.
	Peers []Peer
	// DisableAggregation makes every witness gossip its own cosignatures.
	DisableAggregation bool
	// AggregateWindow is how long a node collects a checkpoint's
	// cosignatures before it hands them on (twice that before a last stop
	// relays or publishes them, three times at the checkpoint's
	// first-ranked witness; default 200ms). AggregateFallback must leave
	// room for three windows and the way back through gossip.
	AggregateWindow time.Duration
	// OwnSightingInterval is the least time between two of this node's
	// own cosigned checkpoints of one log going out (offers.go): a newer
	// one waits, replacing any older one still waiting. 0 means
	// AggregateWindow; negative means no wait (CosignPublishRate still
	// bounds them all).
	OwnSightingInterval time.Duration
	// AggregateFallback is how long a witness waits for its handed-off
	// cosignature to come back in gossip before publishing it itself
	// (default 3s).
	AggregateFallback time.Duration
	// ValidatorTimeout bounds one message's validation (default 2s).
	ValidatorTimeout time.Duration
	// ProofTimeout bounds one proof fetch by the detector (default 10s).
	ProofTimeout time.Duration
	// DivergenceGrace is how long two checkpoints of one log, of different
	// sizes, may stay unproven before the divergence is recorded as a
	// suspicion (default 2m; see docs/gossip.md).
	DivergenceGrace time.Duration
	// HeartbeatInterval overrides gossipsub's 1s heartbeat (tests).
	HeartbeatInterval time.Duration
	// Own, if set, learns the checkpoints that carry this node's own
	// witness cosignature (own.go). OwnQueries answers peers' queries for
	// theirs (ownquery.go); nil means Store, if it can.
	Own        *OwnHistory
	OwnQueries OwnQueryStore
	// OnEvidence, if set, is called once for each evidence newly stored.
	// It must not block.
	OnEvidence func(store.EvidenceRecord)
	// ScoreInspect, if set, receives peer scores every ScoreInspectPeriod
	// (default 1s).
	ScoreInspect       func(map[peer.ID]float64)
	ScoreInspectPeriod time.Duration
	// Gater, if set, refuses banned peers on dial and accept (penalty.go);
	// without it a banned peer is disconnected and its streams refused.
	Gater PeerGater
	// BanDuration is how long a peer that sent too much malformed traffic
	// stays banned (default 10m).
	BanDuration time.Duration
	// ForgetPeersAfter is how long ScoreInspect keeps reporting a peer that
	// left and is not configured (default 5m; at most maxDepartedPeers of
	// them, peers.go).
	ForgetPeersAfter time.Duration
	// IntakeQueue and IntakeBytes bound the accepted sightings waiting for
	// the detector, by count (default 65536) and by the heap they hold
	// (default 16 MiB; drops.go); SubscriptionBuffer is the checkpoints
	// subscription's buffer in front of them (default 1024).
	IntakeQueue        int
	IntakeBytes        int
	SubscriptionBuffer int
	// AntiEntropyInterval is how often the node compares its per-log
	// digest with one random peer (default 10s, antientropy.go); negative
	// turns the exchange off.
	AntiEntropyInterval time.Duration
	Logger              *slog.Logger
}

// validateQueueSize bounds messages waiting for pubsub's validation workers.
const validateQueueSize = 1024

// Service is a running gossip node: pubsub, validators and the detector.
type Service struct {
	cfg     Config
	log     *slog.Logger
	metrics *Metrics
	self    peer.ID

	ps          *pubsub.PubSub
	checkpoints *pubsub.Topic
	evidenceT   *pubsub.Topic

	val *validator
	det *detector
	// agg hands own cosignatures to aggregators and aggregates others';
	// nil if aggregation is off.
	agg *aggregator
	// gate puts evidence in flight ahead of routine gossip work.
	gate *evidenceGate
	// sigs remembers verified signatures (validator and detector).
	sigs *sigCache

	// offers queues sightings for publishing (offers.go).
	offers *offers

	// synced remembers peers this node sent its state to since they
	// connected.
	synced *lru[peer.ID, time.Time]
	// spread holds the IDs of evidence pushed to peers, held those of
	// evidence stored or being stored (evidence.go).
	spread *lru[string, bool]
	held   *lru[string, bool]
	// changed holds when each log's stored checkpoints last changed
	// (antientropy.go).
	changed *lru[string, time.Time]
	// mesh follows pubsub's mesh of each topic (mesh.go).
	mesh *meshTracker
	// arrivals times the messages pubsub takes in (waits.go).
	arrivals *arrivals
	notifee  *network.NotifyBundle
	// penalties charges malformed traffic (penalty.go); intake queues
	// sightings for the detector (drops.go); roll bounds the peers
	// reported to ScoreInspect (peers.go).
	penalties *penalties
	intake    *intake
	roll      *peerRoll

	// ctx ends at Close; cancel ends it.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mdns   interface{ Close() error }
}

// New joins the network's topics and starts processing messages. Call
// Close to stop.
func New(cfg Config) (*Service, error) {
	if cfg.Network == "" || cfg.Host == nil || cfg.Roster == nil || cfg.Store == nil {
		return nil, errors.New("gossip: Network, Host, Roster and Store are required")
	}
	if cfg.MinPeers <= 0 {
		cfg.MinPeers = 4
	}
	if cfg.BootstrapInterval <= 0 {
		cfg.BootstrapInterval = 30 * time.Second
	}
	if cfg.PeerRate <= 0 {
		cfg.PeerRate = 200
	}
	if cfg.PeerBurst <= 0 {
		cfg.PeerBurst = 1000
	}
	if cfg.CosignPublishRate == 0 {
		cfg.CosignPublishRate = defaultCosignPublishRate
	}
	if cfg.ValidatorTimeout <= 0 {
		cfg.ValidatorTimeout = 2 * time.Second
	}
	if cfg.ProofTimeout <= 0 {
		cfg.ProofTimeout = 10 * time.Second
	}
	if cfg.ScoreInspectPeriod <= 0 {
		cfg.ScoreInspectPeriod = time.Second
	}
	if cfg.BanDuration <= 0 {
		cfg.BanDuration = defaultBanDuration
	}
	if cfg.ForgetPeersAfter <= 0 {
		cfg.ForgetPeersAfter = defaultForgetPeersAfter
	}
	if cfg.IntakeQueue <= 0 {
		cfg.IntakeQueue = defaultIntakeSize
	}
	if cfg.IntakeBytes <= 0 {
		cfg.IntakeBytes = defaultIntakeBytes
	}
	if cfg.SubscriptionBuffer <= 0 {
		cfg.SubscriptionBuffer = 1024
	}
	if cfg.AntiEntropyInterval == 0 {
		cfg.AntiEntropyInterval = defaultAntiEntropyInterval
	}
	lg := cfg.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	s := &Service{cfg: cfg, log: lg, self: cfg.Host.ID()}
	s.metrics = newMetrics(func() float64 { return float64(len(cfg.Host.Network().Peers())) },
		func() float64 { return float64(s.penalties.bannedCount()) },
		func() float64 { return float64(s.intake.len()) },
		func() float64 { return float64(s.intake.size()) })
	s.penalties = newPenalties(cfg.BanDuration, s.banPeer, func(proto, reason string) {
		s.metrics.penalties.WithLabelValues(proto, reason).Inc()
	})
	s.intake = newIntake(cfg.IntakeQueue, cfg.IntakeBytes)
	s.sigs = newSigCache(defaultSigCacheSize)
	if cfg.Signatures != nil {
		s.sigs = cfg.Signatures.c
	}
	s.gate = newEvidenceGate(evidenceFirstWait, s.metrics.evidenceFirst.Inc)
	s.val = newValidator(s)
	s.synced = newLRU[peer.ID, time.Time](10_000)
	s.spread = newLRU[string, bool](10_000)
	s.held = newLRU[string, bool](10_000)
	s.changed = newLRU[string, time.Time](maxDigestLogs)
	s.det = newDetector(s)
	s.agg = newAggregator(s)
	s.mesh = newMeshTracker(map[string]string{
		CheckpointsTopic(cfg.Network): "checkpoints",
		EvidenceTopic(cfg.Network):    "evidence",
	}, s.metrics.mesh)
	s.arrivals = newArrivals()

	trusted := map[peer.ID]bool{}
	for _, p := range cfg.Trusted {
		trusted[p] = true
	}
	for _, p := range cfg.Bootstrap {
		trusted[p.ID] = true
	}
	sp, st := scoreParams(cfg.Network, func(p peer.ID) bool { return trusted[p] }, s.penalties.points)
	s.roll = newPeerRoll(trusted, cfg.Peers, cfg.ForgetPeersAfter)
	gp := pubsub.DefaultGossipSubParams()
	if cfg.HeartbeatInterval > 0 {
		gp.HeartbeatInterval = cfg.HeartbeatInterval
		gp.HeartbeatInitialDelay = cfg.HeartbeatInterval
	}
	opts := []pubsub.Option{
		// SPEC (DESIGN invariant 2): every message is signed by its author
		// and unsigned or badly signed messages are dropped.
		pubsub.WithMessageSignaturePolicy(pubsub.StrictSign),
		pubsub.WithGossipSubParams(gp),
		pubsub.WithPeerExchange(!cfg.DisablePeerExchange),
		pubsub.WithPeerScore(sp, st),
		pubsub.WithMaxMessageSize(vpb.MaxEvidenceSize + 4<<10),
		pubsub.WithFloodPublish(true),
		// A full validation queue drops messages unvalidated, evidence
		// included, and one split view makes every witness publish at
		// once: a burst of about one message per witness, each arriving
		// from several peers. The default (32) is smaller than that burst
		// at 50 witnesses.
		pubsub.WithValidateQueueSize(validateQueueSize),
		pubsub.WithLogger(lg.With("component", "pubsub")),
		pubsub.WithRPCLogger(slog.New(rpcPenaltyHandler{next: lg.With("component", "pubsub", "system", "pubsub/rpc").Handler(), penalty: func(p peer.ID, reason string) {
			s.penalties.add(p, "pubsub", reason)
		}})),
		pubsub.WithRawTracer(s.mesh),
		pubsub.WithRawTracer(s.arrivals),
		pubsub.WithRawTracer(dropTracer{kind: s.topicKind, dropped: s.countDrop}),
		pubsub.WithRawTracer(newRPCStats(map[string]string{
			CheckpointsTopic(cfg.Network): "checkpoints",
			EvidenceTopic(cfg.Network):    "evidence",
		}, s.metrics.rpcMessages, s.metrics.rpcControl)),
	}
	if cfg.ScoreInspect != nil {
		opts = append(opts, pubsub.WithPeerScoreInspect(pubsub.PeerScoreInspectFn(func(m map[peer.ID]float64) {
			cfg.ScoreInspect(s.roll.filter(m, func(p peer.ID) bool {
				return s.cfg.Host.Network().Connectedness(p) == network.Connected
			}))
		}), cfg.ScoreInspectPeriod))
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.ctx, s.cancel = ctx, cancel
	ps, err := pubsub.NewGossipSub(ctx, cfg.Host, opts...)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("starting gossipsub: %w", err)
	}
	s.ps = ps
	if err := s.join(ctx); err != nil {
		cancel()
		return nil, err
	}
	s.offers = newOffers(max(0, cmp.Or(s.cfg.OwnSightingInterval, s.cfg.AggregateWindow, defaultAggregateWindow)),
		s.cfg.CosignPublishRate, int(s.cfg.CosignPublishRate)/10, func() {
			s.metrics.validated.WithLabelValues("checkpoints", "ignore", "offer_queue_full").Inc()
		})
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.offers.run(ctx, s.publishOffer)
	}()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.det.run(ctx)
	}()
	s.startSync(ctx)
	s.serveProofs(ctx)
	s.serveOwnQueries(ctx)
	s.startAntiEntropy(ctx)
	if s.agg != nil {
		s.agg.start(ctx)
	}
	if cfg.MDNS {
		m := mdns.NewMdnsService(cfg.Host, "vigil-"+cfg.Network, mdnsNotifee{s})
		if err := m.Start(); err != nil {
			s.log.Warn("mDNS discovery not started", "err", err)
		} else {
			s.mdns = m
		}
	}
	if len(cfg.Bootstrap) > 0 {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.bootstrap(ctx)
		}()
	}
	return s, nil
}

func (s *Service) join(ctx context.Context) error {
	cpTopic, evTopic := CheckpointsTopic(s.cfg.Network), EvidenceTopic(s.cfg.Network)
	var err error
	if s.checkpoints, err = s.ps.Join(cpTopic, pubsub.WithTopicMessageIdFn(sightingMsgID)); err != nil {
		return fmt.Errorf("joining %s: %w", cpTopic, err)
	}
	if s.evidenceT, err = s.ps.Join(evTopic, pubsub.WithTopicMessageIdFn(evidenceMsgID)); err != nil {
		return fmt.Errorf("joining %s: %w", evTopic, err)
	}
	if err := s.ps.RegisterTopicValidator(cpTopic, pubsub.ValidatorEx(s.val.sighting),
		pubsub.WithValidatorTimeout(s.cfg.ValidatorTimeout), pubsub.WithValidatorConcurrency(64)); err != nil {
		return err
	}
	if err := s.ps.RegisterTopicValidator(evTopic, pubsub.ValidatorEx(s.val.evidence),
		pubsub.WithValidatorTimeout(s.cfg.ValidatorTimeout), pubsub.WithValidatorConcurrency(16)); err != nil {
		return err
	}
	cpSub, err := s.checkpoints.Subscribe(pubsub.WithBufferSize(s.cfg.SubscriptionBuffer))
	if err != nil {
		return err
	}
	evSub, err := s.evidenceT.Subscribe(pubsub.WithBufferSize(256))
	if err != nil {
		return err
	}
	// The subscription loop only queues (drops.go); a few workers so that
	// a slow proof fetch for one log does not stall the others; the
	// detector serialises work per origin.
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.consume(ctx, cpSub, func(m *pubsub.Message) { s.enqueue(takeValidatorData[*sighting](m)) })
	}()
	for i := 0; i < 4; i++ {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			for {
				sg, ok := s.intake.take(ctx)
				if !ok {
					return
				}
				s.metrics.deliveryWait.Observe(time.Since(sg.accepted).Seconds())
				s.sawOwn(ctx, sg)
				s.det.process(ctx, sg)
			}
		}()
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.consume(ctx, evSub, func(m *pubsub.Message) { s.receiveEvidence(ctx, takeValidatorData[*verifiedEvidence](m)) })
	}()
	return nil
}

// countDrop counts a message of a topic kind dropped between pubsub and
// the detector.
func (s *Service) countDrop(kind, reason string) {
	s.metrics.dropped.WithLabelValues(kind, reason).Inc()
}

// topicKind names one of the network's topics for metrics.
func (s *Service) topicKind(topic string) string {
	switch topic {
	case CheckpointsTopic(s.cfg.Network):
		return "checkpoints"
	case EvidenceTopic(s.cfg.Network):
		return "evidence"
	}
	return "other"
}

func (s *Service) consume(ctx context.Context, sub *pubsub.Subscription, fn func(*pubsub.Message)) {
	defer sub.Cancel()
	for {
		m, err := sub.Next(ctx)
		if err != nil {
			return
		}
		if m.ValidatorData == nil {
			continue
		}
		fn(m)
	}
}

// takeValidatorData returns what the validator attached to a delivered
// message and detaches it. Pubsub keeps every message it delivered in its
// gossip history (HistoryLength heartbeats, 5 s) to answer IWANTs, and
// only its Data is needed for that: left attached, a sighting (its signed
// note, with an ML-DSA-44 cosignature about 3.7 KB, and its parsed
// signatures) stayed reachable from that history, about 5 KB per message
// on top of the 4 KB of Data, 13 MB of a 1,000-log node's heap under 64
// clients. Pubsub never reads ValidatorData after validation, and the
// topic has this one subscription.
func takeValidatorData[T any](m *pubsub.Message) T {
	v := m.ValidatorData.(T)
	m.ValidatorData = nil
	return v
}

// Metrics returns the gossip layer's Prometheus collectors.
func (s *Service) Metrics() []prometheus.Collector {
	return append(s.metrics.collectors(), s.offers.metrics.collectors()...)
}

// ID returns the node's libp2p peer ID.
func (s *Service) ID() peer.ID { return s.self }

// Host returns the libp2p host.
func (s *Service) Host() host.Host { return s.cfg.Host }

// Connect dials a peer.
func (s *Service) Connect(ctx context.Context, pi peer.AddrInfo) error {
	return s.cfg.Host.Connect(ctx, pi)
}

// TopicPeers returns the peers known to subscribe to the checkpoints and
// the evidence topic.
func (s *Service) TopicPeers() (checkpoints, evidence []peer.ID) {
	return s.checkpoints.ListPeers(), s.evidenceT.ListPeers()
}

// MeshPeers returns the peers in this node's mesh of the checkpoints and
// the evidence topic: those it forwards every message to (see meshTracker;
// a peer in TopicPeers may not be in the mesh yet).
func (s *Service) MeshPeers() (checkpoints, evidence []peer.ID) {
	return s.mesh.peers(CheckpointsTopic(s.cfg.Network)), s.mesh.peers(EvidenceTopic(s.cfg.Network))
}

// PublishSighting publishes a log-signed checkpoint (with any
// cosignatures) that this node obtained from source. It is validated like
// any received message, except that a SOURCE_COSIGN note must be this
// node's own witness's output (witness.Cosigned.Note: log signatures the
// witness verified plus its own cosignature), whose signatures are trusted
// rather than verified again. A checkpoint the network already has with the
// same cosignatures is not re-published. Evidence that follows from it is
// raised asynchronously.
func (s *Service) PublishSighting(ctx context.Context, signedNote []byte, source vpb.Source) error {
	msg := &vpb.Sighting{Checkpoint: signedNote, Observer: s.cfg.Name, SeenUnixMs: time.Now().UnixMilli(), Source: source}
	b, err := vpb.MarshalSighting(msg)
	if err != nil {
		return err
	}
	if s.val.isKnown(signedNote) {
		return nil
	}
	sg, res, reason := s.val.checkLocal(b, msg)
	if res != pubsub.ValidationAccept {
		// (Accepted ones are counted when the validator takes them.)
		s.val.result("checkpoints", res, reason)
	}
	switch res {
	case pubsub.ValidationIgnore:
		return nil
	case pubsub.ValidationReject:
		return fmt.Errorf("publishing sighting: %s", reason)
	}
	// The validator runs during Publish and takes the result from here.
	s.val.local.put(b, sg)
	defer s.val.local.take(b)
	err = s.checkpoints.Publish(ctx, b)
	var ve pubsub.ValidationError
	if errors.As(err, &ve) {
		if ve.Reason == pubsub.RejectValidationIgnored {
			return nil
		}
		return fmt.Errorf("publishing sighting: %s", ve.Reason)
	}
	if err != nil {
		return fmt.Errorf("publishing sighting: %w", err)
	}
	s.metrics.sightings.WithLabelValues(sourceName(source)).Inc()
	return nil
}

// Offer queues a sighting for PublishSighting without blocking; use it from
// hooks such as witness.Config.AfterCosign and the follower's
// OnCheckpoint. Own cosignatures are coalesced per log (see offers); like
// PublishSighting, a SOURCE_COSIGN note must be this node's witness's own
// output. It reports false if the queue is full (the sighting is dropped
// and counted).
//
// A SOURCE_COSIGN note is kept as is (the witness's output is never
// modified, and most are replaced by a newer one before they go out), so
// the caller must not modify it; any other note is copied.
func (s *Service) Offer(signedNote []byte, source vpb.Source) bool {
	if source != vpb.Source_SOURCE_COSIGN {
		signedNote = append([]byte(nil), signedNote...)
	}
	return s.offers.add(offer{note: signedNote, source: source})
}

func (s *Service) publishOffer(ctx context.Context, o offer) {
	if o.source == vpb.Source_SOURCE_COSIGN && s.agg != nil && s.agg.handOff(ctx, o.note) {
		return
	}
	if err := s.PublishSighting(ctx, o.note, o.source); err != nil && ctx.Err() == nil {
		s.log.Warn("publishing sighting", "err", err)
	}
}

// CheckEvidence verifies evidence against the current roster.
func (s *Service) CheckEvidence(e *vpb.Evidence) (*evidence.Finding, error) {
	return s.verifyEvidence(e)
}

// Close stops the service and waits for its goroutines. It does not close
// the host or the store.
func (s *Service) Close() error {
	s.cancel()
	s.cfg.Host.RemoveStreamHandler(s.syncProtocol())
	s.cfg.Host.RemoveStreamHandler(s.proofProtocol())
	s.cfg.Host.RemoveStreamHandler(s.cosignProtocol())
	s.cfg.Host.RemoveStreamHandler(s.digestProtocol())
	s.cfg.Host.Network().StopNotify(s.notifee)
	if s.mdns != nil {
		s.mdns.Close()
	}
	s.wg.Wait()
	return nil
}

func (s *Service) bootstrap(ctx context.Context) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if len(s.cfg.Host.Network().Peers()) < s.cfg.MinPeers {
			for _, p := range s.cfg.Bootstrap {
				if p.ID == s.self {
					continue
				}
				cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				if err := s.cfg.Host.Connect(cctx, p); err != nil {
					s.log.Debug("dialling bootstrap peer", "peer", p.ID, "err", err)
				}
				cancel()
			}
		}
		t.Reset(s.cfg.BootstrapInterval)
	}
}

type mdnsNotifee struct{ s *Service }

func (n mdnsNotifee) HandlePeerFound(pi peer.AddrInfo) {
	if pi.ID == n.s.self {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.s.cfg.Host.Connect(ctx, pi); err != nil {
		n.s.log.Debug("dialling mDNS peer", "peer", pi.ID, "err", err)
	}
}

func sourceName(s vpb.Source) string {
	switch s {
	case vpb.Source_SOURCE_PUSH:
		return "push"
	case vpb.Source_SOURCE_PULL:
		return "pull"
	case vpb.Source_SOURCE_GOSSIP:
		return "gossip"
	case vpb.Source_SOURCE_COSIGN:
		return "cosign"
	}
	return "unspecified"
}
