package gossip

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	vpb "github.com/vigilnet/vigil/proto"
	"github.com/vigilnet/vigil/store"
)

// Catch-up on connect. Gossip only carries what is published while peers
// are connected, so two nodes that meet (after a partition heals, or a new
// node joins) would never compare what they saw before. On every new
// connection each side sends the other, on a one-way stream, its newest
// checkpoint per log and its latest evidence; the receiver runs them through
// the same checks as gossip and then the detector, and publishes evidence
// that is new to it.
const (
	// maxSyncMessages bounds the messages one sync stream may carry.
	maxSyncMessages = 4096
	// maxSyncEvidence bounds the evidence records sent per sync.
	maxSyncEvidence = 64
	syncTimeout     = 30 * time.Second
)

// Frame types on the sync stream: 1 = Sighting, 2 = Evidence; each frame is
// type byte || uvarint length || message.
const (
	frameSighting = 1
	frameEvidence = 2
)

// SyncStore is what the catch-up protocol reads; *store.DB is one.
type SyncStore interface {
	NewestEvidenceIDs(ctx context.Context, limit int) ([]string, error)
	Evidence(ctx context.Context, id string) (store.EvidenceRecord, error)
}

func (s *Service) syncProtocol() protocol.ID {
	return protocol.ID("/vigil/1/" + s.cfg.Network + "/sync/1.0.0")
}

func (s *Service) startSync(ctx context.Context) {
	s.cfg.Host.SetStreamHandler(s.syncProtocol(), func(st network.Stream) {
		if ctx.Err() != nil {
			st.Reset()
			return
		}
		if s.refused(st) {
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.receiveSync(ctx, st)
		}()
	})
	s.notifee = &network.NotifyBundle{
		ConnectedF: func(_ network.Network, c network.Conn) {
			p := c.RemotePeer()
			if ctx.Err() != nil {
				return
			}
			s.roll.connected(p)
			if _, recent := s.synced.get(p); recent {
				return
			}
			s.synced.update(p, func(time.Time, bool) time.Time { return time.Now() })
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				if err := s.sendSync(ctx, p); err != nil {
					s.log.Debug("sync", "peer", p, "err", err)
				}
			}()
		},
		DisconnectedF: func(_ network.Network, c network.Conn) {
			if len(s.cfg.Host.Network().ConnsToPeer(c.RemotePeer())) == 0 {
				s.synced.remove(c.RemotePeer())
				s.roll.left(c.RemotePeer())
			}
		},
	}
	s.cfg.Host.Network().Notify(s.notifee)
}

// syncFrame is one frame to send on the sync protocol.
type syncFrame struct {
	typ  byte
	data []byte
}

// sendSync writes this node's newest checkpoint per log and its latest
// evidence to p.
func (s *Service) sendSync(ctx context.Context, p peer.ID) error {
	var frames []syncFrame
	for _, l := range s.cfg.Roster().Logs() {
		recs, err := s.heads(ctx, l.Origin)
		if err != nil {
			continue
		}
		for _, rec := range recs {
			b, err := vpb.MarshalSighting(&vpb.Sighting{Checkpoint: rec.Note, Observer: s.cfg.Name, SeenUnixMs: rec.FirstSeen.UnixMilli(), Source: vpb.Source_SOURCE_GOSSIP})
			if err != nil {
				continue
			}
			frames = append(frames, syncFrame{frameSighting, b})
		}
	}
	if es, ok := s.cfg.Store.(SyncStore); ok {
		recs, err := newestEvidence(ctx, es, maxSyncEvidence)
		if err == nil {
			for _, rec := range recs {
				frames = append(frames, syncFrame{frameEvidence, rec.Data})
			}
		}
	}
	return s.sendFrames(ctx, p, s.syncProtocol(), frames)
}

// sendFrames writes frames to p on one stream of protocol proto (sync, or
// cosign for aggregation).
func (s *Service) sendFrames(ctx context.Context, p peer.ID, proto protocol.ID, frames []syncFrame) error {
	ctx, cancel := context.WithTimeout(ctx, syncTimeout)
	defer cancel()
	st, err := s.cfg.Host.NewStream(network.WithAllowLimitedConn(ctx, string(proto)), p, proto)
	if err != nil {
		return err
	}
	defer st.Close()
	st.SetDeadline(time.Now().Add(syncTimeout))
	w := bufio.NewWriter(st)
	for _, f := range frames {
		if err := writeFrame(w, f.typ, f.data); err != nil {
			return err
		}
	}
	return w.Flush()
}

// newestEvidence returns the n most recently stored evidence records, oldest
// first: it reads only the newest n IDs and then those records.
func newestEvidence(ctx context.Context, es SyncStore, n int) ([]store.EvidenceRecord, error) {
	ids, err := es.NewestEvidenceIDs(ctx, n)
	if err != nil {
		return nil, err
	}
	out := make([]store.EvidenceRecord, 0, len(ids))
	for i := len(ids) - 1; i >= 0; i-- {
		rec, err := es.Evidence(ctx, ids[i])
		if err != nil {
			return nil, err
		}
		out = append(out, rec)
	}
	return out, nil
}

// heads returns the checkpoints to offer for a log: the newest one, and
// any other root at that size (a split view the peer should learn of).
func (s *Service) heads(ctx context.Context, origin string) ([]store.CheckpointRecord, error) {
	rec, err := s.cfg.Store.NewestCheckpoint(ctx, origin, 0)
	if err != nil {
		return nil, err
	}
	return s.cfg.Store.CheckpointsAtSize(ctx, origin, rec.Size)
}

// receiveSync reads a peer's catch-up frames. The stream is reset, and the
// peer charged a penalty (penalty.go), at the first frame that is malformed
// or provably bad: an honest node sends only what it validated itself.
func (s *Service) receiveSync(ctx context.Context, st network.Stream) {
	defer st.Close()
	ctx, cancel := context.WithTimeout(ctx, syncTimeout)
	defer cancel()
	st.SetDeadline(time.Now().Add(syncTimeout))
	from := st.Conn().RemotePeer()
	r := bufio.NewReader(st)
	for i := 0; i < maxSyncMessages; i++ {
		typ, b, err := readFrame(r)
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			s.log.Debug("sync from peer", "peer", from, "err", err)
			if errors.Is(err, errBadFrame) {
				s.penalise(st, "sync", "malformed")
			}
			return
		}

		switch typ {
		case frameSighting:
			sg, res, reason := s.val.checkSighting(b, from)
			s.val.result("sync", res, reason)
			if penalised(res, reason) {
				s.penalise(st, "sync", reason)
				return
			}
			if sg == nil {
				continue
			}
			s.sawOwn(ctx, sg)
			s.det.process(ctx, sg)
		case frameEvidence:
			ve, res, reason := s.val.checkEvidence(b, from, false)
			s.val.result("sync", res, reason)
			if penalised(res, reason) {
				s.penalise(st, "sync", reason)
				return
			}
			if ve == nil {
				continue
			}
			if s.storeEvidence(ctx, ve.id, ve.e, ve.finding, b, "sync", from, pushOffTopic) {
				// New to us: spread it.
				if err := s.evidenceT.Publish(ctx, b); err != nil {
					s.log.Debug("publishing synced evidence", "err", err)
				}
			}
		default:
			s.penalise(st, "sync", "malformed")
			return
		}
	}
}

// penalised reports whether a stream frame judged res for reason costs its
// sender a penalty: any rejection except an unknown log, which an honest
// peer sends while the network moves to a roster this node has not loaded.
func penalised(res pubsub.ValidationResult, reason string) bool {
	return res == pubsub.ValidationReject && reason != "unknown_origin"
}

// errBadFrame marks a frame that cannot be read as one: a length beyond
// any message's bound, or a length that does not decode.
var errBadFrame = errors.New("malformed frame")

func writeFrame(w *bufio.Writer, typ byte, b []byte) error {
	if err := w.WriteByte(typ); err != nil {
		return err
	}
	if _, err := w.Write(binary.AppendUvarint(nil, uint64(len(b)))); err != nil {
		return err
	}
	_, err := w.Write(b)
	return err
}

func readFrame(r *bufio.Reader) (byte, []byte, error) {
	typ, err := r.ReadByte()
	if err != nil {
		return 0, nil, err
	}
	n, err := binary.ReadUvarint(r)
	if errors.Is(err, io.EOF) {
		return 0, nil, io.ErrUnexpectedEOF
	}
	if err != nil {
		return 0, nil, fmt.Errorf("%w: %w", errBadFrame, err)
	}
	if n > vpb.MaxEvidenceSize {
		return 0, nil, fmt.Errorf("%w: frame of %d bytes", errBadFrame, n)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return 0, nil, err
	}
	return typ, b, nil
}
