package gossip

import "slices"

// cosignerSet is a set of roster witness names, sorted, for validator.known:
// one slice of string headers where a map[string]bool took about 200 bytes
// more per checkpoint (its header and first group), at 16,384 checkpoints
// 3 MB of a node's live heap (TestKnownCheckpointsBound). A set is never
// changed in place: known hands it to readers outside its lock.
type cosignerSet []string

// has reports whether name is in s.
func (s cosignerSet) has(name string) bool {
	_, ok := slices.BinarySearch(s, name)
	return ok
}

// with returns s and the names of add, and whether any of them was new;
// s itself when none was.
func (s cosignerSet) with(add map[string]bool) (cosignerSet, bool) {
	n := 0
	for w := range add {
		if !s.has(w) {
			n++
		}
	}
	if n == 0 {
		return s, false
	}
	next := make(cosignerSet, len(s), len(s)+n)
	copy(next, s)
	for w := range add {
		if !s.has(w) {
			next = append(next, w)
		}
	}
	slices.Sort(next)
	return next, true
}
