package evidence_test

import (
	"bytes"
	"testing"

	"github.com/vigilnet/vigil/gossip/evidence"
	vpb "github.com/vigilnet/vigil/proto"
)

func FuzzParseFile(f *testing.F) {
	fx := newFixture(f)
	good, _ := evidence.MarshalFile(&vpb.Evidence{Kind: vpb.Kind_KIND_LOG_EQUIVOCATION_DIFFERENT_SIZES,
		CheckpointA: checkpoint(f, fx.fork, 7), CheckpointB: checkpoint(f, fx.log, 12), ConsistencyProof: consistency(f, fx.log, 7, 12)})
	f.Add(good)
	f.Fuzz(func(t *testing.T, in []byte) {
		e, err := evidence.ParseFile(in)
		if err != nil {
			return
		}
		out, err := evidence.MarshalFile(e)
		if err != nil {
			t.Fatalf("parsed evidence does not re-encode: %v", err)
		}
		if !bytes.Equal(out, in) {
			t.Fatalf("parse/marshal is not the identity:\n%q\n%q", in, out)
		}
	})
}

// FuzzVerify mutates valid evidence; whatever verifies must still be a real
// split view: two log-signed checkpoints that cannot both be honest.
func FuzzVerify(f *testing.F) {
	fx := newFixture(f)
	for _, e := range []*vpb.Evidence{
		{Kind: vpb.Kind_KIND_LOG_EQUIVOCATION_SAME_SIZE, CheckpointA: checkpoint(f, fx.log, 12), CheckpointB: checkpoint(f, fx.fork, 12)},
		{Kind: vpb.Kind_KIND_LOG_EQUIVOCATION_DIFFERENT_SIZES, CheckpointA: checkpoint(f, fx.fork, 8), CheckpointB: checkpoint(f, fx.log, 12), ConsistencyProof: consistency(f, fx.log, 8, 12)},
		{Kind: vpb.Kind_KIND_WITNESS_EQUIVOCATION, WitnessKey: fx.wvkey, CheckpointA: checkpoint(f, fx.log, 12, fx.witness), CheckpointB: checkpoint(f, fx.fork, 12, fx.witness)},
	} {
		b, _ := vpb.MarshalEvidence(e)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		e, err := vpb.UnmarshalEvidence(in)
		if err != nil {
			return
		}
		fd, err := evidence.Verify(e, fx.roster)
		if err != nil {
			return
		}
		// Only the honest log's and the fork's checkpoints exist; a valid
		// finding must name two roots that differ from each other (same
		// size) or a proven root that differs from A's.
		if fd.A.Size == fd.B.Size && fd.A.Root == fd.B.Root {
			t.Fatal("verified two identical checkpoints")
		}
		if fd.A.Size < fd.B.Size {
			want, _ := fx.log.Root(fd.A.Size)
			if fd.B.Root != mustRoot(t, fx.log, fd.B.Size) || fd.ProvenRootA != want {
				t.Fatal("different-size finding does not reflect the honest log's tree")
			}
		}
	})
}

func mustRoot(t *testing.T, l interface {
	Root(uint64) ([32]byte, error)
}, n uint64) [32]byte {
	r, err := l.Root(n)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
