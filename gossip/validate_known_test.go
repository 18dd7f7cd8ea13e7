package gossip

import (
	"fmt"
	"runtime"
	"testing"
)

// TestKnownCheckpointsBound checks that the validator's known checkpoints
// stay within knownCheckpoints, that the oldest leave first, and that an
// entry costs what the bound's comment says (so the bound is the memory
// it claims).
func TestKnownCheckpointsBound(t *testing.T) {
	key := func(i int) cpKey {
		return cpKey{fmt.Sprintf("bench.example/log/%04d", i%1000), uint64(i), [32]byte{byte(i), byte(i >> 8), byte(i >> 16)}}
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	v := newValidator(&Service{})
	const extra = 1000
	for i := 0; i < knownCheckpoints+extra; i++ {
		v.known.update(key(i), func(cosignerSet, bool) cosignerSet {
			return cosignerSet{"bench.example/vigil"}
		})
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	v.known.mu.Lock()
	n, m := len(v.known.ents), len(v.known.items)
	v.known.mu.Unlock()
	if n != knownCheckpoints || m != knownCheckpoints {
		t.Fatalf("known holds %d (slots) / %d (map) checkpoints, want %d", n, m, knownCheckpoints)
	}
	for _, i := range []int{0, extra - 1} {
		if _, ok := v.known.get(key(i)); ok {
			t.Errorf("checkpoint %d, among the %d oldest, is still known", i, extra)
		}
	}
	for _, i := range []int{extra, knownCheckpoints + extra - 1} {
		if _, ok := v.known.get(key(i)); !ok {
			t.Errorf("checkpoint %d, among the %d newest, is not known", i, knownCheckpoints)
		}
	}
	// The comment on knownCheckpoints budgets about 4.5 MB; allow for
	// the runtime's size classes and other allocations during the test.
	if grew := int64(after.HeapAlloc) - int64(before.HeapAlloc); grew > 6<<20 {
		t.Errorf("known at its bound takes %.1f MB of heap, want at most 6", float64(grew)/(1<<20))
	} else {
		t.Logf("known at its bound: %.1f MB, %d bytes per checkpoint", float64(grew)/(1<<20), grew/knownCheckpoints)
	}
	runtime.KeepAlive(v)
}
