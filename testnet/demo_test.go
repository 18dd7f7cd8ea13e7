package testnet_test

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vigilnet/vigil/gossip/evidence"
	"github.com/vigilnet/vigil/roster"
	"github.com/vigilnet/vigil/testnet"
)

func TestDemoRuns(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var out bytes.Buffer
	res, err := testnet.RunDemo(ctx, &out, testnet.DemoOptions{Dir: t.TempDir(), Rounds: 2})
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	defer res.Stop()
	s := out.String()
	for _, want := range []string{"receipt verified offline", "with ≥ 3 witness cosignatures", "equivocates", "holds the evidence"} {
		if !strings.Contains(s, want) {
			t.Errorf("demo output lacks %q:\n%s", want, s)
		}
	}
	b, err := os.ReadFile(res.EvidenceFile)
	if err != nil {
		t.Fatal(err)
	}
	e, err := evidence.ParseFile(b)
	if err != nil {
		t.Fatal(err)
	}
	r, err := roster.Load(res.RosterPath)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := evidence.Verify(e, r); err != nil {
		t.Fatalf("demo evidence does not verify: %v", err)
	}
	t.Log(s)
}
