package roster_test

import (
	"fmt"
	"testing"

	"github.com/vigilnet/vigil/roster"
	"github.com/vigilnet/vigil/tlog"
)

// TestPolicyMLDSAWitnesses: witness lines take type 0x06 keys as well as
// 0x04 ones, one key per line; a witness with both keys is two lines joined
// by an "any" group, so it counts once towards the quorum whichever key
// cosigned.
func TestPolicyMLDSAWitnesses(t *testing.T) {
	k := genKeys(t, 1, 2)
	_, m0, err := tlog.GenerateMLDSACosignerKey("w0.example")
	if err != nil {
		t.Fatal(err)
	}
	_, m2, err := tlog.GenerateMLDSACosignerKey("w2.example")
	if err != nil {
		t.Fatal(err)
	}
	policy := fmt.Sprintf(`log %s
witness w0-ed %s
witness w0-ml %s
group w0 any w0-ed w0-ml
witness w1 %s
witness w2 %s
group q 2 w0 w1 w2
quorum q
`, k.logs[0], k.witnesses[0], m0, k.witnesses[1], m2)
	r, err := roster.ParsePolicy([]byte(policy))
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Witnesses()) != 4 {
		t.Fatalf("%d witnesses, want 4", len(r.Witnesses()))
	}
	ml, err := tlog.NewMLDSAVerifier(m0)
	if err != nil {
		t.Fatal(err)
	}
	if w, ok := r.WitnessByKey(ml.Name(), ml.KeyHash()); !ok || w.Name != "w0-ml" {
		t.Fatalf("WitnessByKey(ML-DSA key) = %v, %v", w, ok)
	}
	for _, tc := range []struct {
		cosigned []string
		met      bool
	}{
		{[]string{"w0-ml", "w2"}, true},
		{[]string{"w0-ed", "w0-ml"}, false}, // one witness, two keys: counts once
		{[]string{"w0-ed", "w1"}, true},
		{[]string{"w2"}, false},
	} {
		set := map[string]bool{}
		for _, c := range tc.cosigned {
			set[c] = true
		}
		if got := r.QuorumMet(set); got != tc.met {
			t.Errorf("QuorumMet(%v) = %v, want %v", tc.cosigned, got, tc.met)
		}
	}
	for name, bad := range map[string]string{
		"log key as witness":      fmt.Sprintf("witness x %s\nquorum x\n", k.logs[0]),
		"ML-DSA key listed twice": fmt.Sprintf("witness x %s\nwitness y %s\nquorum x\n", m0, m0),
		"two keys on one line":    fmt.Sprintf("witness x %s %s\nquorum x\n", k.witnesses[0], m0),
	} {
		if _, err := roster.ParsePolicy([]byte(bad)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
