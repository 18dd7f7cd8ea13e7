package feed

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Query limits of GET /v1/evidence.
const (
	DefaultEvidenceLimit = 1000
	MaxEvidenceLimit     = 1000
)

// TimeSource is implemented by a Source that can select checkpoints by the
// time this node first saw them (the node does, over its store's time
// index). Without it the feed answers queries by time with 501.
type TimeSource interface {
	// CheckpointsByTime returns up to q.Limit signed notes of origin, one
	// per checkpoint with every cosignature held merged into it, first
	// seen in [q.Since, q.Until) (a zero bound bounds nothing), oldest
	// first, continuing after q.Cursor ("" for the first page), and the
	// cursor of the next page ("" on the last). A cursor that does not
	// decode is an error wrapping ErrBadCursor.
	CheckpointsByTime(ctx context.Context, origin string, q TimeQuery) (TimePage, error)
}

// TimeQuery selects checkpoints by first sighting.
type TimeQuery struct {
	Since, Until time.Time
	Cursor       string
	Limit        int
}

// TimePage is one page of CheckpointsByTime.
type TimePage struct {
	Notes []TimedNote
	Next  string
}

// TimedNote is a stored checkpoint note and when this node first saw it.
type TimedNote struct {
	Note      []byte
	FirstSeen time.Time
}

// ErrBadCursor is wrapped by a TimeSource for a cursor it did not issue.
var ErrBadCursor = errors.New("bad cursor")

// params is a parsed, validated query string: every parameter must be one
// the endpoint knows and appear at most once. Every error of its methods is
// the client's (400) and starts with "bad <parameter>" or names the
// parameter.
type params struct {
	v url.Values
}

// parseParams parses raw, refusing parameters not in allowed and repeated ones.
func parseParams(raw string, allowed ...string) (params, error) {
	v, err := url.ParseQuery(raw)
	if err != nil {
		return params{}, fmt.Errorf("bad query string: %v", err)
	}
	keys := make([]string, 0, len(v))
	for k := range v {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if !slices.Contains(allowed, k) {
			return params{}, fmt.Errorf("unknown query parameter %q (this endpoint takes %s)", k, strings.Join(allowed, ", "))
		}
		if len(v[k]) > 1 {
			return params{}, fmt.Errorf("query parameter %q given %d times", k, len(v[k]))
		}
	}
	return params{v: v}, nil
}

func (p params) has(k string) bool { return p.v.Has(k) }
func (p params) get(k string) string {
	return p.v.Get(k)
}

// time parses an RFC 3339 parameter; absent gives the zero time.
func (p params) time(k string) (time.Time, error) {
	if !p.has(k) {
		return time.Time{}, nil
	}
	s := p.get(k)
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("bad %s: %q is not an RFC 3339 time (e.g. 2026-06-30T12:00:00Z)", k, s)
	}
	return t.UTC(), nil
}

// period parses since and until and checks that since is before until.
func (p params) period() (since, until time.Time, err error) {
	if since, err = p.time("since"); err != nil {
		return
	}
	if until, err = p.time("until"); err != nil {
		return
	}
	if !since.IsZero() && !until.IsZero() && !since.Before(until) {
		err = fmt.Errorf("bad period: since (%s) must be before until (%s)", since.Format(time.RFC3339), until.Format(time.RFC3339))
	}
	return
}

// limit parses limit in [1, maxLimit]; absent gives def.
func (p params) limit(def, maxLimit int) (int, error) {
	if !p.has("limit") {
		return def, nil
	}
	n, err := parseCount(p.get("limit"))
	if err == nil && (n < 1 || n > maxLimit) {
		err = fmt.Errorf("%d is not between 1 and %d", n, maxLimit)
	}
	if err != nil {
		return 0, fmt.Errorf("bad limit: %v", err)
	}
	return n, nil
}

// nonEmpty returns a parameter that, when given, must not be empty.
func (p params) nonEmpty(k string) (string, error) {
	if p.has(k) && p.get(k) == "" {
		return "", fmt.Errorf("bad %s: empty", k)
	}
	return p.get(k), nil
}

// nextLink is a Link header value pointing at path with q.
func nextLink(path string, q url.Values) string {
	return "<" + path + "?" + q.Encode() + `>; rel="next"`
}
