package gossip_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/vigilnet/vigil/gossip"
	vpb "github.com/vigilnet/vigil/proto"
	"github.com/vigilnet/vigil/tlog"
)

// cosignProtocol is the aggregation hand-off protocol of network "test".
const cosignProtocol = protocol.ID("/vigil/1/test/cosign/1.0.0")

// TestAggregatedCosignatures: every witness's cosignature of one checkpoint
// reaches every node, in fewer gossip messages than there are witnesses,
// with aggregation on; with it off each witness publishes its own.
func TestAggregatedCosignatures(t *testing.T) {
	for _, tc := range []struct {
		name      string
		aggregate bool
	}{{"aggregation on", true}, {"aggregation off", false}} {
		t.Run(tc.name, func(t *testing.T) {
			const witnesses = 6
			// The window outlasts the pushes, so each collector flushes
			// once; the fallback outlasts the first-ranked witness's three
			// windows.
			n := newNet(t, netOptions{nodes: witnesses, aggregate: tc.aggregate, window: time.Second, fallback: 10 * time.Second})
			n.connectRing()
			n.log.AppendN(5, "common")
			cp, _ := n.log.Checkpoint()
			parsed, err := tlog.ParseCheckpoint(cp[:bytes.Index(cp, []byte("\n\n"))+1])
			if err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			for _, nd := range n.nodes {
				wg.Go(func() { n.push(nd, n.log) })
			}
			wg.Wait()
			waitFor(t, 30*time.Second, "every cosignature at every node", func() bool {
				for _, nd := range n.nodes {
					rec, err := nd.db.Checkpoint(context.Background(), parsed.Origin, parsed.Size, parsed.Root)
					if err != nil || rec.Cosigners < witnesses {
						return false
					}
				}
				return true
			})
			published, handed := 0.0, 0.0
			for _, nd := range n.nodes {
				published += counter(t, nd.svc, "vigil_gossip_sightings_published_total", nil)
				handed += counter(t, nd.svc, "vigil_gossip_cosign_handoffs_total", map[string]string{"result": "sent"}) +
					counter(t, nd.svc, "vigil_gossip_cosign_handoffs_total", map[string]string{"result": "collected"})
			}
			t.Logf("%v sightings published, %v cosignatures handed off or collected", published, handed)
			if !tc.aggregate {
				if published < witnesses || handed != 0 {
					t.Fatalf("%v sightings published, %v cosignatures handed off; want ≥ %d and 0", published, handed, witnesses)
				}
				return
			}
			if handed != witnesses {
				t.Errorf("%v cosignatures handed off or collected, want %d", handed, witnesses)
			}
			if published >= witnesses {
				t.Errorf("%v sightings published for %d cosignatures: not aggregated", published, witnesses)
			}
			for _, nd := range n.nodes {
				if fb := counter(t, nd.svc, "vigil_gossip_cosign_handoffs_total", map[string]string{"result": "fallback"}); fb != 0 {
					t.Errorf("%s fell back %v times with every node honest", nd.name, fb)
				}
			}
		})
	}
}

// TestAnnouncementCarriesLogSignatureOnly: a last stop announces a
// checkpoint new to it at once with the log's signature alone (so that
// every last stop's announcement is the same gossip message), and publishes
// the cosignatures it collected after its window.
func TestAnnouncementCarriesLogSignatureOnly(t *testing.T) {
	n := newNet(t, netOptions{nodes: 1, aggregate: true, window: 100 * time.Millisecond})
	nd := n.nodes[0]
	n.log.AppendN(5, "common")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sub := newHostile(t, "test").watch(t, ctx, nd)
	n.push(nd, n.log) // w0, the only witness, collects its own cosignature
	want, _ := n.log.Checkpoint()
	var got []string
	for len(got) < 2 {
		m, err := sub.Next(ctx)
		if err != nil {
			t.Fatalf("after %d sightings: %v", len(got), err)
		}
		s, err := vpb.UnmarshalSighting(m.Data)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, string(s.Checkpoint))
	}
	if got[0] != string(want) {
		t.Errorf("announcement:\n%s\nwant the log's signed note alone:\n%s", got[0], want)
	}
	if !strings.HasPrefix(got[1], string(want)) || !strings.Contains(got[1], "— witness.test/w0 ") {
		t.Errorf("collected note:\n%s\nwant the log's signed note and w0's cosignature", got[1])
	}
}

// TestAggregationFallback: a witness whose next hop withholds its
// cosignature, or will not take it, publishes it itself.
func TestAggregationFallback(t *testing.T) {
	for _, tc := range []struct {
		name string
		// serve makes the next hop take hand-offs (and drop them).
		serve bool
		// known: gossip has shown the node the checkpoint before it
		// cosigns (only its cosignature is new).
		known  bool
		result string
	}{
		{"next hop withholds a new checkpoint", true, false, "fallback"},
		{"next hop withholds a cosignature", true, true, "fallback"},
		{"next hop refuses the protocol", false, false, "unreachable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x := newHostile(t, "test")
			handed := make(chan []byte, 16)
			if tc.serve {
				x.host.SetStreamHandler(cosignProtocol, func(st network.Stream) {
					defer st.Close()
					for _, f := range readFrames(st) {
						handed <- f
					}
				})
			}
			// The hostile peer poses as the roster witness "rogue".
			n := newNet(t, netOptions{nodes: 1, aggregate: true, fallback: 200 * time.Millisecond,
				peers: []gossip.Peer{{Name: "rogue", Info: peer.AddrInfo{ID: x.host.ID()}}}})
			nd := n.nodes[0]
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			sub := x.watch(t, ctx, nd)
			// A checkpoint whose best-ranked witness is the hostile one
			// (each size is an even chance).
			for n.log.AppendN(1, "entry"); ; n.log.AppendN(1, "entry") {
				cp, _ := n.log.Checkpoint()
				if gossip.NextHop(nd.svc, cp) == x.host.ID() {
					break
				}
				if n.log.Size() > 64 {
					t.Fatal("the hostile peer never ranks first")
				}
			}
			if tc.known {
				cp, _ := n.log.Checkpoint()
				if err := nd.svc.PublishSighting(ctx, cp, vpb.Source_SOURCE_PUSH); err != nil {
					t.Fatal(err)
				}
			}
			n.push(nd, n.log)
			if tc.serve {
				select {
				case <-handed:
				case <-ctx.Done():
					t.Fatal("nothing handed to the next hop")
				}
			}
			// The node's own cosignature reaches gossip all the same.
			for {
				m, err := sub.Next(ctx)
				if err != nil {
					t.Fatalf("the node's cosignature never reached gossip: %v", err)
				}
				s, err := vpb.UnmarshalSighting(m.Data)
				if err == nil && strings.Contains(string(s.Checkpoint), "— witness.test/w0 ") {
					break
				}
			}
			if got := counter(t, nd.svc, "vigil_gossip_cosign_handoffs_total", map[string]string{"result": tc.result}); got != 1 {
				t.Errorf("handoffs{result=%q} = %v, want 1", tc.result, got)
			}
		})
	}
}

// TestCosignStreamChecks: what a peer hands a collector is checked like
// gossip; anything that fails is rejected, the stream reset, and nothing
// stored or published.
func TestCosignStreamChecks(t *testing.T) {
	n := newNet(t, netOptions{nodes: 1, aggregate: true})
	nd := n.nodes[0]
	n.log.AppendN(5, "common")
	msgs := n.invalidMessages(t)
	x := newHostile(t, "test")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := x.host.Connect(ctx, nd.addrInfo(false)); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		typ   byte
		frame []byte
	}{
		{"garbage", 1, msgs["garbage"]},
		{"unknown origin", 1, msgs["unknown origin"]},
		{"forged log signature", 1, msgs["forged log sig"]},
		{"evidence frame", 2, msgs["garbage"]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := counter(t, nd.svc, "vigil_gossip_validated_total", map[string]string{"topic": "cosign", "result": "reject"})
			st, err := x.host.NewStream(ctx, nd.host.ID(), cosignProtocol)
			if err != nil {
				t.Fatal(err)
			}
			writeFrame(t, st, tc.typ, tc.frame)
			st.CloseWrite()
			// The collector resets the stream on a rejected frame.
			if _, err := io.ReadAll(st); err == nil {
				t.Error("stream closed cleanly after a rejected frame, want a reset")
			}
			if got := counter(t, nd.svc, "vigil_gossip_validated_total", map[string]string{"topic": "cosign", "result": "reject"}); got != before+1 {
				t.Errorf("cosign rejections %v → %v, want one more", before, got)
			}
		})
	}
	if got := counter(t, nd.svc, "vigil_gossip_sightings_published_total", nil); got != 0 {
		t.Errorf("%v sightings published after rejected hand-offs", got)
	}
	if c := evidenceCount(t, nd); c != 0 {
		t.Errorf("%d evidence records from rejected hand-offs", c)
	}
}

// writeFrame writes one sync-style frame (type, uvarint length, bytes).
func writeFrame(t testing.TB, w io.Writer, typ byte, b []byte) {
	t.Helper()
	frame := binary.AppendUvarint([]byte{typ}, uint64(len(b)))
	if _, err := w.Write(append(frame, b...)); err != nil {
		t.Fatal(err)
	}
}

// readFrames reads sync-style frames until EOF.
func readFrames(r io.Reader) [][]byte {
	br := bufio.NewReader(r)
	var out [][]byte
	for {
		if _, err := br.ReadByte(); err != nil {
			return out
		}
		l, err := binary.ReadUvarint(br)
		if err != nil || l > vpb.MaxEvidenceSize {
			return out
		}
		b := make([]byte, l)
		if _, err := io.ReadFull(br, b); err != nil {
			return out
		}
		out = append(out, b)
	}
}
