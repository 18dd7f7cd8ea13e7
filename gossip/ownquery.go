package gossip

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	vpb "github.com/vigilnet/vigil/proto"
	"github.com/vigilnet/vigil/roster"
	"github.com/vigilnet/vigil/store"
)

// Own-history query. A witness whose data directory was lost looks, when it
// starts, exactly like one starting for the first time, so on every start it
// asks its peers, per log, for the newest checkpoint they hold carrying its
// cosignature, and raises its floor (own.go) with each answer it verifies
// before it cosigns anything. The request is one frame holding the
// witness's cosignature verifier key; the answer is one frame per log (the
// signed note) and the end of the stream. The answering peer serves from
// its store with bounded work, and answers nothing for a key that is not a
// roster witness's (its store holds no other cosignatures).
const (
	frameOwnQuery  = 1
	frameOwnAnswer = 2
	// maxOwnQuery bounds the request (a verifier key): an ML-DSA-44 vkey
	// is about 1.8 KB.
	maxOwnQuery = vpb.MaxWitnessKeyLen
	// maxOwnAnswers bounds the checkpoints one answer carries.
	maxOwnAnswers = 4096
	// ownScanPerLog and ownScanTotal bound the checkpoint records one
	// request makes the answering peer read and verify.
	ownScanPerLog = 64
	ownScanTotal  = 8192
	ownTimeout    = 10 * time.Second
	// ownAnswering bounds the queries answered at once; more are reset.
	ownAnswering = 4
	// ownRetry is how often the recovery asks peers that have not answered.
	ownRetry = 500 * time.Millisecond
)

// OwnQueryStore is what answering the query reads; *store.DB is one.
type OwnQueryStore interface {
	CheckpointHistory(ctx context.Context, origin string, beforeSize uint64, limit int) ([]store.CheckpointRecord, uint64, error)
}

func (s *Service) ownProtocol() protocol.ID {
	return protocol.ID("/vigil/1/" + s.cfg.Network + "/own/1.0.0")
}

// serveOwnQueries answers the own-history query from the store.
func (s *Service) serveOwnQueries(ctx context.Context) {
	qs := s.cfg.OwnQueries
	if qs == nil {
		var ok bool
		if qs, ok = s.cfg.Store.(OwnQueryStore); !ok {
			return
		}
	}
	sem := make(chan struct{}, ownAnswering)
	s.cfg.Host.SetStreamHandler(s.ownProtocol(), func(st network.Stream) {
		if ctx.Err() != nil {
			st.Reset()
			return
		}
		select {
		case sem <- struct{}{}:
		default:
			st.Reset() // the querier asks again
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer func() { <-sem }()
			if err := s.answerOwn(ctx, qs, st); err != nil {
				s.log.Debug("own-history query", "peer", st.Conn().RemotePeer(), "err", err)
				st.Reset()
				return
			}
			st.Close()
		}()
	})
}

func (s *Service) answerOwn(ctx context.Context, qs OwnQueryStore, st network.Stream) error {
	ctx, cancel := context.WithTimeout(ctx, ownTimeout)
	defer cancel()
	st.SetDeadline(time.Now().Add(ownTimeout))
	typ, vkey, err := readBoundedFrame(bufio.NewReader(io.LimitReader(st, maxOwnQuery+16)), maxOwnQuery)
	if err != nil {
		return err
	}
	if typ != frameOwnQuery {
		return fmt.Errorf("own-history query: frame type %d", typ)
	}
	r := s.cfg.Roster()
	var w *roster.Witness
	for _, c := range r.Witnesses() {
		if c.VKey == string(vkey) {
			w = c
		}
	}
	bw := bufio.NewWriter(st)
	if w != nil {
		budget := ownScanTotal
		for i, l := range r.Logs() {
			if i >= maxOwnAnswers || budget <= 0 {
				break
			}
			msg, used, err := s.newestOwn(ctx, qs, r, w, l.Origin, budget)
			budget -= used
			if err != nil {
				return err
			}
			if msg == nil {
				continue
			}
			if err := writeFrame(bw, frameOwnAnswer, msg); err != nil {
				return err
			}
		}
	}
	return bw.Flush()
}

// newestOwn returns the newest stored checkpoint of origin whose note
// carries w's valid cosignature, reading at most min(budget,
// ownScanPerLog) records, and how many it read.
func (s *Service) newestOwn(ctx context.Context, qs OwnQueryStore, r *roster.Roster, w *roster.Witness, origin string, budget int) ([]byte, int, error) {
	limit := min(budget, ownScanPerLog)
	recs, _, err := qs.CheckpointHistory(ctx, origin, math.MaxUint64, limit)
	if err != nil {
		return nil, 0, err
	}
	for i, rec := range recs {
		if i >= limit {
			return nil, i, nil
		}
		_, n, err := s.sigs.verifyCheckpoint(r, origin, rec.Note)
		if err == nil && ownSig(w.Verifier, n.Sigs) {
			return rec.Note, i + 1, nil
		}
	}
	return nil, len(recs), nil
}

// RecoverOwn runs the recovery after a start: it asks each connected peer
// (each of trusted, if any are given) the own-history query until h's
// RecoveryPeers peers have answered, raising h's floors with every answer
// that verifies, or until ctx ends. vkey is the witness's verifier key.
func (s *Service) RecoverOwn(ctx context.Context, h *OwnHistory, vkey string, trusted []peer.ID) {
	if h.Recovered() {
		return
	}
	// The queries in flight end with the recovery, or with the service.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(s.ctx, cancel)
	defer stop()
	only := map[peer.ID]bool{}
	for _, p := range trusted {
		only[p] = true
	}
	answered := map[peer.ID]bool{}
	busy := map[peer.ID]bool{}
	done := make(chan struct {
		p  peer.ID
		ok bool
	})
	tick := time.NewTicker(ownRetry)
	defer tick.Stop()
	// A new connection is asked at once, not at the next tick.
	connected := make(chan struct{}, 1)
	nb := &network.NotifyBundle{ConnectedF: func(network.Network, network.Conn) {
		select {
		case connected <- struct{}{}:
		default:
		}
	}}
	s.cfg.Host.Network().Notify(nb)
	defer s.cfg.Host.Network().StopNotify(nb)
	for !h.Recovered() {
		for _, p := range s.cfg.Host.Network().Peers() {
			if answered[p] || busy[p] || (len(only) > 0 && !only[p]) {
				continue
			}
			busy[p] = true
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				err := s.askOwn(ctx, h, vkey, p)
				if err != nil {
					s.log.Debug("own-history query to peer", "peer", p, "err", err)
				}
				select {
				case done <- struct {
					p  peer.ID
					ok bool
				}{p, err == nil}:
				case <-ctx.Done():
				}
			}()
		}
		select {
		case d := <-done:
			delete(busy, d.p)
			if d.ok {
				answered[d.p] = true
				h.answeredBy()
			}
		case <-connected:
		case <-tick.C:
		case <-ctx.Done():
			return
		}
	}
}

// askOwn sends the query to p and learns every answer that verifies: a
// roster log's checkpoint, signed by the log's key, carrying this
// witness's cosignature under its own key. An answer that does not verify
// is skipped; a malformed stream fails the query (the peer is asked again).
func (s *Service) askOwn(ctx context.Context, h *OwnHistory, vkey string, p peer.ID) error {
	ctx, cancel := context.WithTimeout(ctx, ownTimeout)
	defer cancel()
	st, err := s.cfg.Host.NewStream(network.WithAllowLimitedConn(ctx, "own"), p, s.ownProtocol())
	if err != nil {
		return err
	}
	defer st.Close()
	st.SetDeadline(time.Now().Add(ownTimeout))
	w := bufio.NewWriter(st)
	if err := writeFrame(w, frameOwnQuery, []byte(vkey)); err != nil {
		return err
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if err := st.CloseWrite(); err != nil {
		return err
	}
	r := s.cfg.Roster()
	br := bufio.NewReader(st)
	for i := 0; ; i++ {
		typ, msg, err := readBoundedFrame(br, vpb.MaxNoteSize)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if typ != frameOwnAnswer || i >= maxOwnAnswers {
			return fmt.Errorf("own-history answer: frame %d of type %d", i, typ)
		}
		if cp, out, ok := openOwn(r, h.key, msg); ok {
			h.learn(ctx, cp, out, "peer")
		}
	}
}

// readBoundedFrame is readFrame with a smaller bound on the payload.
func readBoundedFrame(r *bufio.Reader, limit uint64) (byte, []byte, error) {
	typ, err := r.ReadByte()
	if err != nil {
		return 0, nil, err
	}
	n, err := binary.ReadUvarint(r)
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		return 0, nil, err
	}
	if n > limit {
		return 0, nil, fmt.Errorf("frame of %d bytes, limit %d", n, limit)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return 0, nil, err
	}
	return typ, b, nil
}
