package testnet_test

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vigilnet/vigil/testnet"
)

// TestWitnessedReceiptSoak registers a statement with the transparency
// service of a witnessed test network, grows the service's log by a few
// hundred entries (10,000 under VIGIL_SOAK=1), and checks the statement's
// witnessed receipt against the latest witnessed checkpoint, and its
// tlog-proof, offline with the roster.
func TestWitnessedReceiptSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("network scenario")
	}
	grow, timeout := 300, 2*time.Minute
	if os.Getenv("VIGIL_SOAK") == "1" {
		grow, timeout = 10000, 20*time.Minute
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var out bytes.Buffer
	sn, err := testnet.StartScripted(ctx, testnet.Options{Dir: t.TempDir(), Witnesses: 3, FollowInterval: 200 * time.Millisecond}, testnet.ScriptedOptions{SCITT: true}, &out)
	if err != nil {
		t.Fatal(err)
	}
	defer sn.Stop()
	first, err := sn.TS.Register(ctx, sn.TS.CloudStatements(1))
	if err != nil {
		t.Fatal(err)
	}
	start, err := sn.TS.CheckWitnessed(ctx, first[0])
	if err != nil {
		t.Fatal(err)
	}
	for left := grow; left > 0; left -= 1000 {
		if _, err := sn.TS.Register(ctx, sn.TS.CloudStatements(min(left, 1000))); err != nil {
			t.Fatal(err)
		}
	}
	c, err := sn.TS.CheckWitnessed(ctx, first[0])
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("at the start: %s", start)
	t.Logf("after %d more entries: %s", grow, c)
	if c.ReceiptSize != start.ReceiptSize || c.CheckpointSize < uint64(grow)+1 || c.Consistency == 0 || len(c.Cosigners) < sn.Quorum() {
		t.Fatalf("after growth: %+v (at the start: %+v)", c, start)
	}
	// The script step does the same check.
	steps, err := testnet.ParseScript([]byte("at 0s witnessed\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := sn.Scenario.Run(ctx, steps); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "witnessed receipt (receipt at size") {
		t.Errorf("script output: %s", out.String())
	}
}
