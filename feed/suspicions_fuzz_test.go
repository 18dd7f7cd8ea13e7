package feed

import (
	"encoding/base64"
	"encoding/hex"
	"net/url"
	"testing"
)

// FuzzSuspicionQuery: the query parser of GET /v1/suspicions never panics,
// accepts only bounded limits and well-formed IDs, and an accepted after
// is exactly an ID the feed makes.
func FuzzSuspicionQuery(f *testing.F) {
	id := suspicionID(
		"0d4b5c6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7081920", 1300,
		base64.StdEncoding.EncodeToString(make([]byte, 32)))
	for _, s := range []string{"", "open=true", "open=false&limit=1000", "after=" + id, "limit=0", "open=yes", "x=1", "open=true&open=true", "after=%zz", "limit=01"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := parseSuspicionQuery(raw)
		if err != nil {
			return
		}
		if q.limit < 1 || q.limit > MaxSuspicionLimit {
			t.Fatalf("accepted limit %d", q.limit)
		}
		vals, _ := url.ParseQuery(raw)
		for k := range vals {
			if k != "open" && k != "after" && k != "limit" {
				t.Fatalf("accepted parameter %q", k)
			}
		}
		if q.after == nil {
			return
		}
		root, err := hexRoot(q.after.root)
		if err != nil {
			t.Fatalf("accepted root %q: %v", q.after.root, err)
		}
		if got := suspicionID(q.after.logID, q.after.size, root); got != vals.Get("after") {
			t.Fatalf("after %q is not the ID %q the feed makes", vals.Get("after"), got)
		}
	})
}

// hexRoot turns a hex root back into the base64 the API shows.
func hexRoot(h string) (string, error) {
	b, err := hex.DecodeString(h)
	return base64.StdEncoding.EncodeToString(b), err
}
