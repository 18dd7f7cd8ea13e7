package node

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/vigilnet/vigil/feed"
	vpb "github.com/vigilnet/vigil/proto"
	"github.com/vigilnet/vigil/store"
	"github.com/vigilnet/vigil/testnet/scriptlog"
)

// countingSource is the real store, counting the records read one by one.
type countingSource struct {
	*store.DB
	reads int
}

func (c *countingSource) Evidence(ctx context.Context, id string) (store.EvidenceRecord, error) {
	c.reads++
	return c.DB.Evidence(ctx, id)
}

// splitViewData is an encoded same-size split view of a fresh log at size.
func splitViewData(tb testing.TB, size uint64) []byte {
	tb.Helper()
	lg, err := scriptlog.New("example.com/evidencelist")
	if err != nil {
		tb.Fatal(err)
	}
	lg.AppendN(int(size-1), "shared")
	fork, err := lg.Fork(size - 1)
	if err != nil {
		tb.Fatal(err)
	}
	lg.AppendN(1, "A")
	fork.AppendN(1, "B")
	a, _ := lg.Checkpoint()
	b, _ := fork.Checkpoint()
	data, err := vpb.MarshalEvidence(&vpb.Evidence{Kind: vpb.Kind_KIND_LOG_EQUIVOCATION_SAME_SIZE, CheckpointA: a, CheckpointB: b, DetectedUnixMs: 1700000000000})
	if err != nil {
		tb.Fatal(err)
	}
	return data
}

// putEvidence stores n records, one a second from base, IDs ev<first>...
func putEvidence(tb testing.TB, db *store.DB, first, n int, base time.Time, data []byte) {
	tb.Helper()
	for i := first; i < first+n; i++ {
		rec := store.EvidenceRecord{ID: fmt.Sprintf("ev%05d", i), Kind: "log-equivocation-same-size", Origin: "example.com/evidencelist", Statement: "split view", Stored: base.Add(time.Duration(i) * time.Second), Data: data}
		if _, err := db.PutEvidence(context.Background(), rec); err != nil {
			tb.Fatal(err)
		}
	}
}

func ids(list []feed.Evidence) []string {
	var out []string
	for _, e := range list {
		out = append(out, e.ID)
	}
	return out
}

func TestEvidenceList(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	src := &countingSource{DB: db}
	base := time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)
	data := splitViewData(t, 6)
	var l evidenceList

	if list, err := l.list(ctx, src, 3); err != nil || len(list) != 0 {
		t.Fatalf("no evidence: %v, %v", list, err)
	}
	putEvidence(t, db, 0, 5, base, data)
	list, err := l.list(ctx, src, 3)
	if err != nil {
		t.Fatal(err)
	}
	// The newest three, newest first, each summarised as before the cache.
	if got, want := ids(list), []string{"ev00004", "ev00003", "ev00002"}; !slices.Equal(got, want) {
		t.Fatalf("listed %v, want %v", got, want)
	}
	rec, err := db.Evidence(ctx, "ev00004")
	if err != nil {
		t.Fatal(err)
	}
	if want := evidenceInfo(rec); fmt.Sprint(list[0]) != fmt.Sprint(want) || fmt.Sprint(want.Sizes) != "[6 6]" {
		t.Fatalf("summary %+v, want %+v", list[0], want)
	}
	if src.reads != 3 {
		t.Fatalf("%d records read for 3 new ones", src.reads)
	}

	// Listing again reads no record; new evidence reads only itself.
	src.reads = 0
	if again, err := l.list(ctx, src, 3); err != nil || src.reads != 0 || !slices.Equal(ids(again), ids(list)) {
		t.Fatalf("second listing: %v, %d reads, %v", ids(again), src.reads, err)
	}
	putEvidence(t, db, 5, 1, base, data)
	if list, err = l.list(ctx, src, 3); err != nil || src.reads != 1 {
		t.Fatalf("one new record: %d reads, %v", src.reads, err)
	}
	if got, want := ids(list), []string{"ev00005", "ev00004", "ev00003"}; !slices.Equal(got, want) {
		t.Fatalf("listed %v, want %v", got, want)
	}
	// What fell off the list is forgotten.
	if len(l.summary) != 3 {
		t.Fatalf("%d summaries kept for a list of 3", len(l.summary))
	}
}

// BenchmarkEvidenceList is one feed evidence refresh (every 5 s, every new
// piece of evidence, every GET /v1/evidence) with 1,000 records stored:
// "read-all" reads and summarises each record, as the feed did before
// evidenceList; "cached" is evidenceList after its first listing.
func BenchmarkEvidenceList(b *testing.B) {
	ctx := context.Background()
	db, err := store.Open(b.TempDir(), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	putEvidence(b, db, 0, 1000, time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC), splitViewData(b, 1000))
	b.Run("read-all", func(b *testing.B) {
		for b.Loop() {
			recs, err := db.ListEvidence(ctx, "", maxEvidenceListed)
			if err != nil || len(recs) != 1000 {
				b.Fatal(len(recs), err)
			}
			for i := len(recs) - 1; i >= 0; i-- {
				evidenceInfo(recs[i])
			}
		}
	})
	b.Run("cached", func(b *testing.B) {
		var l evidenceList
		for b.Loop() {
			list, err := l.list(ctx, db, maxEvidenceListed)
			if err != nil || len(list) != 1000 {
				b.Fatal(len(list), err)
			}
		}
	})
}
