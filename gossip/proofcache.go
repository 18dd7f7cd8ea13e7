package gossip

// defaultProofCacheSize bounds the consistency proofs remembered (a proof
// is at most ~2 log2(n) hashes).
const defaultProofCacheSize = 4096

// proofKey names a consistency proof by the tree it is bound to: from size
// m to size n of the tree whose size-n root is rootN.
type proofKey struct {
	origin string
	m, n   uint64
	rootN  [32]byte
}

type cachedProof struct {
	proof [][]byte
	rootM [32]byte
}

// proofCache remembers consistency proofs the detector obtained and checked,
// so that a checkpoint seen again (with another witness's cosignature) is
// compared with the head without reading the log's tiles again.
//
// Only a proof that reproduces rootN is kept, keyed by rootN: such a proof
// fixes the size-m root of that tree (collision resistance), so the cached
// answer is exactly what any correct proof for that signed root would give,
// whatever the log serves later. A proof for another root, another size or
// another log is a different key and a miss.
type proofCache struct {
	c *lru[proofKey, cachedProof]
}

func newProofCache(max int) *proofCache {
	return &proofCache{c: newLRU[proofKey, cachedProof](max)}
}

// get returns the proof m→n for the tree with root rootN, and its size-m root.
func (pc *proofCache) get(k proofKey) ([][]byte, [32]byte, bool) {
	p, ok := pc.c.get(k)
	return p.proof, p.rootM, ok
}

// put remembers proof if it was computed to give rootN == k.rootN; any other
// proof is not kept.
func (pc *proofCache) put(k proofKey, proof [][]byte, rootM, rootN [32]byte) {
	if rootN != k.rootN {
		return
	}
	pc.c.update(k, func(cachedProof, bool) cachedProof { return cachedProof{proof: proof, rootM: rootM} })
}
