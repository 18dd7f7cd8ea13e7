package detect_test

import (
	"context"
	"testing"
	"time"
)

// FuzzDetector decodes the input into a history of one log and plays it:
// byte 0 says whether the log has tiles (bit 0), whether they are up (bit
// 1), whether peers serve proofs (bit 2) and where a fork leaves the
// honest tree (bits 3-7); then each pair of bytes is an operation: deliver
// an honest or a forked checkpoint (size, cosigners), advance the clock
// and retry, or toggle the tiles or the peers. Invariants: every piece of
// evidence verifies offline; a history without a forked checkpoint gets
// none, and once its tiles serve and every witness cosigns its latest
// checkpoint, it ends with no open divergence.
func FuzzDetector(f *testing.F) {
	f.Add([]byte{0x03, 0x00, 0x05, 0x04, 0x0a, 0x08, 0x10})
	f.Add([]byte{0x0b, 0x00, 0x0a, 0x01, 0x0a})             // same size, fork at 1
	f.Add([]byte{0x2b, 0x00, 0x14, 0x05, 0x0c, 0x02, 0x30}) // different sizes, fork at 5
	f.Add([]byte{0x00, 0x04, 0x05, 0x08, 0x09, 0x02, 0xff, 0x02, 0xff})
	f.Add([]byte{0x2d, 0x00, 0x0c, 0x05, 0x14, 0x02, 0x40, 0x07, 0x00, 0x02, 0x40})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 || len(data) > 129 {
			return
		}
		ctx := context.Background()
		r := newRig(t)
		flags := data[0]
		r.pr.tiled[0] = flags&1 != 0
		r.pr.tilesUp[0] = flags&2 != 0
		r.pr.peersUp[0] = flags&4 != 0
		prefix := int(flags >> 3)
		fork := prefix + 1
		r.pr.forks[0] = []int{fork}
		forked := false
		var last uint64
		for ops := data[1:]; len(ops) >= 2; ops = ops[2:] {
			op, arg := ops[0], ops[1]
			switch op & 3 {
			case 0, 1:
				size := uint64(arg) % (maxTreeSize + 1)
				mask := (op>>2)%uint8(wAll) + 1
				branch := 0
				if op&3 == 1 {
					branch = fork
					if size <= uint64(prefix) {
						branch = 0 // the fork's first entries are the honest tree's
					} else {
						forked = true
					}
				}
				if branch == 0 {
					last = max(last, size)
				}
				if err := r.det.Process(ctx, r.w.sighting(treeID{0, branch}, size, mask, "pub")); err != nil {
					t.Fatal(err)
				}
			case 2:
				r.clk.advance(time.Duration(arg) * time.Second)
				r.det.Tick(ctx)
			case 3:
				if arg&1 != 0 {
					r.pr.tilesUp[0] = !r.pr.tilesUp[0]
				}
				if arg&2 != 0 {
					r.pr.peersUp[0] = !r.pr.peersUp[0]
				}
			}
		}
		if err := r.out.verifyAll(r.w.roster); err != nil {
			t.Fatal(err)
		}
		if forked {
			return
		}
		if len(r.out.evidence) != 0 {
			t.Fatalf("%d evidence for an honest history", len(r.out.evidence))
		}
		r.pr.tilesUp[0] = true
		if err := r.det.Process(ctx, r.w.sighting(treeID{0, 0}, last, wAll, "pub")); err != nil {
			t.Fatal(err)
		}
		r.settle(ctx)
		if len(r.out.evidence) != 0 || len(r.out.open) != 0 {
			t.Fatalf("honest history: %d evidence, open divergences %v", len(r.out.evidence), r.out.open)
		}
	})
}
