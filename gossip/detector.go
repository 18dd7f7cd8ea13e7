package gossip

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/vigilnet/vigil/gossip/detect"
)

// detector feeds validated sightings to the split-view detector's core
// (gossip/detect), which it wires to the store, the logs' tiles, the peer
// proof protocol, the evidence topic and the metrics (detector_ports.go).
type detector struct {
	s    *Service
	core *detect.Detector

	mu    sync.Mutex
	queue map[string]*logQueue

	// stored is the state of checkpoint records this detector stored.
	stored *lru[cpKey, *cpState]
	// proofs are consistency proofs already obtained and checked.
	proofs *proofCache
	// witnessPeers maps roster witness names to their peer IDs (peers file).
	witnessPeers map[string]string
	// hold says when self-evident evidence this node found is published,
	// and heard holds the evidence peers sent on the evidence topic
	// (evidencehold.go).
	hold  evidenceHold
	heard *lru[string, bool]
	// headsCache holds the heads anti-entropy read of each log
	// (antientropy_cache.go).
	headsCache *headsCache
}

// logQueue holds the sightings of one log waiting for the goroutine that
// is working on it (draining); see detector.process.
type logQueue struct {
	mu       sync.Mutex
	inbox    []*sighting
	draining bool
}

// maxInbox bounds the sightings queued for one log; beyond it the
// delivering goroutine processes its own.
const maxInbox = 1024

// tickInterval is how often the core retries unproven checks and records
// divergences whose grace period ended.
const tickInterval = time.Second

func newDetector(s *Service) *detector {
	d := &detector{
		s:            s,
		queue:        map[string]*logQueue{},
		stored:       newLRU[cpKey, *cpState](defaultStoredCacheSize),
		proofs:       newProofCache(defaultProofCacheSize),
		witnessPeers: map[string]string{},
		hold:         defaultHold(),
		heard:        newLRU[string, bool](10_000),
		headsCache:   newHeadsCache(),
	}
	for _, p := range s.cfg.Peers {
		d.witnessPeers[p.Name] = string(p.Info.ID)
	}
	cfg := detect.Config{
		Store:  detectorStore{d},
		Proofs: detectorProofs{d},
		Peers:  detectorPeers{d},
		Out:    detectorOutput{d},
		Roster: s.cfg.Roster,
		Grace:  s.cfg.DivergenceGrace,
		Logger: s.log,
	}
	core, err := detect.New(cfg)
	if err != nil {
		panic(err) // Store, Out and Roster are set above
	}
	d.core = core
	return d
}

// run retries unproven checks until ctx ends.
func (d *detector) run(ctx context.Context) {
	t := time.NewTicker(tickInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			d.core.Tick(ctx)
		}
	}
}

func (d *detector) logQueue(origin string) *logQueue {
	d.mu.Lock()
	defer d.mu.Unlock()
	q, ok := d.queue[origin]
	if !ok {
		q = &logQueue{}
		d.queue[origin] = q
	}
	return q
}

// process merges a validated sighting into the store and looks for split
// views it reveals. Sightings of one log that arrive while it is being
// worked on are queued and then handled together: every cosignature of one
// checkpoint that arrived meanwhile goes into one store write (one fsync)
// instead of one each. Nothing is dropped and the checks are the same per
// checkpoint; only the write is shared.
func (d *detector) process(ctx context.Context, s *sighting) {
	q := d.logQueue(s.origin)
	q.mu.Lock()
	if len(q.inbox) >= maxInbox {
		q.mu.Unlock()
		d.s.gate.wait(ctx)
		d.processBatch(ctx, []*sighting{s})
		return
	}
	q.inbox = append(q.inbox, s)
	if q.draining {
		q.mu.Unlock()
		return
	}
	q.draining = true
	q.mu.Unlock()
	for {
		q.mu.Lock()
		batch := q.inbox
		q.inbox = nil
		if len(batch) == 0 {
			q.draining = false
			q.mu.Unlock()
			return
		}
		q.mu.Unlock()
		d.s.gate.wait(ctx)
		d.processBatch(ctx, batch)
	}
}

// processBatch handles sightings of one log, combining those of the same
// checkpoint.
func (d *detector) processBatch(ctx context.Context, batch []*sighting) {
	var order []cpKey
	byKey := map[cpKey]*sighting{}
	for _, s := range batch {
		key := cpKey{s.origin, s.cp.Size, s.cp.Root}
		prev, ok := byKey[key]
		if !ok {
			byKey[key] = s
			order = append(order, key)
			continue
		}
		// The first sighting keeps its metadata (first seen, observer,
		// source); the cosignatures of all are merged.
		comb := *prev
		comb.sigs = unionSigs(prev.sigs, s.sigs)
		comb.cosigners = make(map[string]bool, len(prev.cosigners)+len(s.cosigners))
		for _, m := range []map[string]bool{prev.cosigners, s.cosigners} {
			for w := range m {
				comb.cosigners[w] = true
			}
		}
		byKey[key] = &comb
	}
	// Checkpoints new to this detector first: only they can reveal a
	// split view (another root at their size, an inconsistent size), so
	// evidence is not held up behind routine merges of more cosignatures.
	known := make(map[cpKey]bool, len(order))
	for _, k := range order {
		_, known[k] = d.stored.get(k)
	}
	slices.SortStableFunc(order, func(a, b cpKey) int {
		switch {
		case known[a] == known[b]:
			return 0
		case !known[a]:
			return -1
		}
		return 1
	})
	for _, key := range order {
		d.processOne(ctx, key, byKey[key])
	}
}

func (d *detector) processOne(ctx context.Context, key cpKey, s *sighting) {
	start := time.Now()
	defer func() { d.s.metrics.detectLatency.Observe(time.Since(start).Seconds()) }()
	seen := time.UnixMilli(s.msg.SeenUnixMs)
	if s.msg.SeenUnixMs == 0 {
		seen = time.Now()
	}
	err := d.core.Process(ctx, detect.Sighting{
		Key:       detect.Key{Origin: key.origin, Size: key.size, Root: key.root},
		Body:      s.cp.Marshal(),
		Sigs:      s.sigs,
		Cosigners: s.cosigners,
		From:      string(s.from),
		Seen:      seen,
		Observer:  s.msg.Observer,
		Source:    sourceName(s.msg.Source),
	})
	if err != nil && ctx.Err() == nil { // not just shutting down
		d.s.log.Error("storing sighting", "origin", s.origin, "size", s.cp.Size, "err", err)
	}
}
