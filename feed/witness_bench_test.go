package feed_test

import (
	"testing"
)

// BenchmarkCosignaturesSeen measures the witness timeline's cost per
// cosignature on the hot path: a note as a witness's AfterCosign or a
// gossip merge hands it over (log signature plus one cosignature/v1 line),
// parsed, matched to the roster and folded in.
func BenchmarkCosignaturesSeen(b *testing.B) {
	e := newEnv(b, envOptions{logs: 1, witnesses: 3, noRun: true})
	l := e.logs[0]
	const sizes = 200
	for range sizes {
		l.AppendN(1, "a")
		e.cosign(0, 0, 1, 2)
	}
	var notes [][]byte
	for size := uint64(1); size <= sizes; size++ {
		notes = append(notes, e.src.notes[l.Origin()][size]...)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		e.feed.CosignaturesSeen(l.Origin(), nil, notes[i%len(notes)])
	}
}
