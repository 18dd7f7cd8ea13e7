package testnet_test

import (
	"bufio"
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigilnet/vigil/testnet"
	"github.com/vigilnet/vigil/testnet/scriptlog"
)

// rejected sums a member's vigil_gossip_validated_total{result="reject"}
// lines whose reason is reason.
func rejected(t *testing.T, url, reason string) float64 {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sum := 0.0
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if strings.HasPrefix(l, "vigil_gossip_validated_total{") && strings.Contains(l, `result="reject"`) && strings.Contains(l, `reason="`+reason+`"`) {
			f := strings.Fields(l)
			v, _ := strconv.ParseFloat(f[len(f)-1], 64)
			sum += v
		}
	}
	return sum
}

// TestFloodPeerIsRejected: the hostile peer's pre-signed frames are
// well-formed gossipsub messages with valid libp2p signatures, so they reach
// the victim's validator, which rejects them for their forged log
// signature; the victim stays healthy and holds no evidence.
func TestFloodPeerIsRejected(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	lg, err := scriptlog.New("flood.testnet.vigil.example")
	if err != nil {
		t.Fatal(err)
	}
	lg.AppendN(3, "a")
	nw, err := testnet.Start(ctx, testnet.Options{Dir: t.TempDir(), Witnesses: 2, Logs: []testnet.LogEntry{{VKey: lg.VerifierKey()}}})
	if err != nil {
		t.Fatal(err)
	}
	defer nw.Stop()
	x, err := testnet.NewFloodPeer("testnet")
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	victim := nw.Members[0]
	if err := x.Connect(ctx, victim); err != nil {
		t.Fatal(err)
	}
	if err := x.Flood(lg, 500); err != nil {
		t.Fatal(err)
	}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for rejected(t, victim.URL, "bad_signature") == 0 {
		select {
		case <-ctx.Done():
			t.Fatalf("no forged sighting was rejected; %d sent", x.Sent())
		case <-tick.C:
		}
	}
	if recs, err := victim.Node().Store().ListEvidence(ctx, "", 10); err != nil || len(recs) != 0 {
		t.Fatalf("evidence after a flood of forgeries: %d, %v", len(recs), err)
	}
}
