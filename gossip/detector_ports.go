package gossip

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/vigilnet/vigil/gossip/detect"
	"github.com/vigilnet/vigil/gossip/evidence"
	vpb "github.com/vigilnet/vigil/proto"
	"github.com/vigilnet/vigil/store"
)

// proof returns an evidence-form consistency proof m→n and the roots it
// implies: from the cache when one is held for the tree with root want
// (the signed size-n root the caller expects), else fetched from the log's
// tiles (and cached if it reproduces want).
func (d *detector) proof(ctx context.Context, origin string, m, n uint64, want [32]byte) (proof [][]byte, rm, rn [32]byte, err error) {
	k := proofKey{origin: origin, m: m, n: n, rootN: want}
	if p, rm, ok := d.proofs.get(k); ok {
		d.s.metrics.proofFetch.WithLabelValues("cache", "ok").Inc()
		return p, rm, want, nil
	}
	if d.s.cfg.Proofs == nil {
		return nil, rm, rn, ErrNoProofSource
	}
	ctx, cancel := context.WithTimeout(ctx, d.s.cfg.ProofTimeout)
	defer cancel()
	defer func() { d.s.metrics.proofFetch.WithLabelValues("tiles", result(err)).Inc() }()
	p, err := d.s.cfg.Proofs.ConsistencyProof(ctx, origin, m, n)
	if err != nil {
		return nil, rm, rn, err
	}
	if evidence.IsPowerOfTwo(m) {
		sub, err := d.s.cfg.Proofs.SubtreeRoot(ctx, origin, m, n)
		if err != nil {
			return nil, rm, rn, err
		}
		p = evidence.EvidenceProof(m, sub, p)
	}
	if rm, rn, err = evidence.RootsFromConsistency(m, n, p); err == nil {
		d.proofs.put(k, p, rm, rn)
	}
	return p, rm, rn, err
}

func result(err error) string {
	if err != nil {
		return "error"
	}
	return "ok"
}

// detectorProofs is the core's proof source: the log's tiles through the
// proof cache.
type detectorProofs struct{ d *detector }

var _ detect.Proofs = detectorProofs{}

func (dp detectorProofs) Consistency(ctx context.Context, origin string, m, n uint64, rootN [32]byte) ([][]byte, [32]byte, [32]byte, error) {
	p, rm, rn, err := dp.d.proof(ctx, origin, m, n, rootN)
	if errors.Is(err, ErrNoProofSource) {
		err = fmt.Errorf("%w: %w", detect.ErrNoSource, err)
	}
	return p, rm, rn, err
}

// detectorPeers asks other nodes over the proof protocol (peerproof.go).
type detectorPeers struct{ d *detector }

var _ detect.PeerProofs = detectorPeers{}

func (dp detectorPeers) PeerProof(ctx context.Context, p, origin string, m, n uint64, rootN [32]byte) ([][]byte, [32]byte, error) {
	proof, rm, err := dp.d.s.peerProof(ctx, peer.ID(p), origin, m, n, rootN)
	if err == nil {
		// peerProof checked that the proof reproduces rootN.
		dp.d.proofs.put(proofKey{origin: origin, m: m, n: n, rootN: rootN}, proof, rm, rootN)
	}
	return proof, rm, err
}

func (dp detectorPeers) WitnessPeer(name string) (string, bool) {
	p, ok := dp.d.witnessPeers[name]
	return p, ok
}

// detectorOutput raises evidence, records divergences in the store and
// counts them.
type detectorOutput struct{ d *detector }

var _ detect.Output = detectorOutput{}

func (o detectorOutput) Evidence(ctx context.Context, e *vpb.Evidence) { o.d.s.raise(ctx, e) }

func (o detectorOutput) Divergence(ctx context.Context, origin string, small, large detect.Side, reason string) {
	s := o.d.s
	s.metrics.suspicions.Inc()
	s.log.Info("unproven divergence", "origin", origin, "small", small.Size, "large", large.Size, "reason", reason)
	err := s.cfg.Store.RecordDivergence(ctx, origin,
		store.SuspicionSide{Size: small.Size, Root: small.Root, Cosigners: small.Cosigners},
		store.SuspicionSide{Size: large.Size, Root: large.Root, Cosigners: large.Cosigners},
		reason, time.Now())
	if err != nil && ctx.Err() == nil {
		s.log.Error("recording divergence", "origin", origin, "err", err)
	}
}

func (o detectorOutput) Resolved(ctx context.Context, large detect.Key, how string) {
	s := o.d.s
	res := store.ResolvedConsistent
	if how == detect.ResolvedEvidence {
		res = store.ResolvedEvidence
	}
	s.metrics.resolutions.WithLabelValues(res).Inc()
	s.log.Info("divergence resolved", "origin", large.Origin, "size", large.Size, "resolution", res)
	if err := s.cfg.Store.ResolveSuspicion(ctx, large.Origin, large.Size, large.Root, res, time.Now()); err != nil && ctx.Err() == nil {
		s.log.Error("resolving divergence", "origin", large.Origin, "err", err)
	}
}

func (o detectorOutput) Head(detect.Key) {}
