package evidence

import (
	"crypto/sha256"
	"errors"
	"math/bits"
)

// RootsFromConsistency recomputes, from a consistency proof between tree
// sizes m and n (1 <= m < n), the root of the size-m tree and the root of the
// size-n tree that the proof's hashes imply. An honest proof between two
// consistent checkpoints reproduces both roots; a proof that reproduces the
// size-n root but a different size-m root shows that the size-n tree does not
// extend the size-m checkpoint.
//
// When m is a power of two the standard proof omits the size-m root (the
// verifier supplies it); here the proof must then start with that root, as
// the larger tree has it, so that the result depends on the proof alone.
//
// This is RFC 9162 §2.1.4.2 with both computed roots returned instead of
// compared (transparency-dev/merkle only offers the comparison).
func RootsFromConsistency(m, n uint64, proof [][]byte) (rootM, rootN [32]byte, err error) {
	if m == 0 || m >= n {
		return rootM, rootN, errors.New("consistency proof needs 1 <= m < n")
	}
	if len(proof) == 0 {
		return rootM, rootN, errors.New("empty consistency proof")
	}
	for _, h := range proof {
		if len(h) != 32 {
			return rootM, rootN, errors.New("proof hash is not 32 bytes")
		}
	}
	fn, sn := m-1, n-1
	// Skip the levels where the size-m tree's right edge is a left child
	// all the way up: with m a power of two this consumes every bit of fn,
	// and proof[0] is the size-m root itself.
	tz := bits.TrailingZeros64(^fn)
	fn >>= tz
	sn >>= tz
	var fr, sr [32]byte
	copy(fr[:], proof[0])
	sr = fr
	for _, c := range proof[1:] {
		if sn == 0 {
			return rootM, rootN, errors.New("consistency proof is too long")
		}
		if fn&1 == 1 || fn == sn {
			fr = nodeHash(c, fr[:])
			sr = nodeHash(c, sr[:])
			if fn&1 == 0 {
				for fn&1 == 0 && fn != 0 {
					fn >>= 1
					sn >>= 1
				}
			}
		} else {
			sr = nodeHash(sr[:], c)
		}
		fn >>= 1
		sn >>= 1
	}
	if sn != 0 {
		return rootM, rootN, errors.New("consistency proof is too short")
	}
	return fr, sr, nil
}

// nodeHash is RFC 6962 NH(l, r) = SHA-256(0x01 || l || r).
func nodeHash(l, r []byte) [32]byte {
	var b [65]byte
	b[0] = 1
	copy(b[1:], l)
	copy(b[33:], r)
	return sha256.Sum256(b[:])
}

// IsPowerOfTwo reports whether m is a power of two, i.e. whether an
// evidence-form consistency proof from m must start with the size-m root.
func IsPowerOfTwo(m uint64) bool { return m != 0 && m&(m-1) == 0 }

// EvidenceProof turns a standard RFC 6962 consistency proof from m to n into
// the form evidence carries: when m is a power of two, rootM (the size-m
// root of the larger tree) is prepended; otherwise the proof is unchanged.
func EvidenceProof(m uint64, rootM []byte, proof [][]byte) [][]byte {
	if !IsPowerOfTwo(m) {
		return proof
	}
	return append([][]byte{rootM}, proof...)
}
