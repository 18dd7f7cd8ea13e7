package gossip

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"math/rand/v2"
	"slices"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"golang.org/x/mod/sumdb/note"

	vpb "github.com/vigilnet/vigil/proto"
	"github.com/vigilnet/vigil/roster"
	"github.com/vigilnet/vigil/store"
	"github.com/vigilnet/vigil/tlog"
)

// Anti-entropy. Catch-up on connect (sync.go) sends a node's state once, when
// a peer connects; gossip carries only what is published while the mesh
// holds. Nodes that start together connect before any of them has
// cosigned, so the catch-up carries nothing, and cosignatures published
// before the mesh formed (or dropped by a node that fell behind) are then
// missing at some nodes for as long as the log stays idle: nothing
// republishes them. So every AntiEntropyInterval (with jitter) a node
// compares a digest of its state with one random connected peer, and where
// the digests differ each sends the other its heads of that log:
//
//	A → B: digest frame per log (origin, SHA-256 of its heads: size, root
//	       and roster cosigners of each), end frame
//	B → A: want frame per log whose digest differs, B's heads of those
//	       logs as sighting frames, end frame
//	A → B: A's heads of the wanted logs as sighting frames, end frame
//
// Each side checks the heads it receives like any sighting (log signature,
// every cosignature against the roster) and merges them through the
// detector. They are checked even if the validator has seen their
// cosigners before: a sighting accepted but then lost on the way to the
// store would otherwise stay ignored as a duplicate. Cost per exchange is
// bounded by the roster's logs (one digest and at most the heads of each);
// a log whose stored checkpoints changed within the last half interval is
// left out on both sides (hotLog): its gossip is still in flight (a split
// view's cosignatures are aggregated and published up to a few hundred
// milliseconds after it, and spread after that), so the digests of two
// nodes differ for a moment and an exchange would send each other heads
// that gossip is delivering anyway, at the busiest moment. It is compared
// at a later exchange, once it has settled;
// a peer may ask at most once per minDigestGap, and a malformed frame ends
// the stream with a penalty (penalty.go).
const (
	defaultAntiEntropyInterval = 10 * time.Second
	// minDigestGap is the least time between two exchanges a peer starts.
	minDigestGap = 100 * time.Millisecond
	// maxDigestLogs bounds the digest frames of one exchange.
	maxDigestLogs = 4096
)

// Frame types on the digest stream, besides frameSighting.
const (
	frameDigest = 4 // uvarint len || origin || digest[32]
	frameWant   = 5 // origin
	frameEnd    = 6 // empty: the sender's turn is over
)

func (s *Service) digestProtocol() protocol.ID {
	return protocol.ID("/vigil/1/" + s.cfg.Network + "/digest/1.0.0")
}

func (s *Service) startAntiEntropy(ctx context.Context) {
	asked := newLRU[peer.ID, time.Time](10_000)
	s.cfg.Host.SetStreamHandler(s.digestProtocol(), func(st network.Stream) {
		if ctx.Err() != nil || s.refused(st) {
			st.Reset()
			return
		}
		p, now := st.Conn().RemotePeer(), time.Now()
		early := false
		asked.update(p, func(last time.Time, ok bool) time.Time {
			if ok && now.Sub(last) < minDigestGap {
				early = true
				return last
			}
			return now
		})
		if early {
			st.Reset()
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.serveDigest(ctx, st)
		}()
	})
	if s.cfg.AntiEntropyInterval < 0 {
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			// Jitter (±50 %) keeps nodes started together from asking each
			// other at the same instant.
			d := s.cfg.AntiEntropyInterval/2 + rand.N(s.cfg.AntiEntropyInterval+1)
			select {
			case <-ctx.Done():
				return
			case <-time.After(d):
			}
			peers := s.cfg.Host.Network().Peers()
			if len(peers) == 0 {
				continue
			}
			p := peers[rand.IntN(len(peers))]
			if err := s.exchangeDigest(ctx, p); err != nil && ctx.Err() == nil {
				s.log.Debug("digest exchange", "peer", p, "err", err)
			}
		}
	}()
}

// digests returns this node's digest of each roster log it has a
// checkpoint of, and its heads of each.
func (s *Service) digests(ctx context.Context) (map[string][32]byte, map[string][]store.CheckpointRecord) {
	r := s.cfg.Roster()
	ds, heads := map[string][32]byte{}, map[string][]store.CheckpointRecord{}
	now := time.Now()
	for _, l := range r.Logs() {
		if s.hotLog(l.Origin, now) {
			continue
		}
		d, recs, err := s.cachedHeads(ctx, r, l.Origin)
		if err != nil || len(recs) == 0 {
			continue
		}
		ds[l.Origin], heads[l.Origin] = d, recs
	}
	return ds, heads
}

// logChanged notes that the stored checkpoints of origin changed now.
func (s *Service) logChanged(origin string) {
	now := time.Now()
	s.changed.update(origin, func(time.Time, bool) time.Time { return now })
	if s.det != nil {
		s.det.headsCache.changed(origin)
	}
}

// hotLog reports whether origin's stored checkpoints changed within the
// last half anti-entropy interval, so that the exchange leaves it out.
func (s *Service) hotLog(origin string, now time.Time) bool {
	at, ok := s.changed.get(origin)
	return ok && now.Sub(at) < s.cfg.AntiEntropyInterval/2
}

// headsDigest hashes a log's heads: each one's size, root and the roster
// names of its cosigners, in a canonical order.
func headsDigest(r *roster.Roster, recs []store.CheckpointRecord) [32]byte {
	recs = slices.Clone(recs)
	slices.SortFunc(recs, func(a, b store.CheckpointRecord) int { return bytes.Compare(a.Root[:], b.Root[:]) })
	h := sha256.New()
	for _, rec := range recs {
		h.Write(binary.BigEndian.AppendUint64(nil, rec.Size))
		h.Write(rec.Root[:])
		names := noteCosigners(r, rec.Note)
		slices.Sort(names)
		for _, n := range names {
			h.Write(binary.AppendUvarint(nil, uint64(len(n))))
			h.Write([]byte(n))
		}
		h.Write([]byte{0})
	}
	var d [32]byte
	h.Sum(d[:0])
	return d
}

// noteCosigners returns the roster witnesses a stored note has a signature
// line from. Stored notes carry only verified signatures, so the lines are
// read, not verified.
func noteCosigners(r *roster.Roster, signedNote []byte) []string {
	i := bytes.LastIndex(signedNote, []byte("\n\n"))
	if i < 0 {
		return nil
	}
	var out []string
	for _, line := range bytes.Split(signedNote[i+2:], []byte("\n")) {
		name, sig, ok := bytes.Cut(bytes.TrimPrefix(line, []byte("— ")), []byte(" "))
		if !ok {
			continue
		}
		raw, err := base64.StdEncoding.DecodeString(string(sig))
		if err != nil || len(raw) < 4 {
			continue
		}
		if w, ok := r.WitnessByKey(string(name), binary.BigEndian.Uint32(raw)); ok && !slices.Contains(out, w.Name) {
			out = append(out, w.Name)
		}
	}
	return out
}

// exchangeDigest runs one exchange with p as the side that asks.
func (s *Service) exchangeDigest(ctx context.Context, p peer.ID) (err error) {
	ctx, cancel := context.WithTimeout(ctx, syncTimeout)
	defer cancel()
	st, err := s.cfg.Host.NewStream(ctx, p, s.digestProtocol())
	if err != nil {
		return err
	}
	defer st.Close()
	st.SetDeadline(time.Now().Add(syncTimeout))
	differ := false
	defer func() {
		res := "same"
		switch {
		case err != nil:
			res = "error"
		case differ:
			res = "differ"
		}
		s.metrics.digests.WithLabelValues("sent", res).Inc()
	}()
	mine, heads := s.digests(ctx)
	w := bufio.NewWriter(st)
	for origin, d := range mine {
		f := binary.AppendUvarint(nil, uint64(len(origin)))
		f = append(append(f, origin...), d[:]...)
		if err := writeFrame(w, frameDigest, f); err != nil {
			return err
		}
	}
	if err := writeFrame(w, frameEnd, nil); err != nil {
		return err
	}
	if err := w.Flush(); err != nil {
		return err
	}
	r := bufio.NewReader(st)
	wants, err := s.readHeads(ctx, st, r, true)
	if err != nil {
		return err
	}
	differ = len(wants) > 0
	return s.writeHeads(w, heads, wants)
}

// serveDigest answers one exchange as the side asked.
func (s *Service) serveDigest(ctx context.Context, st network.Stream) {
	defer st.Close()
	ctx, cancel := context.WithTimeout(ctx, syncTimeout)
	defer cancel()
	st.SetDeadline(time.Now().Add(syncTimeout))
	res := "error"
	defer func() { s.metrics.digests.WithLabelValues("served", res).Inc() }()
	r := bufio.NewReader(st)
	theirs := map[string][32]byte{}
	for {
		typ, b, err := readFrame(r)
		if err != nil {
			s.streamError(st, "digest", err)
			return
		}
		if typ == frameEnd {
			break
		}
		origin, d, ok := parseDigestFrame(typ, b)
		if !ok || len(theirs) >= maxDigestLogs {
			s.penalise(st, "digest", "malformed")
			return
		}
		theirs[origin] = d
	}
	mine, heads := s.digests(ctx)
	var wants []string
	now := time.Now()
	for _, l := range s.cfg.Roster().Logs() {
		if s.hotLog(l.Origin, now) {
			continue
		}
		m, okM := mine[l.Origin]
		t, okT := theirs[l.Origin]
		if okM != okT || m != t {
			wants = append(wants, l.Origin)
		}
	}
	w := bufio.NewWriter(st)
	for _, origin := range wants {
		if err := writeFrame(w, frameWant, []byte(origin)); err != nil {
			st.Reset()
			return
		}
	}
	if err := s.writeHeads(w, heads, wants); err != nil {
		st.Reset()
		return
	}
	res = "same"
	if len(wants) == 0 {
		return
	}
	res = "differ"
	if _, err := s.readHeads(ctx, st, r, false); err != nil {
		res = "error"
	}
}

// writeHeads writes this node's heads of the given logs as sighting
// frames, then an end frame, and flushes.
func (s *Service) writeHeads(w *bufio.Writer, heads map[string][]store.CheckpointRecord, origins []string) error {
	for _, origin := range origins {
		for _, rec := range heads[origin] {
			b, err := vpb.MarshalSighting(&vpb.Sighting{Checkpoint: rec.Note, Observer: s.cfg.Name, SeenUnixMs: rec.FirstSeen.UnixMilli(), Source: vpb.Source_SOURCE_GOSSIP})
			if err != nil {
				continue
			}
			if err := writeFrame(w, frameSighting, b); err != nil {
				return err
			}
		}
	}
	if err := writeFrame(w, frameEnd, nil); err != nil {
		return err
	}
	return w.Flush()
}

// readHeads reads the other side's turn up to its end frame: sighting
// frames it checks and hands to the detector and, if wantsOK, want frames
// it returns.
func (s *Service) readHeads(ctx context.Context, st network.Stream, r *bufio.Reader, wantsOK bool) ([]string, error) {
	from := st.Conn().RemotePeer()
	rs := s.cfg.Roster()
	var wants []string
	for i := 0; ; i++ {
		typ, b, err := readFrame(r)
		if err != nil {
			s.streamError(st, "digest", err)
			return nil, err
		}
		switch {
		case typ == frameEnd:
			return wants, nil
		case i >= maxSyncMessages:
			s.penalise(st, "digest", "too_many_frames")
			return nil, errBadFrame
		case typ == frameWant && wantsOK:
			if _, ok := rs.Log(string(b)); !ok {
				s.penalise(st, "digest", "unknown_origin")
				return nil, errBadFrame
			}
			wants = append(wants, string(b))
		case typ == frameSighting:
			sg, res, reason := s.catchUpSighting(b, from)
			s.val.result("digest", res, reason)
			if penalised(res, reason) {
				s.penalise(st, "digest", reason)
				return nil, errBadFrame
			}
			if sg != nil {
				s.det.process(ctx, sg)
			}
		default:
			s.penalise(st, "digest", "malformed")
			return nil, errBadFrame
		}
	}
}

// catchUpSighting checks a sighting received in an exchange: fully, like
// any other, but without skipping it as a duplicate of what the validator
// accepted before (see the package comment above).
func (s *Service) catchUpSighting(data []byte, from peer.ID) (*sighting, pubsub.ValidationResult, string) {
	if len(data) > vpb.MaxSightingSize {
		return nil, pubsub.ValidationReject, "oversized"
	}
	msg, err := vpb.UnmarshalSighting(data)
	if err != nil {
		return nil, pubsub.ValidationReject, "malformed"
	}
	return s.val.checkSightingWith(msg, from, false, func(r *roster.Roster, _ *roster.Log, origin string) (tlog.Checkpoint, *note.Note, error) {
		return s.sigs.verifyCheckpoint(r, origin, msg.Checkpoint)
	})
}

// parseDigestFrame decodes a digest frame.
func parseDigestFrame(typ byte, b []byte) (origin string, d [32]byte, ok bool) {
	if typ != frameDigest {
		return "", d, false
	}
	l, n := binary.Uvarint(b)
	if n <= 0 || l == 0 || l > maxOriginLen || uint64(len(b)-n) != l+32 {
		return "", d, false
	}
	origin = string(b[n : n+int(l)])
	copy(d[:], b[n+int(l):])
	return origin, d, true
}
