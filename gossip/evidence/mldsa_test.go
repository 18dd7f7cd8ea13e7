package evidence_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vigilnet/vigil/gossip/evidence"
	vpb "github.com/vigilnet/vigil/proto"
	"github.com/vigilnet/vigil/roster"
	"github.com/vigilnet/vigil/tlog"
)

// TestWitnessEquivocationMLDSA: a witness listed in the roster by its
// ML-DSA-44 key that cosigned two inconsistent checkpoints is caught as with
// an Ed25519 key; the evidence survives the file format, and a checkpoint
// pair carrying only the witness's Ed25519 lines (a key the roster does not
// list) is not evidence against it.
func TestWitnessEquivocationMLDSA(t *testing.T) {
	fx := newFixture(t)
	now := func() time.Time { return time.Unix(1700000000, 0) }
	mskey, mvkey, err := tlog.GenerateMLDSACosignerKey("witness.example/w1")
	if err != nil {
		t.Fatal(err)
	}
	ml, err := tlog.NewMLDSASigner(mskey, now)
	if err != nil {
		t.Fatal(err)
	}
	r, err := roster.ParsePolicy(fmt.Appendf(nil, "log %s\nwitness w1-ml %s\nquorum w1-ml\n", fx.log.VerifierKey(), mvkey))
	if err != nil {
		t.Fatal(err)
	}
	ed := fx.witness
	for _, tc := range []struct {
		name string
		e    *vpb.Evidence
		ok   bool
	}{
		{"same size, both lines", &vpb.Evidence{Kind: vpb.Kind_KIND_WITNESS_EQUIVOCATION, WitnessKey: mvkey,
			CheckpointA: checkpoint(t, fx.log, 12, ed, ml), CheckpointB: checkpoint(t, fx.fork, 12, ed, ml)}, true},
		{"different sizes, ML-DSA only", &vpb.Evidence{Kind: vpb.Kind_KIND_WITNESS_EQUIVOCATION, WitnessKey: mvkey,
			CheckpointA: checkpoint(t, fx.fork, 6, ml), CheckpointB: checkpoint(t, fx.log, 9, ml), ConsistencyProof: consistency(t, fx.log, 6, 9)}, true},
		{"only Ed25519 lines", &vpb.Evidence{Kind: vpb.Kind_KIND_WITNESS_EQUIVOCATION, WitnessKey: mvkey,
			CheckpointA: checkpoint(t, fx.log, 12, ed), CheckpointB: checkpoint(t, fx.fork, 12, ed)}, false},
		{"ML-DSA on one side only", &vpb.Evidence{Kind: vpb.Kind_KIND_WITNESS_EQUIVOCATION, WitnessKey: mvkey,
			CheckpointA: checkpoint(t, fx.log, 12, ml), CheckpointB: checkpoint(t, fx.fork, 12, ed)}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := evidence.Verify(tc.e, r)
			if !tc.ok {
				if err == nil {
					t.Fatalf("verified: %s", f.Statement())
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if f.Witness != "w1-ml" || f.WitnessKey != mvkey || !strings.Contains(f.Statement(), `witness "w1-ml"`) {
				t.Fatalf("finding names %q: %s", f.Witness, f.Statement())
			}
			b, err := evidence.MarshalFile(tc.e)
			if err != nil {
				t.Fatal(err)
			}
			e2, err := evidence.ParseFile(b)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := evidence.Verify(e2, r); err != nil {
				t.Fatalf("parsed file: %v", err)
			}
		})
	}
}
