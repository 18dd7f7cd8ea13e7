package gossip

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"sync"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/time/rate"

	"github.com/vigilnet/vigil/gossip/evidence"
	vpb "github.com/vigilnet/vigil/proto"
	"github.com/vigilnet/vigil/roster"
	"github.com/vigilnet/vigil/tlog"
)

// sighting is a validated Sighting, handed from the validator to the
// detector through pubsub's ValidatorData.
type sighting struct {
	msg    *vpb.Sighting
	from   peer.ID
	origin string
	cp     tlog.Checkpoint
	// sigs are the verified signatures: the log's and roster witnesses'.
	sigs []note.Signature
	// cosigners are the roster names of the witnesses among sigs.
	cosigners map[string]bool
	// accepted is when the checkpoints topic's validator accepted it.
	accepted time.Time
}

type verifiedEvidence struct {
	e       *vpb.Evidence
	finding *evidence.Finding
	id      string
	from    peer.ID
}

// cpKey identifies a checkpoint: (origin, size, root).
type cpKey struct {
	origin string
	size   uint64
	root   [32]byte
}

// validator runs before pubsub accepts or forwards anything.
type validator struct {
	s *Service

	// known maps a checkpoint to the set of roster cosigners already
	// accepted for it: a sighting adding none is a duplicate.
	known *lru[cpKey, cosignerSet]
	// seenEvidence holds IDs of evidence already accepted.
	seenEvidence *lru[string, bool]
	// gossiped holds the checkpoints this node knows to be in gossip: it
	// accepted them from, or published them on, the checkpoints topic, or
	// took them into aggregation, which announces every checkpoint new to
	// it (aggregate.go; a withholding collector is covered by the
	// fallback). See Service.selfEvident.
	gossiped *lru[cpKey, bool]

	// local hands PublishSighting's checks to the validator (local.go).
	local *localSightings

	mu      sync.Mutex
	limiter map[peer.ID]*rate.Limiter
}

// knownCheckpoints bounds validator.known. An entry (key, cosigner set,
// cache slot) takes about 270 bytes with one cosigner (measured by
// TestKnownCheckpointsBound), so 16,384 entries are at most about 4.5 MB
// where 100,000 were about 53 MB, reached after under two minutes of
// 1,000 logs cosigned at 1,000 checkpoints/s. 16,384 are the 16 newest
// checkpoints of each of 1,000 logs: duplicates of a sighting arrive within
// gossip's propagation and anti-entropy sync, seconds, not minutes. An
// evicted checkpoint costs only a duplicate forwarded once more: known
// suppresses duplicates and lets isKnown skip a publish, and neither
// decides what is verified or stored.
const knownCheckpoints = 16_384

func newValidator(s *Service) *validator {
	return &validator{
		s:            s,
		known:        newLRU[cpKey, cosignerSet](knownCheckpoints),
		seenEvidence: newLRU[string, bool](10_000),
		gossiped:     newLRU[cpKey, bool](4096),
		limiter:      map[peer.ID]*rate.Limiter{},
		local:        newLocalSightings(),
	}
}

// allow applies the per-peer rate limit.
func (v *validator) allow(p peer.ID) bool {
	if p == v.s.self {
		return true
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	l, ok := v.limiter[p]
	if !ok {
		if len(v.limiter) > 10_000 {
			clear(v.limiter) // bounded memory; limits restart
		}
		l = rate.NewLimiter(rate.Limit(v.s.cfg.PeerRate), v.s.cfg.PeerBurst)
		v.limiter[p] = l
	}
	return l.Allow()
}

func (v *validator) result(topic string, r pubsub.ValidationResult, reason string) pubsub.ValidationResult {
	name := map[pubsub.ValidationResult]string{pubsub.ValidationAccept: "accept", pubsub.ValidationReject: "reject", pubsub.ValidationIgnore: "ignore"}[r]
	v.s.metrics.validated.WithLabelValues(topic, name, reason).Inc()
	if r == pubsub.ValidationReject {
		v.s.log.Debug("rejected gossip", "topic", topic, "reason", reason)
	}
	return r
}

// sighting validates a message on the checkpoints topic. Reject (which
// lowers the sender's score) is for what is provably bad: oversized,
// undecodable, unknown log, missing or failing signatures. Ignore is for
// rate-limited and duplicate messages.
func (v *validator) sighting(ctx context.Context, from peer.ID, m *pubsub.Message) pubsub.ValidationResult {
	const t = "checkpoints"
	v.s.arrivals.observe(m, v.s.metrics.validationWait)
	if len(m.Data) > vpb.MaxSightingSize {
		return v.result(t, pubsub.ValidationReject, "oversized")
	}
	if !v.allow(from) {
		return v.result(t, pubsub.ValidationIgnore, "rate_limited")
	}
	v.s.gate.wait(ctx)
	if ctx.Err() != nil {
		return v.result(t, pubsub.ValidationIgnore, "timeout")
	}
	if from == v.s.self {
		// PublishSighting checked it just now (local.go).
		if s, ok := v.local.take(m.Data); ok {
			s.accepted = time.Now()
			m.ValidatorData = s
			v.markGossiped(s)
			return v.result(t, pubsub.ValidationAccept, "ok_local")
		}
	}
	s, res, reason := v.checkSighting(m.Data, m.GetFrom())
	if res == pubsub.ValidationAccept {
		s.accepted = time.Now()
		m.ValidatorData = s
		v.markGossiped(s)
	}
	return v.result(t, res, reason)
}

func (v *validator) markGossiped(s *sighting) {
	v.gossiped.update(cpKey{s.origin, s.cp.Size, s.cp.Root}, func(bool, bool) bool { return true })
}

// wasGossiped reports whether this node knows cp to be in gossip.
func (v *validator) wasGossiped(cp tlog.Checkpoint) bool {
	_, ok := v.gossiped.get(cpKey{cp.Origin, cp.Size, cp.Root})
	return ok
}

// checkSighting decodes and authenticates a Sighting and decides whether
// it is new.
func (v *validator) checkSighting(data []byte, from peer.ID) (*sighting, pubsub.ValidationResult, string) {
	return v.openSighting(data, from, true)
}

// peekSighting is checkSighting for a sighting that does not enter gossip
// here (a cosignature handed to this node as aggregator, aggregate.go): it
// is authenticated the same way, but its cosigners are not added to what
// gossip has shown this node, so that publishing them later is not
// mistaken for a duplicate.
func (v *validator) peekSighting(data []byte, from peer.ID) (*sighting, pubsub.ValidationResult, string) {
	return v.openSighting(data, from, false)
}

func (v *validator) openSighting(data []byte, from peer.ID, remember bool) (*sighting, pubsub.ValidationResult, string) {
	msg, err := vpb.UnmarshalSighting(data)
	if err != nil {
		return nil, pubsub.ValidationReject, "malformed"
	}
	// A copy of a sighting already accepted (another peer forwarding it,
	// or a second copy arriving while the first was being validated) would
	// be ignored after verification; ignore it before. Ignoring is always
	// safe: nothing from the message is used.
	if v.isKnown(msg.Checkpoint) {
		return nil, pubsub.ValidationIgnore, "duplicate"
	}
	// SPEC: the log signature is checked before anything is stored or
	// forwarded; every roster cosignature must verify, unknown ones are
	// ignored (and not stored). Signatures this node verified before are
	// not verified again (sigCache), so a checkpoint arriving again with
	// one more cosignature costs that one verify.
	return v.checkSightingWith(msg, from, remember, func(r *roster.Roster, _ *roster.Log, origin string) (tlog.Checkpoint, *note.Note, error) {
		return v.s.sigs.verifyCheckpoint(r, origin, msg.Checkpoint)
	})
}

// checkSightingWith checks a decoded Sighting, opening its note with open.
// remember adds its cosigners to known (it is being accepted into gossip).
func (v *validator) checkSightingWith(msg *vpb.Sighting, from peer.ID, remember bool, open func(*roster.Roster, *roster.Log, string) (tlog.Checkpoint, *note.Note, error)) (*sighting, pubsub.ValidationResult, string) {
	origin, ok := tlog.OriginOf(msg.Checkpoint)
	if !ok {
		return nil, pubsub.ValidationReject, "malformed"
	}
	r := v.s.cfg.Roster()
	lg, ok := r.Log(origin)
	if !ok {
		return nil, pubsub.ValidationReject, "unknown_origin"
	}
	cp, n, err := open(r, lg, origin)
	if err != nil {
		return nil, pubsub.ValidationReject, "bad_signature"
	}
	if cp.Size == 0 && cp.Root != tlog.EmptyRoot {
		return nil, pubsub.ValidationReject, "bad_empty_root"
	}
	s := &sighting{msg: msg, from: from, origin: origin, cp: cp, sigs: n.Sigs, cosigners: map[string]bool{}}
	for _, sig := range n.Sigs {
		if w, ok := r.WitnessByKey(sig.Name, sig.Hash); ok {
			s.cosigners[w.Name] = true
		}
	}
	if !remember {
		return s, pubsub.ValidationAccept, "ok"
	}
	// Forward each (origin, size, root, cosigners) once: a sighting that
	// adds no cosigner to what this node already accepted is a duplicate.
	fresh := false
	v.known.update(cpKey{origin, cp.Size, cp.Root}, func(old cosignerSet, exists bool) cosignerSet {
		next, added := old.with(s.cosigners)
		fresh = !exists || added
		return next
	})
	if !fresh {
		return nil, pubsub.ValidationIgnore, "duplicate"
	}
	return s, pubsub.ValidationAccept, "ok"
}

// isKnown reports whether a signed note adds nothing to what was accepted:
// its checkpoint is known with at least the signers it claims. It verifies
// nothing (the validator will, if the note is published): skipping a
// publish is always safe, so a note is skipped only when every roster
// witness it names is already known for that exact checkpoint.
func (v *validator) isKnown(signedNote []byte) bool {
	i := bytes.LastIndex(signedNote, []byte("\n\n"))
	if i < 0 {
		return false
	}
	cp, err := tlog.ParseCheckpoint(signedNote[:i+1])
	if err != nil {
		return false
	}
	have, ok := v.known.get(cpKey{cp.Origin, cp.Size, cp.Root})
	if !ok {
		return false
	}
	r := v.s.cfg.Roster()
	for _, line := range bytes.Split(signedNote[i+2:], []byte("\n")) {
		name, sig, ok := bytes.Cut(bytes.TrimPrefix(line, []byte("— ")), []byte(" "))
		if !ok {
			continue
		}
		raw, err := base64.StdEncoding.DecodeString(string(sig))
		if err != nil || len(raw) < 4 {
			continue
		}
		if w, ok := r.WitnessByKey(string(name), binary.BigEndian.Uint32(raw)); ok && !have.has(w.Name) {
			return false
		}
	}
	return true
}

// evidence validates a message on the evidence topic: it must verify
// completely against the roster, or it is rejected.
func (v *validator) evidence(ctx context.Context, from peer.ID, m *pubsub.Message) pubsub.ValidationResult {
	const t = "evidence"
	v.s.arrivals.observe(m, v.s.metrics.validationWait)
	if len(m.Data) > vpb.MaxEvidenceSize {
		return v.result(t, pubsub.ValidationReject, "oversized")
	}
	if !v.allow(from) {
		return v.result(t, pubsub.ValidationIgnore, "rate_limited")
	}
	ve, res, reason := v.checkEvidence(m.Data, m.GetFrom(), from == v.s.self)
	if res == pubsub.ValidationAccept {
		m.ValidatorData = ve
		if from != v.s.self {
			v.s.det.heardEvidence(ve.id) // the topic carries it (evidencehold.go)
		}
	}
	return v.result(t, res, reason)
}

// checkEvidence decodes and verifies evidence against the roster. local
// skips the duplicate check (this node's own publications).
func (v *validator) checkEvidence(data []byte, from peer.ID, local bool) (*verifiedEvidence, pubsub.ValidationResult, string) {
	// Evidence being checked goes ahead of routine gossip work (gate.go).
	v.s.gate.enter()
	defer v.s.gate.exit()
	e, err := vpb.UnmarshalEvidence(data)
	if err != nil {
		return nil, pubsub.ValidationReject, "malformed"
	}
	id := evidence.ID(e)
	if _, seen := v.seenEvidence.get(id); seen && !local {
		return nil, pubsub.ValidationIgnore, "duplicate"
	}
	f, err := v.s.verifyEvidence(e)
	if err != nil {
		return nil, pubsub.ValidationReject, "invalid"
	}
	v.seenEvidence.update(id, func(bool, bool) bool { return true })
	return &verifiedEvidence{e: e, finding: f, id: id, from: from}, pubsub.ValidationAccept, "ok"
}
