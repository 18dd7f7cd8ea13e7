package gossip_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/vigilnet/vigil/gossip"
	"github.com/vigilnet/vigil/store"
)

// countingStore counts PutEvidence calls per evidence ID.
type countingStore struct {
	*store.DB
	mu   sync.Mutex
	puts map[string]int
}

func (c *countingStore) PutEvidence(ctx context.Context, rec store.EvidenceRecord) (bool, error) {
	c.mu.Lock()
	c.puts[rec.ID]++
	c.mu.Unlock()
	return c.DB.PutEvidence(ctx, rec)
}

// TestEvidenceStoredOncePerNode: in a ring of 5 nodes whose meshes hold
// all their peers, one node publishes both sides of a split view. Every
// node stores the evidence, each with one store write however many ways it
// reached it (its own detector, the evidence topic), and the nodes that
// took it from the topic push it to no one: pubsub forwards it to their
// whole mesh. Each node's pubsub counters saw the sightings and the
// evidence go by.
func TestEvidenceStoredOncePerNode(t *testing.T) {
	var mu sync.Mutex
	var stores []*countingStore
	n := newNet(t, netOptions{nodes: 5, observers: true, wrapStore: func(db *store.DB) gossip.Store {
		c := &countingStore{DB: db, puts: map[string]int{}}
		mu.Lock()
		stores = append(stores, c)
		mu.Unlock()
		return c
	}})
	n.connectRing()
	n.log.AppendN(5, "common")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n.publishSplitView(ctx, n.nodes[0])
	n.waitEvidence(n.nodes, "log-equivocation-same-size", 20*time.Second)
	// Most finders hold the evidence back (evidencehold.go): the copy of
	// the one that published reaches each node after it stored its own.
	waitFor(t, 10*time.Second, "the evidence on every node's topic", func() bool {
		for _, nd := range n.nodes {
			rpc := func(dir string) float64 {
				return counter(t, nd.svc, "vigil_gossip_rpc_messages_total", map[string]string{"topic": "evidence", "dir": dir})
			}
			if rpc("received")+rpc("sent") == 0 {
				return false
			}
		}
		return true
	})
	// Every copy still on its way (a topic copy, a detector behind its
	// queue) arrives before the nodes close.
	for _, nd := range n.nodes {
		nd.svc.Close()
	}
	for i, c := range stores {
		c.mu.Lock()
		for id, k := range c.puts {
			if k != 1 {
				t.Errorf("node %d wrote evidence %.12s %d times, want once", i, id, k)
			}
		}
		c.mu.Unlock()
	}
	for _, nd := range n.nodes {
		for _, topic := range []string{"checkpoints", "evidence"} {
			rpc := func(dir string) float64 {
				return counter(t, nd.svc, "vigil_gossip_rpc_messages_total", map[string]string{"topic": topic, "dir": dir})
			}
			if recv, dup, sent := rpc("received"), rpc("duplicate"), rpc("sent"); recv+sent == 0 || dup > recv {
				t.Errorf("%s, %s topic: %v copies received, %v duplicate, %v sent", nd.name, topic, recv, dup, sent)
			}
		}
	}
	for _, nd := range n.nodes[1:] {
		if got := counter(t, nd.svc, "vigil_gossip_evidence_pushes_total", nil); got != 0 {
			t.Errorf("%s pushed the evidence %v times; its mesh has every peer", nd.name, got)
		}
	}
}
