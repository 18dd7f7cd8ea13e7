package gossip

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"sync"

	"golang.org/x/mod/sumdb/note"

	"github.com/vigilnet/vigil/roster"
	"github.com/vigilnet/vigil/tlog"
)

// defaultSigCacheSize bounds the signatures remembered as valid (about
// 100 bytes each). One split view at 50 witnesses needs ~100.
const defaultSigCacheSize = 1 << 15

// sigCache remembers signatures that verified. One checkpoint reaches a node
// many times, each time with more cosignatures (every witness cosigns and
// gossips it), and the detector re-reads the merged note it stores; without
// the cache every arrival re-verified every signature already checked, so
// the Ed25519 work per checkpoint grew with the square of the witnesses.
// With it each distinct signature is verified once per node.
//
// Only successes are cached and the key is the whole (key name, key ID,
// signed message, signature) tuple, so a hit means exactly that this
// signature over this message by this key verified before: a different
// checkpoint body, timestamp or signature byte is a miss. Failures are never
// cached, so a forged line still fails (and is still rejected) every time.
//
// Keys are identified by name and key ID, which note.Open requires to be
// unique among the verifiers of one roster; a new roster (which may bind a
// name to another key) empties the cache.
type sigCache struct {
	mu     sync.Mutex
	roster *roster.Roster
	ok     *lru[[32]byte, struct{}]
	max    int
}

func newSigCache(max int) *sigCache {
	return &sigCache{ok: newLRU[[32]byte, struct{}](max), max: max}
}

// wrap returns vs (verifiers from r) wrapped so that Verify consults the
// cache.
func (c *sigCache) wrap(r *roster.Roster, vs ...note.Verifier) []note.Verifier {
	c.mu.Lock()
	if r != c.roster {
		c.roster = r
		c.ok = newLRU[[32]byte, struct{}](c.max)
	}
	ok := c.ok
	c.mu.Unlock()
	out := make([]note.Verifier, len(vs))
	for i, v := range vs {
		out[i] = cachedVerifier{Verifier: v, ok: ok}
	}
	return out
}

// cachedVerifier is a note.Verifier that skips signatures it verified
// before.
type cachedVerifier struct {
	note.Verifier
	// ok is the cache of the roster the verifier came from; one replaced
	// by a newer roster's is simply no longer consulted.
	ok *lru[[32]byte, struct{}]
}

func (v cachedVerifier) Verify(msg, sig []byte) bool {
	k := sigKey(v.Name(), v.KeyHash(), msg, sig)
	if _, hit := v.ok.get(k); hit {
		return true
	}
	if !v.Verifier.Verify(msg, sig) {
		return false
	}
	v.ok.update(k, func(struct{}, bool) struct{} { return struct{}{} })
	return true
}

// sigKey commits to every input of a signature check; the lengths keep the
// fields from running into each other.
func sigKey(name string, hash uint32, msg, sig []byte) [32]byte {
	h := sha256.New()
	var n [8]byte
	for _, part := range [][]byte{[]byte(name), binary.BigEndian.AppendUint32(nil, hash), msg, sig} {
		binary.BigEndian.PutUint64(n[:], uint64(len(part)))
		h.Write(n[:])
		h.Write(part)
	}
	var k [32]byte
	h.Sum(k[:0])
	return k
}

// errLogNotInRoster means a note's origin is not a log of the roster.
var errLogNotInRoster = errors.New("log not in the roster")

// verifyCheckpoint is tlog.VerifyCheckpoint against r's log key and
// witness keys, through the cache.
func (c *sigCache) verifyCheckpoint(r *roster.Roster, origin string, msg []byte) (tlog.Checkpoint, *note.Note, error) {
	lg, ok := r.Log(origin)
	if !ok {
		return tlog.Checkpoint{}, nil, errLogNotInRoster
	}
	vs := c.wrap(r, append([]note.Verifier{lg.Verifier}, r.WitnessVerifiers()...)...)
	return tlog.VerifyCheckpoint(msg, origin, vs[:1], vs[1:]...)
}
