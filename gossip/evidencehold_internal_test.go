package gossip

import (
	"crypto/rand"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

func testPeers(t *testing.T, n int) []peer.ID {
	t.Helper()
	ids := make([]peer.ID, n)
	for i := range ids {
		k, _, err := crypto.GenerateEd25519Key(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		if ids[i], err = peer.IDFromPrivateKey(k); err != nil {
			t.Fatal(err)
		}
	}
	return ids
}

// byRank returns ids sorted as evidenceHold ranks them for id.
func byRank(id string, ids []peer.ID) []peer.ID {
	out := slices.Clone(ids)
	slices.SortFunc(out, func(a, b peer.ID) int {
		ra, rb := evidenceRank(id, a), evidenceRank(id, b)
		return slices.Compare(ra[:], rb[:])
	})
	return out
}

func TestHoldFor(t *testing.T) {
	const id = "evidence-id"
	ids := byRank(id, testPeers(t, 30))
	h := evidenceHold{atOnce: 1, base: 200 * time.Millisecond}
	for _, tc := range []struct {
		name  string
		hold  evidenceHold
		self  peer.ID
		peers []peer.ID
		want  time.Duration
	}{
		{"no peers", h, ids[3], nil, 0},
		{"first of its neighbourhood", h, ids[0], ids[1:6], 0},
		{"first among the peers it has", h, ids[4], ids[5:9], 0},
		{"second", h, ids[1], []peer.ID{ids[0], ids[5]}, 200 * time.Millisecond},
		{"third", h, ids[2], ids[:2], 250 * time.Millisecond},
		{"itself among its peers", h, ids[0], ids[:3], 0},
		{"a peer listed twice counts once", h, ids[2], []peer.ID{ids[0], ids[0], ids[1]}, 250 * time.Millisecond},
		{"hold bounded", h, ids[29], ids[:29], maxEvidenceHold},
		{"none at once: first holds", evidenceHold{atOnce: 0, base: 100 * time.Millisecond}, ids[0], ids[1:4], 100 * time.Millisecond},
		{"none at once: second", evidenceHold{atOnce: 0, base: 100 * time.Millisecond}, ids[1], ids[:1], 150 * time.Millisecond},
		{"two at once", evidenceHold{atOnce: 2, base: 100 * time.Millisecond}, ids[1], ids[:5], 0},
		{"two at once: third holds", evidenceHold{atOnce: 2, base: 100 * time.Millisecond}, ids[2], ids[:5], 100 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.hold.holdFor(id, tc.self, tc.peers); got != tc.want {
				t.Errorf("holdFor = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestHoldForNeighbourhood: where every node's peers are all the others
// (a neighbourhood), exactly atOnce nodes publish at once for any
// evidence, and no two of the others hold equally long until the bound,
// so that the first fallback publication reaches the others before they
// publish. Each evidence picks its own first node.
func TestHoldForNeighbourhood(t *testing.T) {
	ids := testPeers(t, 12)
	firsts := map[peer.ID]bool{}
	for e := range 200 {
		id := fmt.Sprintf("evidence-%d", e)
		for _, atOnce := range []int{0, 1, 3} {
			h := evidenceHold{atOnce: atOnce, base: 100 * time.Millisecond}
			now, holds := 0, map[time.Duration]int{}
			for i, self := range ids {
				others := slices.Delete(slices.Clone(ids), i, i+1)
				d := h.holdFor(id, self, others)
				if d == 0 {
					now++
					if atOnce == 1 {
						firsts[self] = true
					}
					continue
				}
				if d < h.base || d > maxEvidenceHold {
					t.Fatalf("evidence %s, atOnce %d: hold %v outside [%v, %v]", id, atOnce, d, h.base, maxEvidenceHold)
				}
				holds[d]++
			}
			if now != atOnce {
				t.Errorf("evidence %s: %d nodes publish at once, want %d", id, now, atOnce)
			}
			for d, k := range holds {
				if k > 1 && d < maxEvidenceHold {
					t.Errorf("evidence %s, atOnce %d: %d nodes hold %v", id, atOnce, k, d)
				}
			}
		}
	}
	if len(firsts) < len(ids)/2 {
		t.Errorf("over 200 evidences only %d of %d nodes were ever first", len(firsts), len(ids))
	}
}
