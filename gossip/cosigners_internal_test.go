package gossip

import (
	"slices"
	"testing"
)

func TestCosignerSet(t *testing.T) {
	for _, tc := range []struct {
		name  string
		old   cosignerSet
		add   map[string]bool
		want  cosignerSet
		added bool
	}{
		{"empty plus none", nil, nil, nil, false},
		{"empty plus one", nil, map[string]bool{"w2": true}, cosignerSet{"w2"}, true},
		{"nothing new", cosignerSet{"w1", "w3"}, map[string]bool{"w3": true}, cosignerSet{"w1", "w3"}, false},
		{"one new, one old", cosignerSet{"w1", "w3"}, map[string]bool{"w2": true, "w3": true}, cosignerSet{"w1", "w2", "w3"}, true},
		{"all new, sorted", cosignerSet{"m"}, map[string]bool{"z": true, "a": true}, cosignerSet{"a", "m", "z"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := slices.Clone(tc.old)
			got, added := tc.old.with(tc.add)
			if !slices.Equal(got, tc.want) || added != tc.added {
				t.Fatalf("with = %q, %v; want %q, %v", got, added, tc.want, tc.added)
			}
			if !slices.Equal(tc.old, before) {
				t.Fatalf("with changed the set it was called on: %q, was %q", tc.old, before)
			}
			for _, w := range tc.want {
				if !got.has(w) {
					t.Errorf("has(%q) false", w)
				}
			}
			if got.has("absent") {
				t.Error("has(absent) true")
			}
		})
	}
}
