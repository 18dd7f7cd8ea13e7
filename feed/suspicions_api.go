package feed

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
)

// Query limits of GET /v1/suspicions.
const (
	DefaultSuspicionLimit = 100
	MaxSuspicionLimit     = 1000
)

// SuspicionList is the body of GET /v1/suspicions.
type SuspicionList struct {
	// Suspicions are ordered by log ID, then size, then root.
	Suspicions []Suspicion `json:"suspicions"`
	// Next is the after of the next page, absent on the last page.
	Next string `json:"next,omitempty"`
}

// suspicionQuery is a parsed GET /v1/suspicions query.
type suspicionQuery struct {
	open  *bool // nil: both
	after *suspicionKey
	limit int
}

// parseSuspicionQuery accepts open=true|false, after=ID and limit=N, each
// at most once, and nothing else.
func parseSuspicionQuery(raw string) (suspicionQuery, error) {
	q := suspicionQuery{limit: DefaultSuspicionLimit}
	vals, err := url.ParseQuery(raw)
	if err != nil {
		return q, fmt.Errorf("bad query: %v", err)
	}
	keys := make([]string, 0, len(vals))
	for k := range vals {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		v := vals[k]
		if len(v) > 1 {
			return q, fmt.Errorf("bad %s: given %d times", k, len(v))
		}
		switch k {
		case "open":
			var b bool
			switch v[0] {
			case "true":
				b = true
			case "false":
			default:
				return q, fmt.Errorf("bad open: %q is not true or false", v[0])
			}
			q.open = &b
		case "after":
			key, ok := parseSuspicionID(v[0])
			if !ok {
				return q, fmt.Errorf("bad after: %q is not a suspicion ID (<log_id>-<size>-<hex root>)", v[0])
			}
			q.after = &key
		case "limit":
			n, err := parseCount(v[0])
			if err == nil && (n < 1 || n > MaxSuspicionLimit) {
				err = fmt.Errorf("%d is not between 1 and %d", n, MaxSuspicionLimit)
			}
			if err != nil {
				return q, fmt.Errorf("bad limit: %v", err)
			}
			q.limit = n
		default:
			return q, fmt.Errorf("unknown parameter %q: want open, after or limit", k)
		}
	}
	return q, nil
}

func (f *Feed) serveSuspicions(w http.ResponseWriter, r *http.Request) {
	q, err := parseSuspicionQuery(r.URL.RawQuery)
	if err != nil {
		f.fail(w, r, http.StatusBadRequest, err)
		return
	}
	list, err := f.readSuspicions(r.Context())
	if err != nil {
		f.log.Warn("feed: listing suspicions", "err", err)
		f.fail(w, r, http.StatusServiceUnavailable, errors.New("reading suspicions failed; try again"))
		return
	}
	resp := SuspicionList{Suspicions: []Suspicion{}}
	for _, s := range list {
		if q.open != nil && s.Open != *q.open {
			continue
		}
		if q.after != nil && keyOf(s).compare(*q.after) <= 0 {
			continue
		}
		if len(resp.Suspicions) == q.limit {
			resp.Next = resp.Suspicions[q.limit-1].ID
			break
		}
		resp.Suspicions = append(resp.Suspicions, s)
	}
	if resp.Next != "" {
		v := url.Values{"after": {resp.Next}, "limit": {fmt.Sprint(q.limit)}}
		if q.open != nil {
			v.Set("open", fmt.Sprint(*q.open))
		}
		w.Header().Set("Link", "</v1/suspicions?"+v.Encode()+`>; rel="next"`)
	}
	f.writeJSON(w, r, listMaxAge, true, resp)
}
