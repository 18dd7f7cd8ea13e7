package gossip_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/vigilnet/vigil/tlog"
)

// TestWaitsMeasured: a sighting received from a peer is timed from pubsub
// taking it in to the validator, and from the validator to the detector; a
// node's own publication is timed to the detector only.
func TestWaitsMeasured(t *testing.T) {
	n := newNet(t, netOptions{nodes: 2})
	n.connectRing()
	from, to := n.nodes[0], n.nodes[1]
	n.log.AppendN(5, "common")
	cp, _ := n.log.Checkpoint()
	parsed, err := tlog.ParseCheckpoint(cp[:bytes.Index(cp, []byte("\n\n"))+1])
	if err != nil {
		t.Fatal(err)
	}
	before := func(nd *tnode, name string) float64 { return counter(t, nd.svc, name, nil) }
	fromValidation := before(from, "vigil_gossip_validation_wait_seconds")
	toValidation := before(to, "vigil_gossip_validation_wait_seconds")
	fromDelivery := before(from, "vigil_gossip_delivery_wait_seconds")
	toDelivery := before(to, "vigil_gossip_delivery_wait_seconds")
	n.push(from, n.log) // from cosigns and publishes; to receives it
	waitFor(t, 30*time.Second, "the checkpoint at the other node", func() bool {
		rec, err := to.db.Checkpoint(context.Background(), parsed.Origin, parsed.Size, parsed.Root)
		return err == nil && rec.Cosigners >= 1
	})
	waitFor(t, 10*time.Second, "the detector at both nodes", func() bool {
		return before(from, "vigil_gossip_delivery_wait_seconds") > fromDelivery &&
			before(to, "vigil_gossip_delivery_wait_seconds") > toDelivery
	})
	if got := before(to, "vigil_gossip_validation_wait_seconds") - toValidation; got < 1 {
		t.Errorf("receiver: %v validation waits measured, want at least 1", got)
	}
	if got := before(from, "vigil_gossip_validation_wait_seconds") - fromValidation; got != 0 {
		t.Errorf("publisher: %v validation waits measured for its own publication, want 0", got)
	}
}
