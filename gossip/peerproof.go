package gossip

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/vigilnet/vigil/gossip/evidence"
	vpb "github.com/vigilnet/vigil/proto"
)

// Consistency proofs from peers. A node shown view A cannot prove anything
// about a larger checkpoint of view B from the tiles it is served; the peer
// that published B may be able to: it asks that peer for the proof. The
// answer is trusted for nothing: it must reproduce B's log-signed root, and
// then it proves consistency or inconsistency by itself.
//
// Request:  uvarint len || origin || u64 m || u64 n || root_n[32]
// Response: status (0 ok, 1 unavailable) || count || count × hash[32]
// The proof is in evidence form (explicit size-m root when m is a power of
// two). A node answers only with a proof its own tiles give for root_n.
const (
	peerProofTimeout = 10 * time.Second
	maxOriginLen     = 1 << 10
)

// ErrPeerProofUnavailable means the peer could not give the proof.
var ErrPeerProofUnavailable = errors.New("peer has no proof for that tree")

func (s *Service) proofProtocol() protocol.ID {
	return protocol.ID("/vigil/1/" + s.cfg.Network + "/proof/1.0.0")
}

func (s *Service) serveProofs(ctx context.Context) {
	s.cfg.Host.SetStreamHandler(s.proofProtocol(), func(st network.Stream) {
		defer st.Close()
		if s.refused(st) {
			return
		}
		if ctx.Err() != nil || s.cfg.Proofs == nil || !s.val.allow(st.Conn().RemotePeer()) {
			st.Reset()
			return
		}
		st.SetDeadline(time.Now().Add(peerProofTimeout))
		origin, m, n, root, err := readProofRequest(bufio.NewReader(st))
		if errors.Is(err, errBadProofRequest) {
			s.penalise(st, "proof", "malformed")
			return
		}
		if err != nil {
			st.Reset()
			return
		}
		resp := []byte{1, 0}
		if _, ok := s.cfg.Roster().Log(origin); ok && m >= 1 && m < n {
			pctx, cancel := context.WithTimeout(ctx, peerProofTimeout)
			p, _, rn, err := s.det.proof(pctx, origin, m, n, root)
			cancel()
			if err == nil && rn == root && len(p) <= vpb.MaxProofHashes {
				resp = []byte{0, byte(len(p))}
				for _, h := range p {
					resp = append(resp, h...)
				}
			}
		}
		st.Write(resp)
	})
}

// peerProof asks p for an evidence-form consistency proof m→n bound to
// rootN, and returns it with the roots it implies (rn == rootN).
func (s *Service) peerProof(ctx context.Context, p peer.ID, origin string, m, n uint64, rootN [32]byte) (proof [][]byte, rm [32]byte, err error) {
	if p == "" || p == s.self {
		return nil, rm, ErrPeerProofUnavailable
	}
	defer func() { s.metrics.proofFetch.WithLabelValues("peer", result(err)).Inc() }()
	ctx, cancel := context.WithTimeout(ctx, peerProofTimeout)
	defer cancel()
	st, err := s.cfg.Host.NewStream(ctx, p, s.proofProtocol())
	if err != nil {
		return nil, rm, err
	}
	defer st.Close()
	st.SetDeadline(time.Now().Add(peerProofTimeout))
	req := binary.AppendUvarint(nil, uint64(len(origin)))
	req = append(req, origin...)
	req = binary.BigEndian.AppendUint64(req, m)
	req = binary.BigEndian.AppendUint64(req, n)
	req = append(req, rootN[:]...)
	if _, err := st.Write(req); err != nil {
		return nil, rm, err
	}
	st.CloseWrite()
	r := bufio.NewReader(io.LimitReader(st, 2+vpb.MaxProofHashes*32))
	var head [2]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		return nil, rm, err
	}
	if head[0] != 0 {
		return nil, rm, ErrPeerProofUnavailable
	}
	proof = make([][]byte, head[1])
	for i := range proof {
		proof[i] = make([]byte, 32)
		if _, err := io.ReadFull(r, proof[i]); err != nil {
			return nil, rm, err
		}
	}
	rm, rn, err := evidence.RootsFromConsistency(m, n, proof)
	if err != nil {
		return nil, rm, fmt.Errorf("peer proof: %w", err)
	}
	if rn != rootN {
		return nil, rm, errors.New("peer proof does not reproduce the requested root")
	}
	return proof, rm, nil
}

// errBadProofRequest is a proof request that does not decode.
var errBadProofRequest = errors.New("bad proof request")

func readProofRequest(r *bufio.Reader) (origin string, m, n uint64, root [32]byte, err error) {
	l, err := binary.ReadUvarint(r)
	if errors.Is(err, io.EOF) {
		return "", 0, 0, root, err
	}
	if err != nil || l == 0 || l > maxOriginLen {
		return "", 0, 0, root, errBadProofRequest
	}
	buf := make([]byte, l+16+32)
	if _, err := io.ReadFull(r, buf); err != nil {
		return "", 0, 0, root, err
	}
	origin = string(buf[:l])
	m = binary.BigEndian.Uint64(buf[l:])
	n = binary.BigEndian.Uint64(buf[l+8:])
	copy(root[:], buf[l+16:])
	return origin, m, n, root, nil
}
