package testnet_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/vigilnet/vigil/gossip/evidence"
	vpb "github.com/vigilnet/vigil/proto"
	"github.com/vigilnet/vigil/roster"
	"github.com/vigilnet/vigil/testnet"
)

func TestParseScript(t *testing.T) {
	steps, err := testnet.ParseScript(testnet.DefaultScript)
	if err != nil {
		t.Fatal(err)
	}
	if len(steps) < 10 || steps[0].Op != "say" {
		t.Fatalf("parsed %d steps: %+v", len(steps), steps)
	}
	for name, src := range map[string]string{
		"no at":          "grow log-0 1\n",
		"bad time":       "at soon grow log-0 1\n",
		"unknown op":     "at 1s explode\n",
		"too few args":   "at 1s grow log-0\n",
		"too many args":  "at 1s heal now\n",
		"out of order":   "at 2s heal\nat 1s heal\n",
		"negative time":  "at -1s heal\n",
		"missing op":     "at 1s\n",
		"comment inline": "at 1s grow # log-0 1\n",
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := testnet.ParseScript([]byte(src)); err == nil || !strings.Contains(err.Error(), "line") {
				t.Fatalf("err = %v, want an error naming the line", err)
			}
		})
	}
}

// TestDefaultScript runs the default fault script on an in-process network:
// a kill and restart, a log withholding proofs, a partition with a flood, an
// equivocation across it, a witness cosigning both views, the heal — and
// checks that every node's evidence verifies and that a witness
// equivocation was caught.
func TestDefaultScript(t *testing.T) {
	if testing.Short() {
		t.Skip("network scenario")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var out bytes.Buffer
	sn, err := testnet.StartScripted(ctx, testnet.Options{Dir: t.TempDir(), Witnesses: 8, Observers: 2, FollowInterval: 200 * time.Millisecond}, 2, &out)
	if err != nil {
		t.Fatal(err)
	}
	defer sn.Stop()
	steps, err := testnet.ParseScript(testnet.DefaultScript)
	if err != nil {
		t.Fatal(err)
	}
	if err := sn.Scenario.Run(ctx, steps); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	r, err := roster.Load(sn.RosterPath)
	if err != nil {
		t.Fatal(err)
	}
	witnessEquivocation := false
	for i, m := range sn.Members {
		ev, err := sn.Evidence(ctx, i)
		if err != nil {
			t.Fatal(err)
		}
		for _, rec := range ev {
			e, err := vpb.UnmarshalEvidence(rec.Data)
			if err != nil {
				t.Fatal(err)
			}
			f, err := evidence.Verify(e, r)
			if err != nil {
				t.Fatalf("%s: invalid evidence: %v", m.Name, err)
			}
			if f.Origin != sn.Logs["log-0"].Log.Origin() {
				t.Fatalf("%s: false evidence about %s", m.Name, f.Origin)
			}
			if rec.Witness != "" {
				witnessEquivocation = true
			}
		}
	}
	if !witnessEquivocation {
		t.Error("no node caught the witness that cosigned both views")
	}
	t.Log(out.String())
}
