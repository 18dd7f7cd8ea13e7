package gossip_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	vpb "github.com/vigilnet/vigil/proto"
	"github.com/vigilnet/vigil/tlog"
)

// TestLocalPublish: the validator takes PublishSighting's own check for the
// node's messages instead of verifying them again, but that check is the
// full one for anything but the node's own cosignatures: a forged line in
// a pushed or pulled note is refused before it leaves the node.
func TestLocalPublish(t *testing.T) {
	n := newNet(t, netOptions{nodes: 2})
	n.connectRing()
	n.log.AppendN(5, "common")
	ctx := context.Background()
	pub, other := n.nodes[0], n.nodes[1]

	good := n.cosign(n.log) // log signature + the rogue roster witness's cosignature
	forgedCosig := append([]byte(nil), good...)
	i := bytes.LastIndex(forgedCosig, []byte(" ")) + 10 // inside the cosignature's base64
	forgedCosig[i] ^= 'A' ^ 'B'
	if forgedCosig[i] == good[i] {
		t.Fatal("test bug: the cosignature was not changed")
	}

	for _, tc := range []struct {
		name    string
		note    []byte
		source  vpb.Source
		wantErr bool
	}{
		{"forged cosignature, pushed", forgedCosig, vpb.Source_SOURCE_PUSH, true},
		{"forged cosignature, pulled", forgedCosig, vpb.Source_SOURCE_PULL, true},
		{"valid, pushed", good, vpb.Source_SOURCE_PUSH, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := counter(t, pub.svc, "vigil_gossip_validated_total", map[string]string{"reason": "ok_local"})
			err := pub.svc.PublishSighting(ctx, tc.note, tc.source)
			if (err != nil) != tc.wantErr {
				t.Fatalf("PublishSighting: err = %v, want error %v", err, tc.wantErr)
			}
			after := counter(t, pub.svc, "vigil_gossip_validated_total", map[string]string{"reason": "ok_local"})
			if want := map[bool]float64{true: 0, false: 1}[tc.wantErr]; after-before != want {
				t.Fatalf("%v local acceptances, want %v", after-before, want)
			}
		})
	}
	// The valid one reached the other node with both signatures verified
	// there.
	cp, _ := n.log.Checkpoint()
	parsed, err := tlog.ParseCheckpoint(cp[:bytes.Index(cp, []byte("\n\n"))+1])
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the sighting at the other node", func() bool {
		rec, err := other.db.Checkpoint(ctx, n.log.Origin(), parsed.Size, parsed.Root)
		return err == nil && rec.Cosigners == 1
	})
	rec, _ := other.db.Checkpoint(ctx, n.log.Origin(), parsed.Size, parsed.Root)
	if bytes.Contains(rec.Note, forgedCosig[bytes.LastIndex(forgedCosig, []byte("\n— ")):]) {
		t.Fatal("the forged cosignature was stored")
	}

	// The node's own cosignature (witness → Offer, SOURCE_COSIGN) is taken
	// as the witness made it, and verified by the receiving node.
	before := counter(t, pub.svc, "vigil_gossip_validated_total", map[string]string{"reason": "ok_local"})
	n.log.AppendN(2, "more")
	n.push(pub, n.log)
	cp, _ = n.log.Checkpoint()
	if parsed, err = tlog.ParseCheckpoint(cp[:bytes.Index(cp, []byte("\n\n"))+1]); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the own cosignature at the other node", func() bool {
		rec, err := other.db.Checkpoint(ctx, n.log.Origin(), parsed.Size, parsed.Root)
		return err == nil && rec.Cosigners >= 1
	})
	if after := counter(t, pub.svc, "vigil_gossip_validated_total", map[string]string{"reason": "ok_local"}); after <= before {
		t.Fatal("the own cosignature was not taken from the local check")
	}
}
