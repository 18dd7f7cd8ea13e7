package scitt_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/transparency-dev/tessera"
	"github.com/vigilnet/vigil/node"
	"github.com/vigilnet/vigil/scitt"
)

// TestWitnessedByVigilNode runs a real Vigil node (package node) with the
// log in its roster, points the service's Tessera witness policy at the
// node's /add-checkpoint and checks that published checkpoints carry the
// node's cosignature and that receipts still verify.
func TestWitnessedByVigilNode(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	n, wvkey := startWitnessNode(t, func(wvkey string) string {
		return "log " + e.logVKey + "\nwitness w1 " + wvkey + "\ngroup g 1 w1\nquorum g\n"
	}, nil)

	scfg := e.config(t)
	scfg.Witnesses = &scitt.WitnessConfig{Witnesses: []scitt.Witness{{URL: n.URL(), VKey: wvkey}}, Timeout: 10 * time.Second}
	svc, srv := e.startWith(t, scfg, scitt.HandlerOptions{SyncWait: 10 * time.Second})

	nodeURL, _ := url.Parse(n.URL())
	w, err := tessera.NewWitness(wvkey, nodeURL)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		stmt := sign(t, e.issuer, scitt.KindConfiguration, i, scitt.SignOptions{})
		_, rcpt := register(t, srv.URL, stmt)
		if err := scitt.VerifyReceipt(stmt, rcpt, e.receipt.Public()); err != nil {
			t.Fatal(err)
		}
		r := do(t, "GET", srv.URL+"/checkpoint", "", nil)
		if r.code != http.StatusOK || !w.Satisfied(r.body) {
			t.Fatalf("published checkpoint is not cosigned by the node:\n%s", r.body)
		}
	}
	// The node keeps the latest checkpoint it cosigned for the origin.
	latest, err := n.Witness().Latest(ctx, svc.Origin())
	if err != nil || len(latest) == 0 {
		t.Fatalf("node has no checkpoint for %s: %v", svc.Origin(), err)
	}
}

// TestFollowedByVigilNode: the log is listed with its URL in a Vigil node's
// roster; the node's follower pulls checkpoints and tiles from the service
// (pull mode, no push from the log) and cosigns what it reads.
func TestFollowedByVigilNode(t *testing.T) {
	e := newEnv(t)
	svc, srv := e.start(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	n, wvkey := startWitnessNode(t, func(wvkey string) string {
		return "log " + e.logVKey + " " + srv.URL + "\nwitness w1 " + wvkey + "\nquorum w1\n"
	}, func(cfg *node.Config) { cfg.Gossip.FollowInterval = 50 * time.Millisecond })

	const want = 20
	for i := range want {
		register(t, srv.URL, sign(t, e.issuer, scitt.KindInventory, i, scitt.SignOptions{}))
	}
	w, err := tessera.NewWitness(wvkey, &url.URL{})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.After(30 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		cp, err := n.Witness().Latest(ctx, svc.Origin())
		if err == nil && w.Satisfied(cp) && bytes.Contains(cp, []byte(fmt.Sprintf("\n%d\n", want))) {
			return // the node followed the log to its size and cosigned it
		}
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("node did not follow the log to size %d; latest: %q (%v)", want, cp, err)
		}
	}
}
