package node_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/mod/sumdb/note"

	"github.com/vigilnet/vigil/feed"
	"github.com/vigilnet/vigil/gossip"
	"github.com/vigilnet/vigil/node"
	"github.com/vigilnet/vigil/roster"
	"github.com/vigilnet/vigil/store"
	"github.com/vigilnet/vigil/testnet/scriptlog"
	"github.com/vigilnet/vigil/tlog"
)

// witnessNet is a roster of three witnesses (the node's own "self", and
// "w1", "w2" whose cosignatures arrive as gossip would store them), one
// scripted log, and a data directory that outlives node restarts.
type witnessNet struct {
	t        *testing.T
	dir      string
	log      *scriptlog.Log
	r        *roster.Roster
	keys     node.Keys
	others   map[string]*tlog.CosignatureSigner
	verifier []note.Verifier
	interval time.Duration
	// configure, if set, changes each start's configuration.
	configure func(*node.Config)
}

func newWitnessNet(t *testing.T, interval time.Duration) *witnessNet {
	t.Helper()
	l, err := scriptlog.New("example.com/witnesslog")
	if err != nil {
		t.Fatal(err)
	}
	wn := &witnessNet{t: t, dir: t.TempDir(), log: l, others: map[string]*tlog.CosignatureSigner{}, interval: interval}
	lv, err := note.NewVerifier(l.VerifierKey())
	if err != nil {
		t.Fatal(err)
	}
	wn.verifier = append(wn.verifier, lv)
	policy := fmt.Sprintf("log %s\n", l.VerifierKey())
	for _, name := range []string{"self", "w1", "w2"} {
		skey, vkey, err := tlog.GenerateCosignerKey(rand.Reader, name+".example")
		if err != nil {
			t.Fatal(err)
		}
		s, err := tlog.NewCosignatureSigner(skey, nil)
		if err != nil {
			t.Fatal(err)
		}
		if name == "self" {
			wn.keys.Cosigner = s
		} else {
			wn.others[name] = s
		}
		v, err := tlog.NewCosignatureVerifier(vkey)
		if err != nil {
			t.Fatal(err)
		}
		wn.verifier = append(wn.verifier, v)
		policy += fmt.Sprintf("witness %s %s\n", name, vkey)
	}
	policy += "group q 2 self w1 w2\nquorum q\n"
	if err := os.WriteFile(filepath.Join(wn.dir, "roster"), []byte(policy), 0o644); err != nil {
		t.Fatal(err)
	}
	if wn.r, err = roster.ParsePolicy([]byte(policy)); err != nil {
		t.Fatal(err)
	}
	if wn.keys.P2P, _, err = crypto.GenerateEd25519Key(rand.Reader); err != nil {
		t.Fatal(err)
	}
	return wn
}

// start runs a node on the net's data directory (a real Badger store) and
// returns it with a function that stops it and closes the store.
func (wn *witnessNet) start() (*feedNode, func()) {
	t := wn.t
	t.Helper()
	db, err := store.Open(filepath.Join(wn.dir, "data"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := node.DefaultConfig()
	cfg.Listen, cfg.DataDir, cfg.Roster = ln.Addr().String(), filepath.Join(wn.dir, "data"), filepath.Join(wn.dir, "roster")
	cfg.Gossip.Disabled = true // cosignatures arrive through the gossip store hook, by hand
	cfg.Feed.WitnessInterval = wn.interval
	if wn.configure != nil {
		wn.configure(&cfg)
	}
	keys := wn.keys
	n, err := node.New(cfg, node.Deps{Listener: ln, Store: db, Keys: &keys, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	stop := runNode(t, "node", n, db)
	return &feedNode{t: t, n: n, db: db, log: wn.log, r: wn.r}, stop
}

// gossipCosign stores the cosignatures of the named witnesses on the log's
// checkpoint at size through the store hook gossip writes through, adding
// them to what the record holds, as gossip's merge does.
func (wn *witnessNet) gossipCosign(fn *feedNode, size uint64, names ...string) {
	t := wn.t
	t.Helper()
	root, err := wn.log.Root(size)
	if err != nil {
		t.Fatal(err)
	}
	base, err := wn.log.CheckpointAt(size)
	if err != nil {
		t.Fatal(err)
	}
	var signers []note.Signer
	for _, name := range names {
		signers = append(signers, wn.others[name])
	}
	mergeCosignatures(t, fn, wn.log.Origin(), size, root, base, wn.verifier, signers, time.Now())
}

// mergeCosignatures adds signers' cosignatures to the record of origin's
// checkpoint at size (base if there is none yet, first seen at at) through
// the store hook gossip writes through, as gossip's merge does.
func mergeCosignatures(t *testing.T, fn *feedNode, origin string, size uint64, root [32]byte, base []byte, verifiers []note.Verifier, signers []note.Signer, at time.Time) {
	t.Helper()
	s := fn.n.FeedHooks().Store(fn.db)
	err := s.MergeCheckpoint(context.Background(), origin, size, root, func(old store.CheckpointRecord, exists bool) (store.CheckpointRecord, bool, error) {
		from := base
		if exists {
			from = old.Note
		}
		n, err := note.Open(from, note.VerifierList(verifiers...))
		if err != nil {
			return old, false, err
		}
		msg, err := note.Sign(n, signers...)
		if err != nil {
			return old, false, err
		}
		rec := old
		rec.Note, rec.Cosigners = msg, len(n.Sigs)-1+len(signers)
		if !exists {
			rec.FirstSeen = at
		}
		return rec, true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// sse is a parsed event stream: one "type data" string per event.
type sse struct{ ch chan [2]string }

func subscribeSSE(t *testing.T, url string) *sse {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", url+"/v1/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	s := &sse{ch: make(chan [2]string, 256)}
	go func() {
		defer resp.Body.Close()
		defer close(s.ch)
		sc := bufio.NewScanner(resp.Body)
		var typ string
		for sc.Scan() {
			line := sc.Text()
			if v, ok := strings.CutPrefix(line, "event: "); ok {
				typ = v
			} else if v, ok := strings.CutPrefix(line, "data: "); ok {
				s.ch <- [2]string{typ, v}
			}
		}
	}()
	return s
}

// waitWitness waits for the witness event of name with the given state and
// returns it.
func (s *sse) waitWitness(t *testing.T, name, state string) feed.WitnessEvent {
	t.Helper()
	return s.waitWitnesses(t, state, name)[name]
}

// waitWitnesses waits until each of names has a witness event into state,
// in whatever order the feed emits them (witnesses' cosignatures arrive in
// no fixed order), and returns them by name; other events are passed over.
func (s *sse) waitWitnesses(t *testing.T, state string, names ...string) map[string]feed.WitnessEvent {
	t.Helper()
	got := map[string]feed.WitnessEvent{}
	deadline := time.After(20 * time.Second)
	for len(got) < len(names) {
		select {
		case ev, ok := <-s.ch:
			if !ok {
				t.Fatal("event stream closed")
			}
			if ev[0] != feed.EventWitness {
				continue
			}
			var we feed.WitnessEvent
			if err := json.Unmarshal([]byte(ev[1]), &we); err != nil {
				t.Fatalf("witness event %s: %v", ev[1], err)
			}
			if _, seen := got[we.Witness]; !seen && we.State == state && slices.Contains(names, we.Witness) {
				got[we.Witness] = we
			}
		case <-deadline:
			t.Fatalf("witness events → %s: got %d of %v before the deadline", state, len(got), names)
		}
	}
	return got
}

func witnessesOf(t *testing.T, fn *feedNode) map[string]feed.WitnessStatus {
	t.Helper()
	return witnessesOfQuorum(t, fn, 2)
}

// witnessesOfQuorum reads /v1/witnesses, checking quorum_witnesses_needed.
func witnessesOfQuorum(t *testing.T, fn *feedNode, quorum int) map[string]feed.WitnessStatus {
	t.Helper()
	code, body := fn.get("/v1/witnesses")
	var wr feed.WitnessesResponse
	if err := json.Unmarshal([]byte(body), &wr); code != 200 || err != nil {
		t.Fatalf("/v1/witnesses: %d %v %s", code, err, body)
	}
	out := map[string]feed.WitnessStatus{}
	for _, w := range wr.Witnesses {
		out[w.Name] = w
	}
	if wr.QuorumNeeded != quorum {
		t.Errorf("quorum_witnesses_needed %d, want %d", wr.QuorumNeeded, quorum)
	}
	return out
}

func metricValue(t *testing.T, fn *feedNode, series string) string {
	t.Helper()
	code, body := fn.get("/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			return v
		}
	}
	return ""
}

// TestNodeWitnessTimeline drives a real node (real Badger, real HTTP, the
// node's own witness cosigning through add-checkpoint, the other
// witnesses' cosignatures through the store hook gossip writes through)
// while w2 goes silent and comes back, and checks the witness events,
// /v1/witnesses, /v1/witnesses/{name} and the metrics at each step; then
// restarts the node on the same data directory and checks that the
// timeline's history survived.
func TestNodeWitnessTimeline(t *testing.T) {
	interval := time.Second // late after 1 s behind, missing after 3 s
	wn := newWitnessNet(t, interval)
	fn, stop := wn.start()
	events := subscribeSSE(t, fn.n.URL())

	// Everyone cosigns size 2.
	wn.log.AppendN(2, "a")
	fn.push(0)
	wn.gossipCosign(fn, 2, "w1", "w2")
	for name, ev := range events.waitWitnesses(t, feed.WitnessAlive, "self", "w1", "w2") {
		if ev.Previous != feed.WitnessMissing || ev.LastCosignedAt == nil {
			t.Errorf("%s: event %+v, want missing → alive with a timestamp", name, ev)
		}
	}
	ws := witnessesOf(t, fn)
	for _, name := range []string{"self", "w1", "w2"} {
		w := ws[name]
		if w.State != feed.WitnessAlive || w.LagSize != 0 || w.LastCosignature == nil || w.LastCosignature.Size != 2 {
			t.Errorf("%s after size 2: %+v", name, w)
		}
		if s := w.Shares["1h"]; s == nil || *s != 1 {
			t.Errorf("%s: 1h share %v, want 1", name, s)
		}
	}

	// w2 goes silent: size 4 is cosigned by self and w1 only.
	wn.log.AppendN(2, "b")
	fn.push(2)
	wn.gossipCosign(fn, 4, "w1")
	late := events.waitWitness(t, "w2", feed.WitnessLate)
	if late.Previous != feed.WitnessAlive || late.LastCosignedAt == nil {
		t.Errorf("late event %+v", late)
	}
	events.waitWitness(t, "w2", feed.WitnessMissing)
	ws = witnessesOf(t, fn)
	if w := ws["w2"]; w.State != feed.WitnessMissing || w.LagSize != 2 || w.LastCosignature.Size != 2 || w.Logs[0].BehindSince == nil {
		t.Errorf("silent w2: %+v", w)
	}
	if s := ws["w2"].Shares["1h"]; s == nil || *s != 0.5 {
		t.Errorf("silent w2: 1h share %v, want 0.5", s)
	}
	if w := ws["w1"]; w.State != feed.WitnessAlive || w.LagSize != 0 {
		t.Errorf("w1 while w2 is silent: %+v", w)
	}
	if code, page := fn.get("/"); code != 200 || !strings.Contains(page, `data-witness="w2" data-state="missing"`) || !strings.Contains(page, `data-witness="w1" data-state="alive"`) || !strings.Contains(page, "2 behind") {
		t.Errorf("dashboard witness section: %d\n%s", code, page)
	}
	if v := metricValue(t, fn, `vigil_witness_alive{witness="w2"}`); v != "0" {
		t.Errorf("vigil_witness_alive{w2} = %q, want 0", v)
	}
	if v := metricValue(t, fn, "vigil_witnesses_alive"); v != "2" {
		t.Errorf("vigil_witnesses_alive = %q, want 2", v)
	}
	if v := metricValue(t, fn, "vigil_quorum_witnesses_needed"); v != "2" {
		t.Errorf("vigil_quorum_witnesses_needed = %q, want 2", v)
	}
	if v := metricValue(t, fn, `vigil_witness_last_cosignature_timestamp_seconds{witness="w2"}`); v == "" {
		t.Error("no last cosignature timestamp for w2")
	}

	// w2 returns and cosigns size 4.
	wn.gossipCosign(fn, 4, "w2")
	back := events.waitWitness(t, "w2", feed.WitnessAlive)
	if back.Previous != feed.WitnessMissing {
		t.Errorf("return event %+v", back)
	}
	ws = witnessesOf(t, fn)
	if w := ws["w2"]; w.State != feed.WitnessAlive || w.LagSize != 0 || w.LastCosignature.Size != 4 {
		t.Errorf("returned w2: %+v", w)
	}
	if v := metricValue(t, fn, "vigil_witnesses_alive"); v != "3" {
		t.Errorf("vigil_witnesses_alive = %q, want 3", v)
	}
	code, body := fn.get("/v1/witnesses/w2")
	var before feed.WitnessDetail
	if err := json.Unmarshal([]byte(body), &before); code != 200 || err != nil || len(before.History) == 0 {
		t.Fatalf("/v1/witnesses/w2: %d %v %s", code, err, body)
	}
	if h := before.History[len(before.History)-1]; h.Cosigned < 1 || h.Checkpoints != 2 {
		t.Errorf("w2's last hour: %+v, want 2 checkpoints", h)
	}
	if code, body := fn.get("/v1/witnesses/nobody"); code != 404 || !strings.Contains(body, `"error"`) || !strings.Contains(body, "nobody") {
		t.Errorf("unknown witness: %d %s", code, body)
	}

	// A restart on the same Badger directory remembers the history.
	stop()
	fn2, _ := wn.start()
	code, body = fn2.get("/v1/witnesses/w2")
	var after feed.WitnessDetail
	if err := json.Unmarshal([]byte(body), &after); code != 200 || err != nil {
		t.Fatalf("/v1/witnesses/w2 after restart: %d %v %s", code, err, body)
	}
	if fmt.Sprint(after.History) != fmt.Sprint(before.History) {
		t.Errorf("history after restart %+v, want %+v", after.History, before.History)
	}
	if after.LastCosignature == nil || after.LastCosignature.Size != 4 || after.LastCosignature.CosignedAt != before.LastCosignature.CosignedAt {
		t.Errorf("last cosignature after restart %+v, want %+v", after.LastCosignature, before.LastCosignature)
	}
	if after.State != feed.WitnessAlive {
		t.Errorf("state after restart %s", after.State)
	}
}

// TestNodePeerRoles: /v1/peers takes roles from configuration only. A peer
// the peers file binds to a roster witness's name is a witness, one it
// names otherwise is a known observer, and any other peer (here a flooding
// one with a very negative score) is unknown, never an observer.
func TestNodePeerRoles(t *testing.T) {
	fn := startFeedNode(t)
	hooks := fn.n.FeedHooks()
	var ids []peer.ID
	for range 3 {
		k, _, err := crypto.GenerateEd25519Key(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		id, _ := peer.IDFromPrivateKey(k)
		ids = append(ids, id)
	}
	hooks.Peers(nil, []gossip.Peer{{Name: "w1", Info: peer.AddrInfo{ID: ids[0]}}, {Name: "auditor", Info: peer.AddrInfo{ID: ids[1]}}})
	hooks.ScoreInspect(map[peer.ID]float64{ids[0]: 3, ids[1]: 1, ids[2]: -89.5})
	code, body := fn.get("/v1/peers")
	var pr feed.PeersResponse
	if err := json.Unmarshal([]byte(body), &pr); code != 200 || err != nil {
		t.Fatalf("peers: %d %v %s", code, err, body)
	}
	want := map[string]string{ids[0].String(): "witness w1", ids[1].String(): "observer auditor", ids[2].String(): "unknown "}
	if len(pr.Peers) != len(want) {
		t.Fatalf("peers %+v", pr.Peers)
	}
	for _, p := range pr.Peers {
		if got := p.Role + " " + p.Name; got != want[p.ID] {
			t.Errorf("peer %s: %q, want %q", p.ID, got, want[p.ID])
		}
	}
}
