package gossip_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/vigilnet/vigil/gossip"
	"github.com/vigilnet/vigil/gossip/evidence"
	vpb "github.com/vigilnet/vigil/proto"
)

// foundPublished sums, over nodes, vigil_gossip_evidence_found_published_total
// of one result.
func foundPublished(t *testing.T, n *tnet, result string) float64 {
	t.Helper()
	sum := 0.0
	for _, nd := range n.nodes {
		sum += counter(t, nd.svc, "vigil_gossip_evidence_found_published_total", map[string]string{"result": result})
	}
	return sum
}

// TestHeldEvidenceReachesPeerWithoutSides: every node of a small network
// finds a split view itself, and every one holds the evidence back (none
// ranks to publish at once). A peer subscribed to the evidence topic alone,
// which sees neither side and cannot find anything, still receives the
// evidence on the topic, verifiable offline: a held finder that no peer
// sent it to publishes it when its hold ends.
func TestHeldEvidenceReachesPeerWithoutSides(t *testing.T) {
	n := newNet(t, netOptions{nodes: 4, observers: true})
	for _, nd := range n.nodes {
		gossip.HoldAllEvidence(nd.svc, 50*time.Millisecond)
	}
	n.connectRing()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	x := newHostile(t, "test")
	sub, err := x.ev.Subscribe()
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Cancel()
	nd0 := n.nodes[0]
	if err := x.host.Connect(ctx, nd0.addrInfo(false)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the evidence-only peer in the node's evidence mesh", func() bool {
		_, ev := nd0.svc.MeshPeers()
		return slices.Contains(ev, x.host.ID())
	})
	n.log.AppendN(5, "common")
	n.publishSplitView(ctx, n.nodes[1])
	n.waitEvidence(n.nodes, "log-equivocation-same-size", detectDeadline)
	m, err := sub.Next(ctx)
	if err != nil {
		t.Fatalf("the evidence-only peer received no evidence: %v", err)
	}
	e, err := vpb.UnmarshalEvidence(m.Data)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := evidence.Verify(e, n.roster); err != nil {
		t.Fatalf("the evidence the peer received does not verify: %v", err)
	}
	if got := foundPublished(t, n, "at_once"); got != 0 {
		t.Errorf("%v finders published at once, want none", got)
	}
	// The finder whose hold ended first published; the others published
	// or heard it, but only once its hold ended.
	waitFor(t, 10*time.Second, "every finder's hold to end", func() bool {
		return foundPublished(t, n, "published")+foundPublished(t, n, "heard") == n.findersCount(t)
	})
	if got := foundPublished(t, n, "published"); got < 1 {
		t.Errorf("no held finder published, want at least one")
	}
}

// findersCount is how many nodes stored the evidence they found.
func (n *tnet) findersCount(t *testing.T) float64 {
	t.Helper()
	sum := 0.0
	for _, nd := range n.nodes {
		sum += counter(t, nd.svc, "vigil_evidence_total", map[string]string{"via": "detected"})
	}
	return sum
}

// TestFoundEvidencePublishedOnceAtOnce: in a network where every node's
// peers are all the others, at most one finder, the one ranking first,
// publishes the evidence at once; every node stores it, and every other
// finder's hold ends in a publication or a copy heard from a peer.
func TestFoundEvidencePublishedOnceAtOnce(t *testing.T) {
	n := newNet(t, netOptions{nodes: 5, observers: true})
	n.connectRing() // 5 nodes: each has all 4 others as peers
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n.log.AppendN(5, "common")
	n.publishSplitView(ctx, n.nodes[0])
	n.waitEvidence(n.nodes, "log-equivocation-same-size", detectDeadline)
	waitFor(t, 10*time.Second, "every finder's publication or hold to end", func() bool {
		return foundPublished(t, n, "at_once")+foundPublished(t, n, "published")+foundPublished(t, n, "heard") == n.findersCount(t)
	})
	if got := foundPublished(t, n, "at_once"); got > 1 {
		t.Errorf("%v finders published at once, want at most one", got)
	}
	if got := foundPublished(t, n, "at_once") + foundPublished(t, n, "published"); got < 1 {
		t.Errorf("no finder published the evidence")
	}
}
