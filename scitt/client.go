package scitt

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Register submits a signed statement to the SCRAPI service at base
// (POST /entries) and returns the entry's Location and its receipt. It
// follows the asynchronous form (303/302 with Location, honouring
// Retry-After), retries 429/503 on the POST, and for a statement already
// registered gets the existing entry's receipt (201, same Location).
func Register(ctx context.Context, base *url.URL, stmt []byte) (string, []byte, error) {
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, err := http.NewRequestWithContext(ctx, "POST", base.JoinPath("entries").String(), bytes.NewReader(stmt))
	if err != nil {
		return "", nil, err
	}
	req.Header.Set("Content-Type", "application/cose")
	req.Header.Set("Accept", "application/cose")
	for {
		resp, err := c.Do(req)
		if err != nil {
			return "", nil, err
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if err != nil {
			return "", nil, err
		}
		loc := resp.Header.Get("Location")
		switch resp.StatusCode {
		case http.StatusOK, http.StatusCreated:
			return loc, body, nil
		case http.StatusSeeOther, http.StatusFound, http.StatusAccepted, http.StatusTooManyRequests, http.StatusServiceUnavailable:
			if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
				if req.Method != "POST" {
					break
				}
			} else {
				if loc == "" {
					return "", nil, fmt.Errorf("status %d without Location", resp.StatusCode)
				}
				u, err := base.Parse(loc)
				if err != nil {
					return "", nil, err
				}
				if req, err = http.NewRequestWithContext(ctx, "GET", u.String(), nil); err != nil {
					return "", nil, err
				}
				req.Header.Set("Accept", "application/cose")
			}
			wait := time.Second
			if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s >= 0 && s < 60 {
				wait = time.Duration(s) * time.Second
			}
			if req.Method == "POST" {
				req.Body = io.NopCloser(bytes.NewReader(stmt))
			}
			select {
			case <-ctx.Done():
				return "", nil, fmt.Errorf("waiting for the receipt: %w", ctx.Err())
			case <-time.After(wait):
			}
			continue
		}
		if resp.StatusCode == http.StatusBadRequest && loc != "" && req.Method == "POST" {
			// A service that answers a replay with 400 and the existing
			// entry's Location: fetch its receipt instead.
			u, err := base.Parse(loc)
			if err != nil {
				return "", nil, err
			}
			if req, err = http.NewRequestWithContext(ctx, "GET", u.String(), nil); err != nil {
				return "", nil, err
			}
			req.Header.Set("Accept", "application/cose")
			continue
		}
		if p, err := ParseProblem(body); err == nil && p.Title != "" {
			return "", nil, fmt.Errorf("registration refused (%d): %v", resp.StatusCode, p)
		}
		return "", nil, fmt.Errorf("registration refused: status %d", resp.StatusCode)
	}
}
