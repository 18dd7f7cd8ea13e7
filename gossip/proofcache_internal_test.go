package gossip

import (
	"slices"
	"testing"
)

func TestProofCache(t *testing.T) {
	root := func(b byte) [32]byte { return [32]byte{b} }
	proof := [][]byte{{1}, {2}}
	k := proofKey{origin: "log.example", m: 3, n: 7, rootN: root(1)}
	tests := []struct {
		name string
		max  int
		// put is applied first: the key, and the root the proof gave.
		putKey   proofKey
		putRootN [32]byte
		// then more keys are put (valid proofs), for eviction.
		more   []proofKey
		get    proofKey
		wantOK bool
	}{
		{name: "hit", max: 4, putKey: k, putRootN: root(1), get: k, wantOK: true},
		{name: "miss on an empty cache", max: 4, get: k},
		{name: "a proof that did not reproduce the root is not kept", max: 4, putKey: k, putRootN: root(2), get: k},
		{name: "another root is another tree", max: 4, putKey: k, putRootN: root(1), get: proofKey{origin: k.origin, m: k.m, n: k.n, rootN: root(2)}},
		{name: "another old size", max: 4, putKey: k, putRootN: root(1), get: proofKey{origin: k.origin, m: 4, n: k.n, rootN: k.rootN}},
		{name: "another new size", max: 4, putKey: k, putRootN: root(1), get: proofKey{origin: k.origin, m: k.m, n: 8, rootN: k.rootN}},
		{name: "another log", max: 4, putKey: k, putRootN: root(1), get: proofKey{origin: "other.example", m: k.m, n: k.n, rootN: k.rootN}},
		{name: "evicted", max: 1, putKey: k, putRootN: root(1), more: []proofKey{{origin: "log.example", m: 1, n: 2, rootN: root(9)}}, get: k},
		{name: "recently used survives", max: 2, putKey: k, putRootN: root(1), more: []proofKey{{origin: "log.example", m: 1, n: 2, rootN: root(9)}}, get: k, wantOK: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pc := newProofCache(tt.max)
			if tt.putKey != (proofKey{}) {
				pc.put(tt.putKey, proof, root(5), tt.putRootN)
			}
			for _, m := range tt.more {
				pc.put(m, proof, root(6), m.rootN)
			}
			p, rm, ok := pc.get(tt.get)
			if ok != tt.wantOK {
				t.Fatalf("get: ok = %v, want %v", ok, tt.wantOK)
			}
			if ok && (!slices.EqualFunc(p, proof, slices.Equal) || rm != root(5)) {
				t.Fatalf("get returned proof %x, root %x; want %x, %x", p, rm, proof, root(5))
			}
		})
	}
}
