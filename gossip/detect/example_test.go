package detect_test

import (
	"context"
	"fmt"

	"github.com/vigilnet/vigil/gossip/detect"
	"github.com/vigilnet/vigil/gossip/evidence"
	"github.com/vigilnet/vigil/roster"
)

// A log signs two trees of size 10 and each is shown to the node: the
// second sighting makes evidence, which verifies with the roster alone.
func Example() {
	w := getWorld(nil)
	out := newRecorder()
	det, err := detect.New(detect.Config{
		Store:  newMemStore(w),
		Out:    out,
		Roster: func() *roster.Roster { return w.roster },
	})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	for _, s := range []detect.Sighting{
		w.sighting(treeID{0, honest}, 10, w0, "peer-a"),
		w.sighting(treeID{0, fork5}, 10, w1, "peer-b"),
	} {
		if err := det.Process(ctx, s); err != nil {
			panic(err)
		}
	}
	for _, e := range out.evidence {
		f, err := evidence.Verify(e, w.roster)
		if err != nil {
			panic(err)
		}
		fmt.Println(f.Kind, f.A.Size, f.B.Size)
	}
	// Output: KIND_LOG_EQUIVOCATION_SAME_SIZE 10 10
}
