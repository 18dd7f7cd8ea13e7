package gossip

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"io"
	"slices"
	"sync"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/mod/sumdb/note"

	vpb "github.com/vigilnet/vigil/proto"
	"github.com/vigilnet/vigil/tlog"
)

// Cosignature aggregation.
//
// Every witness that cosigns a checkpoint used to gossip it with its own
// cosignature: n witnesses, n distinct messages (the message ID covers the
// signatures), each received from several peers, validated, merged and
// stored by every node. One split view at 50 witnesses made that burst most
// of what the network spent on it, and the evidence waited for CPU behind it
// at every hop (docs/notes/benchmarks-history.md). The information is n cosignatures; it
// does not need n messages.
//
// So cosignatures are collected before they are gossiped. Every node ranks
// the roster witnesses that the peers file names by SHA-256 of the
// checkpoint and the witness name, so all rank them alike for one
// checkpoint. A witness hands its cosigned checkpoint, on the stream
// protocol /vigil/1/<network>/cosign/1.0.0, to the best-ranked witness it
// is connected to, if that one ranks above it (else it collects its own).
// A node collecting for a checkpoint waits a window, then hands everything
// it collected on the same way. One to which no connected witness ranks
// above, a last stop, waits two windows (so that what others hand on
// arrives first) and then has a peer relay its collection to the
// checkpoint's first-ranked witness (relay.go), which waits three windows
// and publishes one note with all of it; a last stop that no peer relays
// for publishes its own. So the cosignatures of one checkpoint go out in
// one note, or a few where the network is sparse.
//
// What it must not cost:
//   - Detection speed. A last stop handed a checkpoint that gossip has not
//     shown it yet (perhaps one side of a split view) announces it at once,
//     with the log's signature alone (announcement), and so does a witness
//     that collects its own.
//   - Trust. Collectors are trusted with nothing: cosignatures verify on
//     their own, and one that withholds is covered by the fallback: a
//     witness that has not seen its cosignature come back in gossip within
//     AggregateFallback publishes it itself (at once if the hand-off
//     failed), and one that handed off a checkpoint gossip had not shown
//     it publishes it if gossip still has not after 500 ms, so a
//     withholding collector delays a split view's detection by that much
//     at most.
//   - Amplification. Handed-off frames are checked like gossip (signatures,
//     roster, the per-peer rate limit), a node publishes only cosigners new
//     to it, at most once per window and checkpoint, and a hand-off always
//     goes to a better-ranked witness, so it cannot loop.
//
// A node without a peers file (no witness peer IDs) publishes every own
// cosignature itself, as does one with aggregation disabled.
const (
	defaultAggregateWindow   = 200 * time.Millisecond
	defaultAggregateFallback = 3 * time.Second
	// defaultAnnounceCheck bounds how long a collector can keep a
	// checkpoint new to the network (perhaps one side of a split view)
	// from gossip.
	defaultAnnounceCheck = 500 * time.Millisecond
	// handOffTimeout bounds one hand-off.
	handOffTimeout = 5 * time.Second
	// maxCosignFrames bounds the frames one cosign stream may carry.
	maxCosignFrames = 64
	// maxCollecting bounds the checkpoints a node collects for at once;
	// beyond it, handed-off notes are published as they come.
	maxCollecting = 10_000
)

// aggregator is both sides of aggregation at one node.
type aggregator struct {
	s *Service
	// val checks the sightings the aggregator collects and relays, det
	// takes the checked ones, and seen says whether the validator has
	// taken a checkpoint in (from gossip or this node).
	val      sightingChecks
	det      sightingSink
	seen     func(cpKey) bool
	window   time.Duration
	fallback time.Duration
	// announce is how soon a witness checks that a checkpoint new to it
	// was announced by its next hop (at most fallback).
	announce time.Duration
	// ids maps roster witness names to peer IDs (Config.Peers).
	ids   map[string]peer.ID
	later *later

	mu         sync.Mutex
	collecting map[cpKey]*collected
}

// collected are the signatures an aggregator holds for one checkpoint.
type collected struct {
	body []byte // the checkpoint text, up to and including its last newline
	sigs []note.Signature
}

// newAggregator returns nil (aggregation off) if it is disabled or the
// peers file names no one.
func newAggregator(s *Service) *aggregator {
	if s.cfg.DisableAggregation || len(s.cfg.Peers) == 0 {
		return nil
	}
	a := &aggregator{
		s:   s,
		val: s.val,
		det: s.det,
		seen: func(k cpKey) bool {
			_, ok := s.val.known.get(k)
			return ok
		},
		window:     cmp.Or(s.cfg.AggregateWindow, defaultAggregateWindow),
		fallback:   cmp.Or(s.cfg.AggregateFallback, defaultAggregateFallback),
		ids:        map[string]peer.ID{},
		later:      newLater(),
		collecting: map[cpKey]*collected{},
	}
	a.announce = min(a.fallback, defaultAnnounceCheck)
	for _, p := range s.cfg.Peers {
		a.ids[p.Name] = p.Info.ID
	}
	return a
}

func (s *Service) cosignProtocol() protocol.ID {
	return protocol.ID("/vigil/1/" + s.cfg.Network + "/cosign/1.0.0")
}

// start serves hand-offs and runs the scheduled publications until ctx ends.
func (a *aggregator) start(ctx context.Context) {
	a.s.cfg.Host.SetStreamHandler(a.s.cosignProtocol(), func(st network.Stream) {
		if ctx.Err() != nil || a.s.refused(st) {
			st.Reset()
			return
		}
		a.s.wg.Add(1)
		go func() {
			defer a.s.wg.Done()
			a.receive(ctx, st)
		}()
	})
	a.s.wg.Add(1)
	go func() {
		defer a.s.wg.Done()
		a.later.run(ctx)
	}()
}

// rankedWitness is a roster witness reachable by peer ID, with its rank
// hash for one checkpoint.
type rankedWitness struct {
	id peer.ID
	h  [32]byte
}

// ranking returns the roster witnesses with a known peer ID, in aggregator
// order for key: by SHA-256(origin, size, root, name).
func (a *aggregator) ranking(key cpKey) []rankedWitness {
	ws := a.s.cfg.Roster().Witnesses()
	out := make([]rankedWitness, 0, len(ws))
	var buf []byte
	for _, w := range ws {
		id, ok := a.ids[w.Name]
		if !ok {
			continue
		}
		buf = append(buf[:0], key.origin...)
		buf = append(buf, '\n')
		buf = binary.BigEndian.AppendUint64(buf, key.size)
		buf = append(buf, key.root[:]...)
		buf = append(buf, w.Name...)
		out = append(out, rankedWitness{id: id, h: sha256.Sum256(buf)})
	}
	slices.SortFunc(out, func(x, y rankedWitness) int { return bytes.Compare(x.h[:], y.h[:]) })
	return out
}

// route returns, for key, this node's next hop, the connected witness
// ranked best if it ranks above this node (where this node hands key's
// cosignatures; empty: it collects them itself), and the first-ranked
// witness of all (empty if no roster witness has a known peer ID), where a
// last stop has its collection relayed (relay.go). Both come from one
// ranking.
func (a *aggregator) route(key cpKey) (hop, first peer.ID) {
	ranked := a.ranking(key)
	if len(ranked) > 0 {
		first = ranked[0].id
	}
	net := a.s.cfg.Host.Network()
	for _, w := range ranked {
		if w.id == a.s.self {
			return "", first
		}
		if net.Connectedness(w.id) == network.Connected {
			return w.id, first
		}
	}
	return "", first
}

// handOff takes this node's own cosigned note (SOURCE_COSIGN) in place of
// publishing it: it hands it on or collects it, and schedules the
// fallback. It reports false if the note does not check (PublishSighting
// then reports why).
func (a *aggregator) handOff(ctx context.Context, signedNote []byte) bool {
	msg := &vpb.Sighting{Checkpoint: signedNote, Observer: a.s.cfg.Name, SeenUnixMs: time.Now().UnixMilli(), Source: vpb.Source_SOURCE_COSIGN}
	b, err := vpb.MarshalSighting(msg)
	if err != nil {
		return false
	}
	if a.val.isKnown(signedNote) {
		return true // gossip already carries it
	}
	sg, _, _ := a.val.checkLocalWith(b, msg, false)
	if sg == nil {
		return false
	}
	// The node's own view, which its publication used to bring back to
	// its detector. Aggregation announces it to gossip (selfEvident).
	a.val.markGossiped(sg)
	a.det.process(ctx, sg)
	key := cpKey{sg.origin, sg.cp.Size, sg.cp.Root}
	seen := a.seen(key)
	hop, _ := a.route(key)
	if hop == "" {
		a.s.metrics.handOffs.WithLabelValues("collected").Inc()
		a.collect(ctx, sg)
		return true
	}
	a.s.wg.Add(1)
	go func() {
		defer a.s.wg.Done()
		if !a.send(ctx, hop, b) {
			a.s.metrics.handOffs.WithLabelValues("unreachable").Inc()
			a.publish(ctx, signedNote, vpb.Source_SOURCE_COSIGN)
			return
		}
		a.s.metrics.handOffs.WithLabelValues("sent").Inc()
		fallback := a.unlessBack(ctx, signedNote, vpb.Source_SOURCE_COSIGN, a.s.metrics.handOffs.WithLabelValues("fallback"))
		if seen {
			a.after(a.fallback, fallback)
			return
		}
		// A checkpoint gossip had not shown this node may be one side of
		// a split view: if gossip still has not shown it shortly, the
		// next hop did not announce it, and this node does.
		a.after(a.announce, func() {
			if !a.seen(key) {
				fallback()
				return
			}
			a.after(a.fallback-a.announce, fallback)
		})
	}()
	return true
}

// unlessBack returns a fallback that publishes signedNote, which this node
// handed on or had relayed, unless gossip has brought back every
// cosignature in it; published counts the times it does.
func (a *aggregator) unlessBack(ctx context.Context, signedNote []byte, source vpb.Source, published prometheus.Counter) func() {
	return func() {
		if !a.val.isKnown(signedNote) {
			published.Inc()
			a.publish(ctx, signedNote, source)
		}
	}
}

// after runs fn after d, or at once if too much is scheduled already.
func (a *aggregator) after(d time.Duration, fn func()) {
	if !a.later.at(time.Now().Add(d), fn) {
		fn()
	}
}

// send hands one Sighting to p; it reports whether p took it.
func (a *aggregator) send(ctx context.Context, p peer.ID, sighting []byte) bool {
	ctx, cancel := context.WithTimeout(ctx, handOffTimeout)
	defer cancel()
	if err := a.s.sendFrames(ctx, p, a.s.cosignProtocol(), []syncFrame{{frameSighting, sighting}}); err != nil {
		a.s.log.Debug("handing cosignatures on", "peer", p, "err", err)
		return false
	}
	return true
}

// receive reads handed-off cosignatures from one stream.
func (a *aggregator) receive(ctx context.Context, st network.Stream) {
	defer st.Close()
	st.SetDeadline(time.Now().Add(handOffTimeout))
	from := st.Conn().RemotePeer()
	r := bufio.NewReader(st)
	for range maxCosignFrames {
		typ, b, err := readFrame(r)
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			a.s.log.Debug("cosign stream", "peer", from, "err", err)
			a.s.streamError(st, "cosign", err)
			return
		}
		if (typ != frameSighting && typ != frameRelay) || len(b) > vpb.MaxSightingSize {
			a.val.result("cosign", pubsub.ValidationReject, "malformed")
			a.s.penalise(st, "cosign", "malformed")
			return
		}
		if !a.val.allow(from) {
			a.val.result("cosign", pubsub.ValidationIgnore, "rate_limited")
			continue
		}
		sg, res, reason := a.val.peekSighting(b, from)
		a.val.result("cosign", res, reason)
		if sg == nil {
			if res == pubsub.ValidationReject {
				a.s.rejectStream(st, "cosign", reason)
				return
			}
			continue
		}
		if typ == frameRelay {
			// A request ends its stream: the answer is all that follows.
			answer := byte(relayDeclined)
			if a.pass(ctx, sg, b) {
				answer = relayPassed
			}
			st.Write([]byte{answer})
			return
		}
		a.val.markGossiped(sg) // collected, so announced (selfEvident)
		a.det.process(ctx, sg)
		a.collect(ctx, sg)
	}
}

// collect adds a sighting's signatures to what this node collects for its
// checkpoint. The first time, if gossip has not shown this node the
// checkpoint yet, it passes the sighting on at once (to its next hop, or to
// gossip if it has none), and it schedules the flush.
func (a *aggregator) collect(ctx context.Context, sg *sighting) {
	key := cpKey{sg.origin, sg.cp.Size, sg.cp.Root}
	a.mu.Lock()
	c, scheduled := a.collecting[key]
	if !scheduled && len(a.collecting) >= maxCollecting {
		a.mu.Unlock()
		a.publish(ctx, sg.msg.Checkpoint, vpb.Source_SOURCE_GOSSIP)
		return
	}
	if !scheduled {
		c = newCollected(sg)
		a.collecting[key] = c
	}
	c.add(sg.sigs)
	a.mu.Unlock()
	if scheduled {
		return
	}
	hop, first := a.route(key)
	if !a.seen(key) {
		// It may be one side of a split view, which must not wait: the
		// last stop announces it at once, and a node on the way hands it
		// on at once (only the last stops then announce it, not every
		// node it passed).
		if hop == "" || !a.forward(ctx, hop, sg.msg.Checkpoint) {
			a.publish(ctx, a.announcement(sg), a.source(sg))
		}
	}
	wait := a.window
	switch {
	case hop == "" && first == a.s.self:
		wait *= 3 // the first-ranked witness: let relayed collections arrive too (relay.go)
	case hop == "":
		wait *= 2 // a last stop: let the others' collections arrive
	}
	// The flush may wait on a stream to the next hop; it must not hold up
	// the other scheduled work.
	flush := func() {
		a.s.wg.Add(1)
		go func() {
			defer a.s.wg.Done()
			a.flush(ctx, key)
		}()
	}
	a.after(wait, flush)
}

// announcement is what a last stop publishes at once for a checkpoint new
// to it: the checkpoint with the log's signature alone. Detection needs
// nothing more, and the cosignatures follow in the flush. Every last stop
// of a checkpoint (two to four on a sparse network) announces it, each
// with the cosignatures handed to it so far; with those, each announcement
// was a different gossip message (the message ID covers the signatures),
// which every node validated, merged and forwarded. Without them they are
// one message, which pubsub delivers once network-wide. The log signs
// deterministically (Ed25519), so every copy of its signed note is the
// same.
func (a *aggregator) announcement(sg *sighting) []byte {
	lg, ok := a.s.cfg.Roster().Log(sg.origin)
	if !ok {
		return sg.msg.Checkpoint
	}
	name, hash := lg.Verifier.Name(), lg.Verifier.KeyHash()
	sigs := slices.DeleteFunc(slices.Clone(sg.sigs), func(sig note.Signature) bool { return sig.Name != name || sig.Hash != hash })
	if len(sigs) == 0 {
		return sg.msg.Checkpoint
	}
	return signedNote(noteText(sg.msg.Checkpoint), sigs)
}

// flush hands on, or publishes, what was collected for key. PublishSighting
// skips a note whose every cosigner gossip already carries.
func (a *aggregator) flush(ctx context.Context, key cpKey) {
	a.mu.Lock()
	c := a.collecting[key]
	delete(a.collecting, key)
	a.mu.Unlock()
	if c == nil {
		return
	}
	n := c.note()
	if a.val.isKnown(n) {
		return
	}
	hop, first := a.route(key)
	if hop != "" && a.forward(ctx, hop, n) {
		return
	}
	if a.relay(ctx, first, n) {
		return
	}
	a.publish(ctx, n, vpb.Source_SOURCE_GOSSIP)
}

// forward hands a signed note this node collected to its next hop; it
// reports whether the hop took it.
func (a *aggregator) forward(ctx context.Context, hop peer.ID, signedNote []byte) bool {
	b, err := a.collectedSighting(signedNote)
	return err == nil && a.send(ctx, hop, b)
}

// collectedSighting is the Sighting in which this node hands on (or has
// relayed) a signed note it collected: SOURCE_GOSSIP, so that the receiver
// verifies it rather than trusts it.
func (a *aggregator) collectedSighting(signedNote []byte) ([]byte, error) {
	return vpb.MarshalSighting(&vpb.Sighting{Checkpoint: signedNote, Observer: a.s.cfg.Name, SeenUnixMs: time.Now().UnixMilli(), Source: vpb.Source_SOURCE_GOSSIP})
}

func (a *aggregator) publish(ctx context.Context, signedNote []byte, source vpb.Source) {
	if err := a.s.PublishSighting(ctx, signedNote, source); err != nil && ctx.Err() == nil {
		a.s.log.Warn("publishing aggregated sighting", "err", err)
	}
}

// newCollected starts a collection with sg's checkpoint.
func newCollected(sg *sighting) *collected {
	return &collected{body: noteText(sg.msg.Checkpoint)}
}

// noteText returns a signed note's text, up to and including its last
// newline (the note was opened: it has one).
func noteText(signed []byte) []byte {
	return signed[:bytes.LastIndex(signed, []byte("\n\n"))+1]
}

// source is what a collector publishes sg as: its own cosignature as
// SOURCE_COSIGN, anything handed to it as SOURCE_GOSSIP (so that it is
// verified, not trusted, by PublishSighting).
func (a *aggregator) source(sg *sighting) vpb.Source {
	if sg.from == a.s.self && sg.msg.Source == vpb.Source_SOURCE_COSIGN {
		return vpb.Source_SOURCE_COSIGN
	}
	return vpb.Source_SOURCE_GOSSIP
}

// add merges verified signatures, one per key (a note may not carry two
// signatures by one key; the first is kept).
func (c *collected) add(sigs []note.Signature) {
	for _, sig := range sigs {
		if !slices.ContainsFunc(c.sigs, func(x note.Signature) bool { return x.Name == sig.Name && x.Hash == sig.Hash }) {
			c.sigs = append(c.sigs, sig)
		}
	}
}

// note returns the checkpoint with every collected signature, in the order
// they arrived (the log's first, as in the first note collected).
func (c *collected) note() []byte { return signedNote(c.body, c.sigs) }

// signedNote formats a signed note from a note's text (noteText: it ends
// in a newline, as FormatNote requires) and verified signatures.
func signedNote(text []byte, sigs []note.Signature) []byte {
	b, _ := tlog.FormatNote(text, sigs)
	return b
}
