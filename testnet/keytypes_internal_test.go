package testnet

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigilnet/vigil/node"
	"github.com/vigilnet/vigil/roster"
)

func TestCheckKeyType(t *testing.T) {
	for _, v := range []string{"", "ed25519", "mldsa", "both"} {
		if err := CheckKeyType(v); err != nil {
			t.Errorf("CheckKeyType(%q) = %v", v, err)
		}
	}
	for _, v := range []string{"ED25519", "ml-dsa", "rsa", "both ", "ed25519,mldsa"} {
		if err := CheckKeyType(v); !errors.Is(err, ErrKeyType) || !strings.Contains(err.Error(), fmt.Sprintf("%q", v)) {
			t.Errorf("CheckKeyType(%q) = %v, want ErrKeyType naming the value", v, err)
		}
	}
}

func TestCheckKeyOptions(t *testing.T) {
	types := func(t string) func(int) string { return func(int) string { return t } }
	for _, tc := range []struct {
		roster, cosign string
		ok             bool
	}{
		{"", "", true}, {"ed25519", "ed25519", true}, {"mldsa", "mldsa", true}, {"both", "ed25519", true},
		{"both", "mldsa", true}, {"mldsa", "both", true},
		{"mldsa", "ed25519", false}, {"ed25519", "mldsa", false}, {"", "mldsa", false},
		{"rsa", "", false}, {"both", "x", false},
	} {
		err := checkKeyOptions(Options{Witnesses: 3, RosterKeys: tc.roster, CosignatureTypes: types(tc.cosign)})
		if (err == nil) != tc.ok {
			t.Errorf("roster %q, cosign %q: err = %v, want ok %v", tc.roster, tc.cosign, err, tc.ok)
		}
	}
}

// TestBothRosterCountsWitnessOnce: under a "both" roster each witness is
// an any-group of its two keys, so the quorum counts witnesses, not keys,
// while a feed's ?k counts keys (QuorumCosignatures).
func TestBothRosterCountsWitnessOnce(t *testing.T) {
	dir := t.TempDir()
	var policy strings.Builder
	var names []string
	var members []*Member
	for i := range 3 {
		m := &Member{Name: fmt.Sprintf("witness-%d", i), Index: i, Role: Witness}
		v, err := node.GenerateAllKeys(filepath.Join(dir, m.Name), m.Name+".example")
		if err != nil {
			t.Fatal(err)
		}
		types := ""
		if i == 2 {
			types = node.CosignMLDSA
		}
		names = append(names, rosterWitness(&policy, m, v, node.CosignBoth, types))
		if i == 2 && m.VKey != v.MLDSA || i < 2 && m.VKey != v.Ed25519 {
			t.Fatalf("%s: VKey is not the roster key it signs with first", m.Name)
		}
		members = append(members, m)
	}
	fmt.Fprintf(&policy, "group witnesses 2 %s\nquorum witnesses\n", strings.Join(names, " "))
	r, err := roster.ParsePolicy([]byte(policy.String()))
	if err != nil {
		t.Fatalf("%v\n%s", err, policy.String())
	}
	if len(r.Witnesses()) != 6 {
		t.Fatalf("%d roster witnesses, want 6 (two keys each)", len(r.Witnesses()))
	}
	for _, tc := range []struct {
		cosigned []string
		met      bool
	}{
		{[]string{"witness-0-ed", "witness-0-ml"}, false},
		{[]string{"witness-0-ed", "witness-1-ml"}, true},
		{[]string{"witness-2-ml", "witness-1-ed", "witness-1-ml"}, true},
		{[]string{"witness-2-ml"}, false},
	} {
		c := map[string]bool{}
		for _, n := range tc.cosigned {
			c[n] = true
		}
		if got := r.QuorumMet(c); got != tc.met {
			t.Errorf("QuorumMet(%v) = %v, want %v", tc.cosigned, got, tc.met)
		}
	}
	nw := &Network{opts: Options{RosterKeys: node.CosignBoth, CosignatureTypes: func(i int) string {
		if i == 2 {
			return node.CosignMLDSA
		}
		return ""
	}}, Members: members, quorum: 2}
	// The two quorum witnesses making the fewest roster cosignatures:
	// witness-2 (one, ML-DSA only) and one signing both (two).
	if k := nw.QuorumCosignatures(); k != 3 {
		t.Errorf("QuorumCosignatures = %d, want 3", k)
	}
	if got := nw.members([]string{"witness-0-ed", "witness-0-ml", "witness-2-ml"}); strings.Join(got, " ") != "witness-0 witness-2" {
		t.Errorf("members = %v", got)
	}
}
