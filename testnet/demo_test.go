package testnet_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/vigilnet/vigil/testnet"
)

func TestDemoRuns(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out bytes.Buffer
	if err := testnet.RunDemo(ctx, &out, testnet.DemoOptions{Dir: t.TempDir(), Rounds: 3}); err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	s := out.String()
	if got := strings.Count(s, "cosignature/v1 by demo.vigil.example/witness"); got != 3 {
		t.Errorf("%d verified cosignatures printed, want 3:\n%s", got, s)
	}
	if !strings.Contains(s, "refused to cosign") {
		t.Errorf("demo did not show the refused fork:\n%s", s)
	}
}
