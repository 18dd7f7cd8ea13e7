package feed_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/vigilnet/vigil/feed"
	"github.com/vigilnet/vigil/tlog"
)

func sizesOf(h feed.HistoryResponse) string {
	var s []string
	for _, c := range h.Checkpoints {
		s = append(s, fmt.Sprintf("%d/%d", c.Size, len(c.Cosigners)))
	}
	return strings.Join(s, " ")
}

func TestHistoryPagination(t *testing.T) {
	e := newEnv(t, envOptions{logs: 1, witnesses: 2})
	s := e.subscribe("")
	l := e.logs[0]
	// Sizes 1..12, each cosigned by w0; the even ones also by w1.
	for i := 1; i <= 12; i++ {
		l.AppendN(1, "a")
		e.cosign(0, 0)
		if i%2 == 0 {
			e.cosign(0, 1)
		}
	}
	e.waitServed(s, 0, 12, 2)
	// A split view at size 13: two roots, both log-signed, no cosignatures.
	fork, err := l.Fork(12)
	if err != nil {
		t.Fatal(err)
	}
	l.AppendN(1, "main")
	fork.AppendN(1, "fork")
	a, _ := l.Checkpoint()
	b, _ := fork.Checkpoint()
	e.src.addNote(t, a)
	e.src.addNote(t, b)
	e.waitServed(s, 0, 13, 0)

	id := tlog.LogID(l.Origin())
	tests := []struct {
		query string
		sizes string
		next  uint64 // 0: no next page
	}{
		{"", "1/1 2/2 3/1 4/2 5/1 6/2 7/1 8/2 9/1 10/2 11/1 12/2 13/0 13/0", 0},
		{"?limit=5", "1/1 2/2 3/1 4/2 5/1", 6},
		{"?from=6&limit=5", "6/2 7/1 8/2 9/1 10/2", 11},
		{"?from=11&limit=3", "11/1 12/2 13/0 13/0", 0},
		// The last page ends at a size with two roots: never split.
		{"?from=11&limit=2", "11/1 12/2", 13},
		{"?from=13&limit=1", "13/0 13/0", 0},
		{"?from=12&limit=1", "12/2", 13},
		{"?from=0&limit=1", "1/1", 2},
		{"?from=14", "", 0},
		{"?from=18446744073709551615", "", 0},
		{"?limit=1000", "1/1 2/2 3/1 4/2 5/1 6/2 7/1 8/2 9/1 10/2 11/1 12/2 13/0 13/0", 0},
	}
	for _, tc := range tests {
		t.Run(tc.query, func(t *testing.T) {
			code, hdr, body := e.get("/v1/logs/" + id + "/checkpoints" + tc.query)
			if code != 200 {
				t.Fatalf("status %d: %s", code, body)
			}
			var h feed.HistoryResponse
			if err := json.Unmarshal([]byte(body), &h); err != nil {
				t.Fatal(err)
			}
			if got := sizesOf(h); got != tc.sizes {
				t.Errorf("sizes %q, want %q", got, tc.sizes)
			}
			switch {
			case tc.next == 0 && (h.Next != nil || hdr.Get("Link") != ""):
				t.Errorf("unexpected next page %v, Link %q", *h.Next, hdr.Get("Link"))
			case tc.next != 0 && (h.Next == nil || *h.Next != tc.next || !strings.Contains(hdr.Get("Link"), fmt.Sprintf("from=%d", tc.next))):
				t.Errorf("next %v, Link %q, want %d", h.Next, hdr.Get("Link"), tc.next)
			}
			for _, c := range h.Checkpoints {
				cp, got := e.openServed(0, c.Note)
				if cp.Size != c.Size || len(got) != len(c.Cosigners) {
					t.Errorf("entry %d: note has size %d and %d cosignatures, summary %d", c.Size, cp.Size, len(got), len(c.Cosigners))
				}
			}
		})
	}
	bad := []struct{ query, reason string }{
		{"?from=-1", "bad from"},
		{"?from=x", "bad from"},
		{"?from=", "bad from"},
		{"?from=007", "bad from"},
		{"?from=18446744073709551616", "bad from"},
		{"?limit=0", "bad limit"},
		{"?limit=1001", "bad limit"},
		{"?limit=-5", "bad limit"},
		{"?limit=ten", "bad limit"},
		{"?limit=", "bad limit"},
	}
	for _, tc := range bad {
		t.Run("bad"+tc.query, func(t *testing.T) {
			code, hdr, body := e.get("/v1/logs/" + id + "/checkpoints" + tc.query)
			var ae struct{ Error string }
			json.Unmarshal([]byte(body), &ae)
			if code != 400 || !strings.HasPrefix(ae.Error, tc.reason) || hdr.Get("Content-Type") != "application/json" {
				t.Errorf("status %d %q, want 400 with %q", code, body, tc.reason)
			}
		})
	}
	if code, _, body := e.get("/v1/logs/" + tlog.LogID("nope") + "/checkpoints"); code != 404 || !strings.Contains(body, "unknown log") {
		t.Errorf("unknown log: %d %s", code, body)
	}
}
