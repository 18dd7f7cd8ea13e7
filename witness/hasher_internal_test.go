package witness

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"testing"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
)

// TestProofHasherMatchesRFC6962: proofHasher hashes exactly as
// rfc6962.DefaultHasher, for 32-byte children and any others.
func TestProofHasherMatchesRFC6962(t *testing.T) {
	d := rfc6962.DefaultHasher
	for _, tc := range [][2][]byte{
		{bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)},
		{make([]byte, 32), make([]byte, 32)},
		{[]byte("short"), bytes.Repeat([]byte{3}, 32)},
		{nil, nil},
	} {
		if got, want := (proofHasher{}).HashChildren(tc[0], tc[1]), d.HashChildren(tc[0], tc[1]); !bytes.Equal(got, want) {
			t.Errorf("HashChildren(%x, %x) = %x, want %x", tc[0], tc[1], got, want)
		}
	}
	if !bytes.Equal((proofHasher{}).EmptyRoot(), d.EmptyRoot()) || !bytes.Equal((proofHasher{}).HashLeaf([]byte("x")), d.HashLeaf([]byte("x"))) || (proofHasher{}).Size() != d.Size() {
		t.Error("EmptyRoot, HashLeaf or Size differ from rfc6962")
	}
}

// TestProofHasherVerifiesLikeRFC6962: consistency proofs between every pair
// of sizes of a small tree verify with proofHasher, and a proof with a
// flipped bit fails with both hashers.
func TestProofHasherVerifiesLikeRFC6962(t *testing.T) {
	const n = 33
	leaves := make([][]byte, n)
	for i := range leaves {
		leaves[i] = rfc6962.DefaultHasher.HashLeaf(fmt.Appendf(nil, "leaf %d", i))
	}
	var root func(lo, hi int) []byte
	root = func(lo, hi int) []byte {
		if hi-lo == 1 {
			return leaves[lo]
		}
		k := 1
		for k*2 < hi-lo {
			k *= 2
		}
		return rfc6962.DefaultHasher.HashChildren(root(lo, lo+k), root(lo+k, hi))
	}
	// subproof is RFC 6962 §2.1.2's SUBPROOF(m, D[lo:hi], b).
	var subproof func(m, lo, hi int, b bool) [][]byte
	subproof = func(m, lo, hi int, b bool) [][]byte {
		if m == hi-lo {
			if b {
				return nil
			}
			return [][]byte{root(lo, hi)}
		}
		k := 1
		for k*2 < hi-lo {
			k *= 2
		}
		if m <= k {
			return append(subproof(m, lo, lo+k, b), root(lo+k, hi))
		}
		return append(subproof(m-k, lo+k, hi, false), root(lo, lo+k))
	}
	checked := 0
	for m := 1; m <= n; m++ {
		for size := m + 1; size <= n; size++ {
			p := subproof(m, 0, size, true)
			if err := proof.VerifyConsistency(proofHasher{}, uint64(m), uint64(size), p, root(0, m), root(0, size)); err != nil {
				t.Fatalf("%d → %d: %v", m, size, err)
			}
			bad := make([][]byte, len(p))
			for i := range p {
				bad[i] = bytes.Clone(p[i])
			}
			bad[len(bad)-1][sha256.Size-1] ^= 1
			errFast := proof.VerifyConsistency(proofHasher{}, uint64(m), uint64(size), bad, root(0, m), root(0, size))
			errStd := proof.VerifyConsistency(rfc6962.DefaultHasher, uint64(m), uint64(size), bad, root(0, m), root(0, size))
			if errFast == nil || errStd == nil {
				t.Fatalf("%d → %d: corrupted proof accepted (proofHasher: %v, rfc6962: %v)", m, size, errFast, errStd)
			}
			checked++
		}
	}
	if checked == 0 {
		t.Fatal("no proof checked")
	}
}
