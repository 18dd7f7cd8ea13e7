package node_test

import (
	"strings"
	"testing"
	"time"

	"github.com/vigilnet/vigil/feed"
	"github.com/vigilnet/vigil/node"
	"github.com/vigilnet/vigil/notify"
)

// TestNodeWitnessAlertAcrossRestarts: the witness-missing webhook of a
// real node survives restarts on the same Badger directory. w2 goes
// silent; the node stops within the debounce, and after the restart the
// notification comes one debounce after w2 went missing, though the
// witness timeline publishes no new event for it. After another restart
// w2 cosigns again and its return is notified.
func TestNodeWitnessAlertAcrossRestarts(t *testing.T) {
	const debounce = 2 * time.Second
	hook := newOnCallReceiver(t, "restart-secret-0123456", false)
	wn := newWitnessNet(t, 200*time.Millisecond) // late after 200 ms behind, missing after 600 ms
	wn.configure = func(c *node.Config) {
		c.Alerts = notify.Config{Webhooks: []notify.Webhook{{URL: hook.url, Secret: hook.secret, Events: []string{notify.KindWitness}}},
			WitnessMissingAfter: debounce, RetryBase: 10 * time.Millisecond, RetryMax: 50 * time.Millisecond}
	}
	fn, stop := wn.start()
	events := subscribeSSE(t, fn.n.URL())
	wn.log.AppendN(2, "a")
	fn.push(0)
	wn.gossipCosign(fn, 2, "w1", "w2")
	events.waitWitness(t, "w2", feed.WitnessAlive)

	// w2 does not cosign size 4: missing 600 ms later. Stop at once.
	wn.log.AppendN(2, "b")
	fn.push(2)
	wn.gossipCosign(fn, 4, "w1")
	events.waitWitness(t, "w2", feed.WitnessMissing)
	missingAt := time.Now()
	stop()
	if time.Since(missingAt) >= debounce {
		t.Skipf("stopping the node took %s, longer than the debounce", time.Since(missingAt))
	}

	// The restarted node publishes no witness event for w2 (its state is
	// unchanged) yet notifies it one debounce after it went missing.
	fn, stop = wn.start()
	if w := witnessesOf(t, fn)["w2"]; w.State != feed.WitnessMissing {
		t.Fatalf("w2 after the restart: %+v", w)
	}
	missing := hook.waitNote(notify.KindWitness, "w2 has been missing")
	hook.mu.Lock()
	n := len(hook.got)
	hook.mu.Unlock()
	if n != 1 || !strings.HasPrefix(missing.ID, "witness/w2/missing/") {
		t.Fatalf("after the restart: %d notifications, the first %+v", n, missing)
	}
	if at := time.Since(missingAt); at < debounce-100*time.Millisecond {
		t.Errorf("notified %s after w2 went missing, before the %s debounce", at, debounce)
	}
	// (A delivery accepted while the node stops may come again after the
	// restart under the same ID; let this one leave the outbox first.)
	fn.waitMetric("vigil_notify_outbox_deliveries", func(v float64) bool { return v == 0 })
	stop()

	// Another restart: w2 cosigns size 4, and its return is notified.
	fn, _ = wn.start()
	wn.gossipCosign(fn, 4, "w2")
	hook.waitNote(notify.KindWitness, "w2 is cosigning again")
	hook.mu.Lock()
	defer hook.mu.Unlock()
	for id, n := range hook.accepted {
		if n != 1 {
			t.Errorf("accepted %s %d times", id, n)
		}
	}
}
