package node_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"golang.org/x/mod/sumdb/note"

	"github.com/vigilnet/vigil/node"
	"github.com/vigilnet/vigil/notify"
	"github.com/vigilnet/vigil/store"
	"github.com/vigilnet/vigil/testnet/scriptlog"
)

const hookSecret = "node-hook-secret-0123"

// hookReceiver is a local webhook receiver that answers 503 while down.
type hookReceiver struct {
	mu       sync.Mutex
	down     bool
	attempts int
	got      []notify.Notification
	changed  chan struct{}
	url      string
}

func newHookReceiver(t *testing.T) *hookReceiver {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &hookReceiver{changed: make(chan struct{}), url: "http://" + ln.Addr().String() + "/vigil", down: true}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		defer h.mu.Unlock()
		defer func() { close(h.changed); h.changed = make(chan struct{}) }()
		h.attempts++
		if h.down {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		var n notify.Notification
		if !notify.Verify(hookSecret, body, r.Header.Get(notify.SignatureHeader)) || json.Unmarshal(body, &n) != nil {
			t.Errorf("unsigned or malformed delivery: %s", body)
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		h.got = append(h.got, n)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return h
}

func (h *hookReceiver) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		h.mu.Lock()
		ok, ch := cond(), h.changed
		h.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// runNotifyNode runs a node on dir with one webhook until stop is called.
func runNotifyNode(t *testing.T, dir, hookURL string) (db *store.DB, n *node.Node, stop func()) {
	t.Helper()
	l, err := scriptlog.NewWithKey(notifyLogKey(t, dir))
	if err != nil {
		t.Fatal(err)
	}
	rosterPath := filepath.Join(dir, "roster")
	if err := os.WriteFile(rosterPath, []byte(fmt.Sprintf("log %s\n", l.VerifierKey())), 0o644); err != nil {
		t.Fatal(err)
	}
	p2p, _, _ := crypto.GenerateEd25519Key(rand.Reader)
	db, err = store.Open(filepath.Join(dir, "data"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := node.DefaultConfig()
	cfg.Listen, cfg.DataDir, cfg.Roster, cfg.Observer = ln.Addr().String(), filepath.Join(dir, "data"), rosterPath, true
	cfg.Gossip.Disabled = true
	cfg.Alerts = notify.Config{Webhooks: []notify.Webhook{{URL: hookURL, Secret: hookSecret, Events: []string{notify.KindEvidence}}},
		RetryBase: 20 * time.Millisecond, RetryMax: 100 * time.Millisecond}
	n, err = node.New(cfg, node.Deps{Listener: ln, Store: db, Keys: &node.Keys{P2P: p2p}})
	if err != nil {
		t.Fatal(err)
	}
	return db, n, runNode(t, "node", n, db)
}

// notifyLogKey keeps one log key per test directory across restarts.
func notifyLogKey(t *testing.T, dir string) (string, string) {
	t.Helper()
	p := filepath.Join(dir, "log.key")
	if b, err := os.ReadFile(p); err == nil {
		var k [2]string
		json.Unmarshal(b, &k)
		return k[0], k[1]
	}
	skey, vkey, err := note.GenerateKey(rand.Reader, "example.com/notifylog")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal([2]string{skey, vkey})
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return skey, vkey
}

// TestNodeWebhookAcrossRestart: evidence the node stores while its webhook
// receiver is down is delivered, signed, once the receiver is back, even
// though the node restarted in between (the outbox is in its Badger store).
func TestNodeWebhookAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	hook := newHookReceiver(t)
	db, n, stop := runNotifyNode(t, dir, hook.url)
	rec := store.EvidenceRecord{ID: "ev-node-1", Kind: "log-equivocation-same-size", Origin: "example.com/notifylog", Statement: "two roots at size 6", Stored: time.Now(), Data: nil}
	if _, err := db.PutEvidence(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	n.Feed().EvidenceUpdated()
	hook.waitFor(t, "two refused attempts", func() bool { return hook.attempts >= 2 })
	stop()

	_, _, _ = runNotifyNode(t, dir, hook.url)
	hook.mu.Lock()
	hook.down = false
	hook.mu.Unlock()
	hook.waitFor(t, "the delivery after the restart", func() bool { return len(hook.got) > 0 })
	hook.mu.Lock()
	got := hook.got[0]
	hook.mu.Unlock()
	if got.ID != "evidence/ev-node-1" || got.Event != notify.KindEvidence {
		t.Fatalf("delivered %+v", got)
	}
}
