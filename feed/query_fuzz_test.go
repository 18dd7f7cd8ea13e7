package feed_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/vigilnet/vigil/tlog"
)

// FuzzQueryParams sends arbitrary query strings to the endpoints that
// parse them: every answer is 200, or a 400 in the JSON error shape.
func FuzzQueryParams(f *testing.F) {
	for _, seed := range []string{
		"", "since=2026-06-30T12:00:00Z", "limit=2&after=ev1", "log=%zz", "a=1&a=2",
		"since=2026-07-01T00:00:00Z&until=2026-06-01T00:00:00Z", "format=csv", "cursor=00ff", "from=3&since=x", ";",
	} {
		f.Add(seed)
	}
	e := quarter(f)
	f.Fuzz(func(t *testing.T, raw string) {
		for _, path := range []string{"/v1/evidence", "/v1/export", "/v1/logs/" + tlog.LogID(e.log.Origin()) + "/checkpoints"} {
			req := httptest.NewRequest("GET", "http://node"+path, nil)
			req.URL.RawQuery = raw
			w := httptest.NewRecorder()
			e.handler.ServeHTTP(w, req)
			switch w.Code {
			case http.StatusOK:
			case http.StatusBadRequest:
				var ae struct {
					Error  string
					Status int
				}
				if err := json.Unmarshal(w.Body.Bytes(), &ae); err != nil || ae.Status != 400 || ae.Error == "" {
					t.Fatalf("%s?%s: 400 without the JSON error shape: %q", path, raw, w.Body.String())
				}
			default:
				t.Fatalf("%s?%s: status %d: %s", path, raw, w.Code, strings.TrimSpace(w.Body.String()))
			}
		}
	})
}
