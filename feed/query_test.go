package feed_test

import (
	"encoding/json"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/vigilnet/vigil/feed"
	"github.com/vigilnet/vigil/tlog"
)

var linkNext = regexp.MustCompile(`^<([^>]+)>; rel="next"$`)

// follow reads every page of path by its Link headers and returns the
// bodies.
func (e *exportEnv) follow(path string) []string {
	e.t.Helper()
	var bodies []string
	for range 50 {
		code, hdr, body := e.get(path)
		if code != 200 {
			e.t.Fatalf("%s: status %d: %s", path, code, body)
		}
		bodies = append(bodies, body)
		m := linkNext.FindStringSubmatch(hdr.Get("Link"))
		if m == nil {
			if hdr.Get("Link") != "" {
				e.t.Fatalf("malformed Link %q", hdr.Get("Link"))
			}
			return bodies
		}
		path = m[1]
	}
	e.t.Fatal("paging does not end")
	return nil
}

func TestHistoryByTime(t *testing.T) {
	e := quarter(t)
	id := tlog.LogID(e.log.Origin())
	base := "/v1/logs/" + id + "/checkpoints"
	cases := []struct {
		query string
		sizes string
	}{
		{"?since=2026-06-30T12:00:00Z&limit=2", "5 7 9 11 13 15"},
		{"?since=2026-07-01T00:00:00Z&until=2026-08-29T12:00:00Z", "7 9 11"},
		{"?until=2026-06-30T12:00:00Z", "3"},
		{"?since=2026-07-01T00:00:00Z&witness=w2", "7 9"},
		{"?since=2026-07-01T00:00:00Z&witness=w2&limit=1", "7 9"},
		{"?since=2027-01-01T00:00:00Z", ""},
	}
	for _, tc := range cases {
		t.Run(tc.query, func(t *testing.T) {
			var sizes []string
			for _, body := range e.follow(base + tc.query) {
				var h feed.HistoryResponse
				if err := json.Unmarshal([]byte(body), &h); err != nil {
					t.Fatal(err)
				}
				for _, c := range h.Checkpoints {
					if c.FirstSeen == nil {
						t.Errorf("size %d has no first_seen", c.Size)
					}
					sizes = append(sizes, itoa(c.Size))
				}
			}
			if got := strings.Join(sizes, " "); got != tc.sizes {
				t.Errorf("sizes %q, want %q", got, tc.sizes)
			}
		})
	}
	for _, tc := range []struct{ query, reason string }{
		{"?since=2026-06-30", "bad since"},
		{"?from=3&since=2026-06-30T00:00:00Z", "bad from"},
		{"?cursor=zz", "bad cursor"},
		{"?witness=w9", "bad witness"},
		{"?witness=", "bad witness"},
		{"?k=1", `unknown query parameter "k"`},
		{"?limit=1001&since=2026-06-30T00:00:00Z", "bad limit"},
	} {
		code, _, body := e.get(base + tc.query)
		var ae struct{ Error string }
		json.Unmarshal([]byte(body), &ae)
		if code != 400 || !strings.HasPrefix(ae.Error, tc.reason) {
			t.Errorf("%s: status %d %q, want 400 starting %q", tc.query, code, body, tc.reason)
		}
	}
}

func TestEvidenceQuery(t *testing.T) {
	e := quarter(t)
	for i, w := range []string{"w0", "w1", "w2"} {
		ev := feed.Evidence{ID: "wit" + itoa(uint64(i)), Kind: "witness-equivocation", Origin: "example.com/other", Witnesses: []string{w}}
		ev.Detected = t0.AddDate(0, 0, 50+i)
		ev.Stored = ev.Detected
		e.src.addEvidence(ev, []byte("f"))
	}
	ids := func(path string) string {
		var out []string
		for _, body := range e.follow(path) {
			var l feed.EvidenceList
			if err := json.Unmarshal([]byte(body), &l); err != nil {
				t.Fatal(err)
			}
			for _, ev := range l.Evidence {
				out = append(out, ev.ID)
			}
		}
		return strings.Join(out, " ")
	}
	logID := tlog.LogID(e.log.Origin())
	for _, tc := range []struct{ query, want string }{
		{"", "wit2 wit1 wit0 ev0 ev1"},
		{"?limit=2", "wit2 wit1 wit0 ev0 ev1"},
		{"?since=2026-08-01T00:00:00Z", "wit2 wit1 wit0 ev1"},
		{"?since=2026-08-01T00:00:00Z&until=2026-08-20T12:00:00Z", "wit0 ev1"},
		{"?log=" + logID, "ev0 ev1"},
		{"?log=" + url.QueryEscape("example.com/other") + "&limit=1", "wit2 wit1 wit0"},
		{"?kind=log-equivocation", "ev0"},
		{"?witness=w1", "wit1 ev1"},
		{"?witness=w1&kind=witness-equivocation&limit=1", "wit1 ev1"},
	} {
		if got := ids("/v1/evidence" + tc.query); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.query, got, tc.want)
		}
	}
	_, hdr, _ := e.get("/v1/evidence?limit=2&kind=witness-equivocation")
	if m := linkNext.FindStringSubmatch(hdr.Get("Link")); m == nil || !strings.Contains(m[1], "after=wit1") || !strings.Contains(m[1], "kind=witness-equivocation") || !strings.Contains(m[1], "limit=2") {
		t.Errorf("Link %q does not carry the cursor and the filters", hdr.Get("Link"))
	}
	for _, tc := range []struct{ query, reason string }{
		{"?limit=0", "bad limit"},
		{"?limit=1001", "bad limit"},
		{"?after=nope", "bad after"},
		{"?after=../x", "bad after"},
		{"?until=soon", "bad until"},
		{"?origin=x", `unknown query parameter "origin"`},
		{"?kind=", "bad kind"},
	} {
		code, _, body := e.get("/v1/evidence" + tc.query)
		var ae struct{ Error string }
		json.Unmarshal([]byte(body), &ae)
		if code != 400 || !strings.HasPrefix(ae.Error, tc.reason) {
			t.Errorf("%s: status %d %q, want 400 starting %q", tc.query, code, body, tc.reason)
		}
	}
}

func itoa(n uint64) string {
	b, _ := json.Marshal(n)
	return string(b)
}
