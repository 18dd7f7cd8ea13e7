package gossip

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"golang.org/x/mod/sumdb/note"

	"github.com/vigilnet/vigil/roster"
	"github.com/vigilnet/vigil/tlog"
)

// defaultSigCacheSize bounds the signatures remembered as valid (about
// 120 bytes each, 1.9 MB in all: TestLRUMemoryPerEntry). One split view
// at 50 witnesses needs ~100; honest traffic needs a few per log while its
// checkpoint spreads.
const defaultSigCacheSize = 1 << 14

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
	mu  sync.Mutex
	max int
	cur *rosterKeys
}

// rosterKeys are one roster's cached verifiers and the cache they share.
type rosterKeys struct {
	roster *roster.Roster
	ok     *lru[[32]byte, struct{}]
	// witnesses are the roster's cosignature verifiers, wrapped, by
	// signature-line name and key ID; nil marks a name and ID that two
	// keys share (note.Open refuses those).
	witnesses map[sigID]note.Verifier
}

func newSigCache(max int) *sigCache { return &sigCache{max: max} }

// SignatureCache is a node's memory of signatures that verified (see
// sigCache), for sharing between its gossip service (Config.Signatures)
// and other readers of the same notes, such as its feed: a note gossip has
// checked then costs them no Ed25519 work.
type SignatureCache struct{ c *sigCache }

// NewSignatureCache returns an empty cache of the default size.
func NewSignatureCache() *SignatureCache {
	return &SignatureCache{newSigCache(defaultSigCacheSize)}
}

// Wrap returns vs, verifiers of r's keys, wrapped so that Verify consults
// and fills the cache. A different r than the last call's empties it.
func (sc *SignatureCache) Wrap(r *roster.Roster, vs ...note.Verifier) []note.Verifier {
	return sc.c.wrap(r, vs...)
}

// keys returns r's cached verifiers, building them (and a new, empty cache)
// when r is not the roster of the last call.
func (c *sigCache) keys(r *roster.Roster) *rosterKeys {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur != nil && c.cur.roster == r {
		return c.cur
	}
	k := &rosterKeys{roster: r, ok: newLRU[[32]byte, struct{}](c.max), witnesses: map[sigID]note.Verifier{}}
	for _, v := range r.WitnessVerifiers() {
		id := sigID{v.Name(), v.KeyHash()}
		if _, dup := k.witnesses[id]; dup {
			k.witnesses[id] = nil
			continue
		}
		k.witnesses[id] = cachedVerifier{Verifier: v, ok: k.ok}
	}
	c.cur = k
	return k
}

// wrap returns vs (verifiers from r) wrapped so that Verify consults the
// cache.
func (c *sigCache) wrap(r *roster.Roster, vs ...note.Verifier) []note.Verifier {
	ok := c.keys(r).ok
	out := make([]note.Verifier, len(vs))
	for i, v := range vs {
		out[i] = cachedVerifier{Verifier: v, ok: ok}
	}
	return out
}

// noteKeys is the note.Verifiers of one log's checkpoints: the log's key
// and the roster's witness keys, as note.VerifierList would give them,
// without building a map per note.
type noteKeys struct {
	log note.Verifier
	*rosterKeys
}

var errAmbiguousKey = errors.New("two roster keys share a name and key ID")

func (k noteKeys) Verifier(name string, hash uint32) (note.Verifier, error) {
	w, isWitness := k.witnesses[sigID{name, hash}]
	isLog := name == k.log.Name() && hash == k.log.KeyHash()
	switch {
	case isLog && isWitness, isWitness && w == nil:
		return nil, fmt.Errorf("%w: %s %08x", errAmbiguousKey, name, hash)
	case isLog:
		return k.log, nil
	case isWitness:
		return w, nil
	}
	return nil, &note.UnknownVerifierError{Name: name, KeyHash: hash}
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
	rk := c.keys(r)
	logKey := cachedVerifier{Verifier: lg.Verifier, ok: rk.ok}
	return tlog.VerifyCheckpointWith(msg, origin, []note.Verifier{logKey}, noteKeys{log: logKey, rosterKeys: rk})
}
