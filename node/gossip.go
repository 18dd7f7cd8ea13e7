package node

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/vigilnet/vigil/gossip"
	vpb "github.com/vigilnet/vigil/proto"
	"github.com/vigilnet/vigil/roster"
	"github.com/vigilnet/vigil/tlog"
	"github.com/vigilnet/vigil/witness"
)

// GossipConfig configures the node's gossip network and log follower
// (docs/gossip.md). The zero value gossips on loopback with OS-chosen ports
// and no peers.
type GossipConfig struct {
	// Disabled turns gossip and the follower off (a bare witness).
	Disabled bool `yaml:"disabled"`
	// Network names the gossip network (topics /vigil/1/<network>/...);
	// default "vigil".
	Network string `yaml:"network"`
	// Listen are libp2p multiaddrs; default TCP on 127.0.0.1 with
	// OS-chosen ports.
	Listen []string `yaml:"listen"`
	// Bootstrap peers: multiaddrs ending in /p2p/<peer ID>.
	Bootstrap []string `yaml:"bootstrap"`
	// Peers is a Vigil peers file (vigil-peers/v1): names, peer IDs and
	// addresses of the network's nodes.
	Peers string `yaml:"peers"`
	// Allowlist admits only the peers of the peers file and bootstrap.
	Allowlist bool `yaml:"allowlist"`
	// MDNS discovers peers on the LAN.
	MDNS bool `yaml:"mdns"`
	// DisableAggregation makes the witness gossip its own cosignatures
	// instead of handing them to the witnesses of the peers file that
	// collect each checkpoint's (docs/gossip.md).
	DisableAggregation bool `yaml:"disable_aggregation"`
	// OwnSightingRate bounds how many of the witness's own cosigned
	// checkpoints per second the node announces (0: the default, 500;
	// negative: no bound but one per log per aggregation window). A quiet
	// log's first goes out at once; under load each log's newest goes out
	// within the window plus (logs waiting) / rate (docs/gossip.md,
	// Announcing own cosignatures).
	OwnSightingRate float64 `yaml:"own_sighting_rate"`
	// FollowInterval is how often logs with a URL are polled (default 10s).
	FollowInterval time.Duration `yaml:"follow_interval"`
	// SyncDelay is how long gossiped data (merged sightings, suspicions)
	// may wait for a sync to disk; 0 means the default
	// (store.DefaultGossipSyncDelay, 1s), negative means sync each write.
	// Witness state and evidence are always synced before they are used.
	SyncDelay time.Duration `yaml:"sync_delay"`
	// RecoveryPeers is how many distinct peers (of the bootstrap list and
	// peers file, if there are any) must answer a witness's query for what
	// it cosigned before it cosigns anything after a start (gossip/own.go).
	// 0 means 1 when the node has any peers configured or mDNS on, and none
	// for a standalone node; negative turns the recovery off.
	RecoveryPeers int `yaml:"recovery_peers"`
}

// defaultGossipListen is used when gossip.listen is empty: TCP only, as
// gossip.DefaultListenAddrs explains.
var defaultGossipListen = []string{"/ip4/127.0.0.1/tcp/0"}

// nodeGossip is the node's gossip state, embedded in Node.
type nodeGossip struct {
	p2pHost  host.Host
	gater    *gossip.Gater
	gossip   *gossip.Service
	follower *witness.Follower
	// own is the witness's own-cosigned history (nil for an observer);
	// ownPeers are the peers whose answers count for its recovery.
	own      *gossip.OwnHistory
	ownPeers []peer.ID
}

// startGossip starts the libp2p host and the gossip service and builds the
// follower (which Run starts).
func (n *Node) startGossip() error {
	gc := n.cfg.Gossip
	if gc.Disabled {
		return nil
	}
	if gc.Network == "" {
		gc.Network = "vigil"
	}
	if len(gc.Listen) == 0 {
		gc.Listen = defaultGossipListen
	}
	bootstrap, err := gossip.ParseAddrInfos(gc.Bootstrap)
	if err != nil {
		return err
	}
	var named []gossip.Peer
	if gc.Peers != "" {
		if named, err = gossip.LoadPeers(gc.Peers); err != nil {
			return err
		}
	}
	var trusted, allow []peer.ID
	for _, p := range named {
		trusted = append(trusted, p.Info.ID)
		if len(p.Info.Addrs) > 0 {
			bootstrap = append(bootstrap, p.Info)
		}
	}
	for _, p := range bootstrap {
		trusted = append(trusted, p.ID)
	}
	if gc.Allowlist {
		if len(trusted) == 0 {
			return errors.New("config: gossip.allowlist needs a peers file or bootstrap peers")
		}
		allow = trusted
	}
	h, gater, err := gossip.NewHost(gossip.HostConfig{Identity: n.keys.P2P, ListenAddrs: gc.Listen, Allowlist: allow})
	if err != nil {
		return err
	}
	n.p2pHost, n.gater = h, gater
	hooks := n.FeedHooks()
	hooks.Peers(h, named)
	rosterFn := n.roster.Load
	name := h.ID().String()
	if n.keys.Cosigner != nil {
		name = n.keys.Cosigner.Name()
	}
	n.gossip, err = gossip.New(gossip.Config{
		Network:            gc.Network,
		Signatures:         n.sigs,
		Host:               h,
		Roster:             rosterFn,
		Store:              hooks.Store(n.store),
		Proofs:             &gossip.TileProofs{Roster: rosterFn},
		Name:               name,
		Bootstrap:          bootstrap,
		Trusted:            trusted,
		Peers:              named,
		Own:                n.own,
		OwnQueries:         n.store,
		DisableAggregation: gc.DisableAggregation,
		CosignPublishRate:  gc.OwnSightingRate,
		MDNS:               gc.MDNS,
		OnEvidence:         hooks.OnEvidence,
		ScoreInspect:       hooks.ScoreInspect,
		Gater:              gater,
		Logger:             n.log.With("component", "gossip"),
	})
	if err != nil {
		return err
	}
	n.reg.MustRegister(n.gossip.Metrics()...)
	fc := witness.FollowerConfig{
		Logs:         func() []*roster.Log { return n.roster.Load().Logs() },
		OnCheckpoint: func(_ string, note []byte) { n.gossip.Offer(note, vpb.Source_SOURCE_PULL) },
		Interval:     gc.FollowInterval,
		Logger:       n.log.With("component", "follower"),
	}
	if n.witness != nil {
		fc.Cosigner = n.witness
	}
	if n.follower, err = witness.NewFollower(fc); err != nil {
		return err
	}
	n.reg.MustRegister(n.follower.Metrics()...)
	n.log.Info("gossip started", "network", gc.Network, "peer_id", h.ID().String(), "addrs", fmt.Sprint(h.Addrs()))
	return nil
}

// afterCosignGossip is the witness's AfterCosign hook: it tells the feed and
// gossips the cosigned checkpoint. It must not block.
func (n *Node) afterCosignGossip(c witness.Cosigned) {
	n.afterCosign(c)
	if n.gossip != nil {
		n.gossip.Offer(c.Note, vpb.Source_SOURCE_COSIGN)
	}
}

// runGossip runs the follower until ctx ends, then stops gossip.
func (n *Node) runGossip(ctx context.Context) error {
	if n.follower == nil {
		return nil
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if n.own != nil {
			n.gossip.RecoverOwn(ctx, n.own, n.keys.OwnVKey(n.cfg.Witness.CosignatureTypes, n.roster.Load()), n.ownPeers)
		}
	}()
	n.follower.Run(ctx)
	<-done
	return nil
}

// newOwnHistory builds the witness's own-cosigned history over the store,
// with the recovery the gossip config asks for.
func (n *Node) newOwnHistory() (*gossip.OwnHistory, error) {
	key, err := tlog.NewWitnessVerifier(n.keys.OwnVKey(n.cfg.Witness.CosignatureTypes, n.roster.Load()))
	if err != nil {
		return nil, fmt.Errorf("own witness key: %w", err)
	}
	need, peers, err := n.recoveryPeers()
	if err != nil {
		return nil, err
	}
	n.ownPeers = peers
	n.own, err = gossip.NewOwnHistory(gossip.OwnHistoryConfig{Key: key, Store: n.store, RecoveryPeers: need, Logger: n.log.With("component", "own")})
	return n.own, err
}

// recoveryPeers returns how many peers must answer the witness's recovery
// query, and which peers count (none listed: any).
func (n *Node) recoveryPeers() (int, []peer.ID, error) {
	gc := n.cfg.Gossip
	if gc.Disabled || gc.RecoveryPeers < 0 {
		return 0, nil, nil
	}
	var self peer.ID
	if n.keys.P2P != nil {
		self, _ = peer.IDFromPrivateKey(n.keys.P2P)
	}
	boot, err := gossip.ParseAddrInfos(gc.Bootstrap)
	if err != nil {
		return 0, nil, err
	}
	seen := map[peer.ID]bool{self: true}
	var ids []peer.ID
	add := func(id peer.ID) {
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	for _, p := range boot {
		add(p.ID)
	}
	if gc.Peers != "" {
		named, err := gossip.LoadPeers(gc.Peers)
		if err != nil {
			return 0, nil, err
		}
		for _, p := range named {
			add(p.Info.ID)
		}
	}
	need := gc.RecoveryPeers
	if need == 0 && (len(ids) > 0 || gc.MDNS) {
		need = 1
	}
	if len(ids) > 0 && !gc.MDNS {
		need = min(need, len(ids))
	}
	return need, ids, nil
}

// Gater returns the libp2p connection gater (the testnet partitions
// networks with it), or nil if gossip is disabled.
func (n *Node) Gater() *gossip.Gater { return n.gater }

// Gossip returns the gossip service, or nil if gossip is disabled.
func (n *Node) Gossip() *gossip.Service { return n.gossip }

// closeGossip stops the gossip service and the libp2p host.
func (n *Node) closeGossip() {
	if n.gossip != nil {
		n.gossip.Close()
		n.gossip = nil
	}
	if n.p2pHost != nil {
		if err := n.p2pHost.Close(); err != nil {
			n.log.Error("closing libp2p host", "err", err)
		}
		n.p2pHost = nil
	}
}

// gossipRefused is the witness's AfterRefuse hook: a log-signed checkpoint
// the witness refused as inconsistent with its state (409, 422) is exactly
// what the detector needs, so it is offered to gossip as a PUSH sighting
// (the gossip validator checks its signatures again). Cosigned checkpoints
// reach gossip through AfterCosign. It must not block.
func (n *Node) gossipRefused(signedCheckpoint []byte, _ error) {
	if n.gossip != nil {
		n.gossip.Offer(signedCheckpoint, vpb.Source_SOURCE_PUSH)
	}
}
