package node_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/mod/sumdb/note"

	"github.com/vigilnet/vigil/feed"
	"github.com/vigilnet/vigil/gossip"
	"github.com/vigilnet/vigil/gossip/evidence"
	"github.com/vigilnet/vigil/node"
	vpb "github.com/vigilnet/vigil/proto"
	"github.com/vigilnet/vigil/roster"
	"github.com/vigilnet/vigil/store"
	"github.com/vigilnet/vigil/testnet/scriptlog"
	"github.com/vigilnet/vigil/tlog"
)

type feedNode struct {
	t      *testing.T
	n      *node.Node
	db     *store.DB
	log    *scriptlog.Log
	r      *roster.Roster
	others []*tlog.CosignatureSigner
}

// startFeedNode runs a witness node whose roster lists its own key and two
// other witnesses (quorum 2 of 3), on 127.0.0.1 with a real Badger store.
func startFeedNode(t *testing.T) *feedNode {
	t.Helper()
	return startFeedNodeWith(t, nil, nil)
}

// startFeedNodeWith is startFeedNode with a clock for the feed and every
// witness's cosignatures (nil: time.Now) and a change to the configuration.
func startFeedNodeWith(t *testing.T, now func() time.Time, configure func(*node.Config)) *feedNode {
	t.Helper()
	dir := t.TempDir()
	l, err := scriptlog.New("example.com/nodelog")
	if err != nil {
		t.Fatal(err)
	}
	fn := &feedNode{t: t, log: l}
	policy := fmt.Sprintf("log %s\n", l.VerifierKey())
	var keys node.Keys
	for i, name := range []string{"self", "w1", "w2"} {
		skey, vkey, err := tlog.GenerateCosignerKey(rand.Reader, name+".example")
		if err != nil {
			t.Fatal(err)
		}
		s, err := tlog.NewCosignatureSigner(skey, now)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			keys.Cosigner = s
		} else {
			fn.others = append(fn.others, s)
		}
		policy += fmt.Sprintf("witness %s %s\n", name, vkey)
	}
	policy += "group q 2 self w1 w2\nquorum q\n"
	rosterPath := filepath.Join(dir, "roster")
	if err := os.WriteFile(rosterPath, []byte(policy), 0o644); err != nil {
		t.Fatal(err)
	}
	if fn.r, err = roster.ParsePolicy([]byte(policy)); err != nil {
		t.Fatal(err)
	}
	if keys.P2P, _, err = crypto.GenerateEd25519Key(rand.Reader); err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(filepath.Join(dir, "data"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	fn.db = db
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := node.DefaultConfig()
	cfg.Listen, cfg.DataDir, cfg.Roster = ln.Addr().String(), filepath.Join(dir, "data"), rosterPath
	cfg.Gossip.Disabled = true // these tests drive the gossip hooks by hand
	if configure != nil {
		configure(&cfg)
	}
	n, err := node.New(cfg, node.Deps{Listener: ln, Store: db, Keys: &keys, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	fn.n = n
	runNode(t, "node", n, db)
	return fn
}

func (fn *feedNode) get(path string) (int, string) {
	fn.t.Helper()
	resp, err := http.Get(fn.n.URL() + path)
	if err != nil {
		fn.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// push sends the log's current checkpoint to the node's add-checkpoint.
func (fn *feedNode) push(old uint64) {
	fn.t.Helper()
	size := fn.log.Size()
	cp, _ := fn.log.Checkpoint()
	p, _ := fn.log.ConsistencyProof(old, size)
	var body bytes.Buffer
	fmt.Fprintf(&body, "old %d\n", old)
	for _, h := range p {
		fmt.Fprintf(&body, "%s\n", base64.StdEncoding.EncodeToString(h))
	}
	body.WriteString("\n")
	body.Write(cp)
	resp, err := http.Post(fn.n.URL()+"/add-checkpoint", "", &body)
	if err != nil {
		fn.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		fn.t.Fatalf("add-checkpoint: %d", resp.StatusCode)
	}
}

// merge stores a checkpoint record cosigned by the other witnesses, as
// gossip does, and tells the feed.
func (fn *feedNode) merge(size uint64, cosigners ...int) {
	fn.t.Helper()
	msg := fn.cosigned(size, cosigners...)
	root, _ := fn.log.Root(size)
	err := fn.db.MergeCheckpoint(context.Background(), fn.log.Origin(), size, root, func(old store.CheckpointRecord, exists bool) (store.CheckpointRecord, bool, error) {
		return store.CheckpointRecord{Note: msg, Cosigners: len(cosigners), FirstSeen: time.Now()}, true, nil
	})
	if err != nil {
		fn.t.Fatal(err)
	}
	fn.n.Feed().CheckpointUpdated(fn.log.Origin())
}

// cosigned returns the log's checkpoint at size cosigned by the other
// witnesses listed.
func (fn *feedNode) cosigned(size uint64, cosigners ...int) []byte {
	fn.t.Helper()
	cp, err := fn.log.CheckpointAt(size)
	if err != nil {
		fn.t.Fatal(err)
	}
	lv, _ := note.NewVerifier(fn.log.VerifierKey())
	n, err := note.Open(cp, note.VerifierList(lv))
	if err != nil {
		fn.t.Fatal(err)
	}
	var signers []note.Signer
	for _, i := range cosigners {
		signers = append(signers, fn.others[i])
	}
	msg, err := note.Sign(n, signers...)
	if err != nil {
		fn.t.Fatal(err)
	}
	return msg
}

// waitK polls until the node serves the log at size with at least k
// cosignatures, and returns the note. (A checkpoint short of its quorum is
// served but not announced, so there may be no event to wait for.)
func (fn *feedNode) waitK(_ *bufioLines, size uint64, k int) string {
	fn.t.Helper()
	id := tlog.LogID(fn.log.Origin())
	tk := time.NewTicker(5 * time.Millisecond)
	defer tk.Stop()
	end := time.After(20 * time.Second)
	for {
		code, body := fn.get(fmt.Sprintf("/v1/logs/%s/checkpoint?k=%d", id, k))
		if code == 200 && strings.Contains(body, fmt.Sprintf("\n%d\n", size)) {
			return body
		}
		select {
		case <-tk.C:
		case <-end:
			fn.t.Fatalf("size %d with %d cosignatures never served", size, k)
		}
	}
}

type bufioLines struct {
	ch chan string
}

// subscribe follows /v1/events and yields one item per event.
func (fn *feedNode) subscribe() *bufioLines {
	fn.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	fn.t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", fn.n.URL()+"/v1/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fn.t.Fatal(err)
	}
	b := &bufioLines{ch: make(chan string, 100)}
	go func() {
		defer resp.Body.Close()
		buf := make([]byte, 4096)
		for {
			n, err := resp.Body.Read(buf)
			if n > 0 {
				for _, line := range strings.Split(string(buf[:n]), "\n") {
					if strings.HasPrefix(line, "event: ") {
						b.ch <- line
					}
				}
			}
			if err != nil {
				close(b.ch)
				return
			}
		}
	}()
	return b
}

func (b *bufioLines) next(t *testing.T) string {
	t.Helper()
	select {
	case s, ok := <-b.ch:
		if !ok {
			t.Fatal("event stream closed")
		}
		return s
	case <-time.After(20 * time.Second):
		t.Fatal("no event before the deadline")
	}
	return ""
}

func cosignersOf(t *testing.T, r *roster.Roster, lg *scriptlog.Log, msg string) []string {
	t.Helper()
	lv, _ := note.NewVerifier(lg.VerifierKey())
	n, err := note.Open([]byte(msg), note.VerifierList(append(r.WitnessVerifiers(), lv)...))
	if err != nil {
		t.Fatalf("served note: %v\n%s", err, msg)
	}
	var out []string
	for _, s := range n.Sigs {
		if w, ok := r.WitnessByKey(s.Name, s.Hash); ok {
			out = append(out, w.Name)
		}
	}
	return out
}

// TestNodeFeed runs the feed inside a node: the checkpoint the node's witness
// cosigned (witness state), cosignatures merged by gossip (checkpoint
// records) and evidence from the store, over real HTTP.
func TestNodeFeed(t *testing.T) {
	fn := startFeedNode(t)
	events := fn.subscribe()
	id := tlog.LogID(fn.log.Origin())
	fn.log.AppendN(2, "a")
	fn.merge(2, 0)
	fn.log.AppendN(1, "a")
	fn.merge(3, 0, 1)
	fn.log.AppendN(1, "a")
	fn.merge(4, 1)
	fn.log.AppendN(1, "a")
	fn.push(0)

	// The C2SP monitoring endpoint: the node's own latest cosignature.
	body := fn.waitK(events, 5, 1)
	if got := cosignersOf(t, fn.r, fn.log, body); fmt.Sprint(got) != "[self]" {
		t.Errorf("size 5 cosigned by %v", got)
	}
	// Gossip brings w1 and w2's cosignatures of size 5: merged with the
	// node's own into one note.
	fn.merge(5, 0, 1)
	body = fn.waitK(events, 5, 3)
	if got := cosignersOf(t, fn.r, fn.log, body); fmt.Sprint(got) != "[self w1 w2]" {
		t.Errorf("size 5 cosigned by %v", got)
	}
	if code, body := fn.get("/v1/logs/" + id + "/checkpoint?k=2"); code != 200 || !strings.Contains(body, "\n5\n") {
		t.Errorf("k=2: %d %s", code, body)
	}

	// History pages come from the store's checkpoint records.
	tests := []struct {
		query string
		sizes string
		next  string
	}{
		{"?limit=2", "2 3", "4"},
		{"?from=4&limit=2", "4 5", ""},
		{"?from=3", "3 4 5", ""},
		{"?from=6", "", ""},
	}
	for _, tc := range tests {
		code, body := fn.get("/v1/logs/" + id + "/checkpoints" + tc.query)
		var h feed.HistoryResponse
		if err := json.Unmarshal([]byte(body), &h); code != 200 || err != nil {
			t.Fatalf("%s: %d %v %s", tc.query, code, err, body)
		}
		var sizes []string
		for _, c := range h.Checkpoints {
			sizes = append(sizes, fmt.Sprint(c.Size))
		}
		next := ""
		if h.Next != nil {
			next = fmt.Sprint(*h.Next)
		}
		if strings.Join(sizes, " ") != tc.sizes || next != tc.next {
			t.Errorf("%s: sizes %v next %q, want %q next %q", tc.query, sizes, next, tc.sizes, tc.next)
		}
	}

	// Evidence stored by the detector is listed and served as the file
	// `vigil verify` checks.
	fork, _ := fn.log.Fork(5)
	fn.log.AppendN(1, "main")
	fork.AppendN(1, "fork")
	a, _ := fn.log.Checkpoint()
	b, _ := fork.Checkpoint()
	ev := &vpb.Evidence{Kind: vpb.Kind_KIND_LOG_EQUIVOCATION_SAME_SIZE, CheckpointA: a, CheckpointB: b, DetectedUnixMs: 1700000000000}
	finding, err := evidence.Verify(ev, fn.r)
	if err != nil {
		t.Fatal(err)
	}
	data, err := vpb.MarshalEvidence(ev)
	if err != nil {
		t.Fatal(err)
	}
	eid := evidence.ID(ev)
	stored := time.Date(2026, 12, 2, 6, 0, 0, 123e6, time.UTC)
	if _, err := fn.db.PutEvidence(context.Background(), store.EvidenceRecord{ID: eid, Kind: vpb.KindName(ev.Kind), Origin: fn.log.Origin(), Statement: finding.Statement(), Stored: stored, Data: data}); err != nil {
		t.Fatal(err)
	}
	fn.n.Feed().EvidenceUpdated()
	for events.next(t) != "event: evidence" {
	}
	code, body := fn.get("/v1/evidence")
	var list feed.EvidenceList
	if err := json.Unmarshal([]byte(body), &list); code != 200 || err != nil || len(list.Evidence) != 1 {
		t.Fatalf("evidence list: %d %v %s", code, err, body)
	}
	if e := list.Evidence[0]; e.ID != eid || e.Kind != "log-equivocation-same-size" || fmt.Sprint(e.Sizes) != "[6 6]" || e.Detected.UnixMilli() != 1700000000000 || !e.Stored.Equal(stored) {
		t.Errorf("evidence: %+v", e)
	}
	code, raw := fn.get("/v1/evidence/" + eid + "?format=raw")
	if code != 200 {
		t.Fatalf("raw evidence: %d %s", code, raw)
	}
	parsed, err := evidence.ParseFile([]byte(raw))
	if err != nil {
		t.Fatalf("served file does not parse: %v", err)
	}
	if _, err := evidence.Verify(parsed, fn.r); err != nil {
		t.Errorf("served file does not verify: %v", err)
	}
	if code, body := fn.get("/v1/evidence/" + strings.Repeat("ab", 32)); code != 404 {
		t.Errorf("unknown evidence: %d %s", code, body)
	}
	if code, body := fn.get("/v1/logs"); code != 200 || !strings.Contains(body, `"evidence": 1`) {
		t.Errorf("/v1/logs: %d %s", code, body)
	}
	if code, body := fn.get("/"); code != 200 || !strings.Contains(body, "Evidence of misbehaviour") {
		t.Errorf("dashboard: %d", code)
	}
	if code, body := fn.get("/metrics"); code != 200 || !strings.Contains(body, `vigil_feed_requests_total{code="200",route="checkpoint"}`) || !strings.Contains(body, "vigil_feed_sse_subscribers 1") {
		t.Errorf("metrics lack the feed's: %d", code)
	}
}

// TestNodeFeedGossipHooks: what gossip reports reaches the feed's peers and
// event stream through Node.FeedHooks.
func TestNodeFeedGossipHooks(t *testing.T) {
	fn := startFeedNode(t)
	events := fn.subscribe()
	hooks := fn.n.FeedHooks()
	var ids []peer.ID
	for range 2 {
		k, _, err := crypto.GenerateEd25519Key(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		id, _ := peer.IDFromPrivateKey(k)
		ids = append(ids, id)
	}
	hooks.Peers(nil, []gossip.Peer{{Name: "w1", Info: peer.AddrInfo{ID: ids[0]}}})
	hooks.ScoreInspect(map[peer.ID]float64{ids[0]: 3.5, ids[1]: -1})
	if ev := events.next(t); ev != "event: peers" {
		t.Fatalf("got %s, want a peers event", ev)
	}
	code, body := fn.get("/v1/peers")
	var pr feed.PeersResponse
	if err := json.Unmarshal([]byte(body), &pr); code != 200 || err != nil || len(pr.Peers) != 2 {
		t.Fatalf("peers: %d %v %s", code, err, body)
	}
	for _, p := range pr.Peers {
		// Named by nothing the node was configured with: unknown, not observer.
		want := feed.Peer{ID: ids[1].String(), Role: "unknown", Score: -1, Connected: true}
		if p.ID == ids[0].String() {
			want = feed.Peer{ID: ids[0].String(), Name: "w1", Role: "witness", Score: 3.5, Connected: true}
		}
		if fmt.Sprint(p) != fmt.Sprint(want) {
			t.Errorf("peer %+v, want %+v", p, want)
		}
	}
	// Scores alone changing is no event; a peer leaving is.
	hooks.ScoreInspect(map[peer.ID]float64{ids[0]: 4, ids[1]: 0})
	hooks.ScoreInspect(map[peer.ID]float64{ids[0]: 4})
	if ev := events.next(t); ev != "event: peers" {
		t.Fatalf("got %s, want a peers event", ev)
	}

	// A record merged through the wrapped store is an event at once (it
	// carries its quorum: one short of it would be held back).
	fn.log.AppendN(3, "a")
	cp := fn.cosigned(3, 0, 1)
	root, _ := fn.log.Root(3)
	err := hooks.Store(fn.db).MergeCheckpoint(context.Background(), fn.log.Origin(), 3, root, func(store.CheckpointRecord, bool) (store.CheckpointRecord, bool, error) {
		return store.CheckpointRecord{Note: cp}, true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if ev := events.next(t); ev != "event: checkpoint" {
		t.Fatalf("got %s, want a checkpoint event", ev)
	}
}

// TestNodeFeedDivergence: a divergence recorded and resolved through the
// store that gossip writes to (FeedHooks.Store) reaches the event stream at
// once and shows on /v1/logs, /v1/suspicions and the dashboard.
func TestNodeFeedDivergence(t *testing.T) {
	fn := startFeedNode(t)
	events := fn.subscribe()
	gs := fn.n.FeedHooks().Store(fn.db)
	ds, ok := gs.(interface {
		RecordDivergence(ctx context.Context, origin string, small, large store.SuspicionSide, reason string, at time.Time) error
		ResolveSuspicion(ctx context.Context, origin string, size uint64, root [32]byte, resolution string, at time.Time) error
	})
	if !ok {
		t.Fatalf("%T cannot record divergences", gs)
	}
	ctx := context.Background()
	fn.log.AppendN(4, "a")
	fork, _ := fn.log.Fork(4)
	fork.AppendN(3, "fork")
	sr, _ := fn.log.Root(4)
	lr, _ := fork.Root(7)
	small := store.SuspicionSide{Size: 4, Root: sr, Cosigners: []string{"self"}}
	large := store.SuspicionSide{Size: 7, Root: lr, Cosigners: []string{"w1", "w2"}}
	if err := ds.RecordDivergence(ctx, fn.log.Origin(), small, large, "log serves no tiles", time.Now()); err != nil {
		t.Fatal(err)
	}
	if ev := events.next(t); ev != "event: suspicion" {
		t.Fatalf("got %s, want a suspicion event", ev)
	}
	code, body := fn.get("/v1/logs")
	var logs feed.LogsResponse
	if err := json.Unmarshal([]byte(body), &logs); code != 200 || err != nil || len(logs.Logs) != 1 {
		t.Fatalf("/v1/logs: %d %v %s", code, err, body)
	}
	row := logs.Logs[0]
	if row.State != feed.StateDivergent || logs.Divergent != 1 || len(row.Suspicions) != 1 {
		t.Fatalf("row: %+v", row)
	}
	s := row.Suspicions[0]
	if s.Size != 7 || s.Root != base64.StdEncoding.EncodeToString(lr[:]) || fmt.Sprint(s.Cosigners) != "[w1 w2]" ||
		s.Other == nil || s.Other.Size != 4 || s.Other.Root != base64.StdEncoding.EncodeToString(sr[:]) || fmt.Sprint(s.Other.Cosigners) != "[self]" || s.Reason != "log serves no tiles" {
		t.Errorf("divergence: %+v %+v", s, s.Other)
	}
	if code, body := fn.get("/"); code != 200 || !strings.Contains(body, "Unproven divergence") {
		t.Errorf("dashboard: %d", code)
	}

	// An unverifiable checkpoint through the same wrapper is an event too.
	fn.log.AppendN(1, "a")
	r5, _ := fn.log.Root(5)
	if err := gs.RecordSuspicion(ctx, fn.log.Origin(), 5, r5, "no consistency proof", time.Now()); err != nil {
		t.Fatal(err)
	}
	if ev := events.next(t); ev != "event: suspicion" {
		t.Fatalf("got %s, want a suspicion event", ev)
	}

	if err := ds.ResolveSuspicion(ctx, fn.log.Origin(), 7, lr, store.ResolvedConsistent, time.Now()); err != nil {
		t.Fatal(err)
	}
	if ev := events.next(t); ev != "event: suspicion" {
		t.Fatalf("got %s, want a suspicion event", ev)
	}
	code, body = fn.get("/v1/suspicions?open=false")
	var sl feed.SuspicionList
	if err := json.Unmarshal([]byte(body), &sl); code != 200 || err != nil || len(sl.Suspicions) != 1 || sl.Suspicions[0].Resolved != "consistent" {
		t.Fatalf("resolved list: %d %v %s", code, err, body)
	}
	code, body = fn.get("/v1/logs")
	if err := json.Unmarshal([]byte(body), &logs); code != 200 || err != nil || logs.Logs[0].State != feed.StateSuspect || logs.Divergent != 0 {
		t.Errorf("after the resolution: %d %v %s", code, err, body)
	}
}
