package gossip

import (
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
)

// refLRU is the obvious model of lru: keys in recency order, most recent
// first.
type refLRU struct {
	max  int
	keys []int
	vals map[int]int
}

func (r *refLRU) touch(k int) {
	r.keys = slices.DeleteFunc(r.keys, func(x int) bool { return x == k })
	r.keys = slices.Insert(r.keys, 0, k)
}

func (r *refLRU) drop(k int) {
	r.keys = slices.DeleteFunc(r.keys, func(x int) bool { return x == k })
	delete(r.vals, k)
}

// TestLRUMatchesModel runs random operations on lru and on the model and
// compares every answer, then the recency order through eviction.
func TestLRUMatchesModel(t *testing.T) {
	for _, max := range []int{1, 2, 3, 8, 50} {
		rng := rand.New(rand.NewPCG(uint64(max), 7))
		c := newLRU[int, int](max)
		ref := &refLRU{max: max, vals: map[int]int{}}
		for step := range 5000 {
			k := rng.IntN(3 * max)
			switch op := rng.IntN(10); {
			case op < 4:
				v := step
				got := c.update(k, func(old int, ok bool) int {
					if want, had := ref.vals[k]; ok != had || (ok && old != want) {
						t.Fatalf("max %d step %d: update(%d) saw (%d, %v), model (%d, %v)", max, step, k, old, ok, want, had)
					}
					return v
				})
				if got != v {
					t.Fatalf("update returned %d, want %d", got, v)
				}
				ref.vals[k] = v
				ref.touch(k)
				if len(ref.keys) > max {
					ref.drop(ref.keys[len(ref.keys)-1])
				}
			case op < 7:
				v, ok := c.get(k)
				want, had := ref.vals[k]
				if ok != had || v != want {
					t.Fatalf("max %d step %d: get(%d) = (%d, %v), model (%d, %v)", max, step, k, v, ok, want, had)
				}
				if had {
					ref.touch(k)
				}
			case op < 9:
				v, ok := c.take(k)
				want, had := ref.vals[k]
				if ok != had || v != want {
					t.Fatalf("max %d step %d: take(%d) = (%d, %v), model (%d, %v)", max, step, k, v, ok, want, had)
				}
				ref.drop(k)
			default:
				c.remove(k)
				ref.drop(k)
			}
			if c.len() != len(ref.keys) {
				t.Fatalf("max %d step %d: len %d, model %d", max, step, c.len(), len(ref.keys))
			}
			if len(c.ents) > max {
				t.Fatalf("max %d: %d slots", max, len(c.ents))
			}
		}
		// Walk the recency chain both ways against the model.
		var fwd, back []int
		for i := c.head; i != nilIdx; i = c.ents[i].next {
			fwd = append(fwd, c.ents[i].k)
		}
		for i := c.tail; i != nilIdx; i = c.ents[i].prev {
			back = append(back, c.ents[i].k)
		}
		slices.Reverse(back)
		if !slices.Equal(fwd, ref.keys) || !slices.Equal(back, ref.keys) {
			t.Fatalf("max %d: order %v / %v, model %v", max, fwd, back, ref.keys)
		}
	}
}

// TestLRUFullCacheDoesNotAllocate: once full, inserting a new key reuses the
// evicted slot.
func TestLRUFullCacheDoesNotAllocate(t *testing.T) {
	c := newLRU[[32]byte, struct{}](1024)
	var k [32]byte
	n := uint32(0)
	put := func() {
		n++
		k[0], k[1], k[2], k[3] = byte(n), byte(n>>8), byte(n>>16), byte(n>>24)
		c.update(k, func(struct{}, bool) struct{} { return struct{}{} })
	}
	for range 4096 {
		put()
	}
	if a := testing.AllocsPerRun(1000, put); a != 0 {
		t.Errorf("an insert into a full cache allocates %.1f times", a)
	}
	if c.len() != 1024 {
		t.Errorf("len %d, want 1024", c.len())
	}
}

// TestLRUMemoryPerEntry bounds the heap a full signature cache holds (its
// default size, 32-byte keys): the slots, the index map, nothing per entry
// besides.
func TestLRUMemoryPerEntry(t *testing.T) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	c := newLRU[[32]byte, struct{}](defaultSigCacheSize)
	var k [32]byte
	for i := range 2 * defaultSigCacheSize {
		k[0], k[1], k[2] = byte(i), byte(i>>8), byte(i>>16)
		c.update(k, func(struct{}, bool) struct{} { return struct{}{} })
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	per := float64(after.HeapAlloc-before.HeapAlloc) / defaultSigCacheSize
	t.Logf("%.0f bytes per entry", per)
	// 40 bytes of slot, about 75 of map at its load factor (120 under
	// the race detector); the container/list version took 192.
	if per > 140 {
		t.Errorf("%.0f bytes per entry, want at most 140", per)
	}
	runtime.KeepAlive(c)
}
