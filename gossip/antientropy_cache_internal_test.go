package gossip

import (
	"testing"

	"github.com/vigilnet/vigil/roster"
	"github.com/vigilnet/vigil/store"
)

// TestHeadsCache: an entry is served until its log changes or the roster
// does, and a read during which the log changed is not kept (it may hold
// the heads from before the change).
func TestHeadsCache(t *testing.T) {
	r1, r2 := &roster.Roster{}, &roster.Roster{}
	recs := []store.CheckpointRecord{{Origin: "a", Size: 7}}
	d := [32]byte{7}
	type step struct {
		op     string // "read" (get, then put if missed), "get", "put", "change"
		origin string
		roster *roster.Roster
		hit    bool // for read and get
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"first read misses, second hits", []step{{"read", "a", r1, false}, {"read", "a", r1, true}}},
		{"a change empties the entry", []step{{"read", "a", r1, false}, {"change", "a", nil, false}, {"read", "a", r1, false}, {"read", "a", r1, true}}},
		{"another log's change keeps it", []step{{"read", "a", r1, false}, {"change", "b", nil, false}, {"read", "a", r1, true}}},
		{"another roster misses", []step{{"read", "a", r1, false}, {"read", "a", r2, false}, {"read", "a", r2, true}}},
		{"a change during a read drops it", []step{{"get", "a", r1, false}, {"change", "a", nil, false}, {"put", "a", r1, false}, {"get", "a", r1, false}}},
		{"a change before any read", []step{{"change", "a", nil, false}, {"read", "a", r1, false}, {"read", "a", r1, true}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newHeadsCache()
			var version uint64
			for i, st := range tc.steps {
				switch st.op {
				case "change":
					c.changed(st.origin)
				case "put":
					c.put(st.origin, st.roster, version, d, recs)
				case "get", "read":
					gd, grecs, v, ok := c.get(st.origin, st.roster)
					if ok != st.hit {
						t.Fatalf("step %d (%s %s): hit = %v, want %v", i, st.op, st.origin, ok, st.hit)
					}
					if ok && (gd != d || len(grecs) != 1) {
						t.Fatalf("step %d: cached %x %v", i, gd, grecs)
					}
					version = v
					if st.op == "read" && !ok {
						c.put(st.origin, st.roster, v, d, recs)
					}
				}
			}
		})
	}
}
