package roster

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// IsURL reports whether a log-list location is an http(s) URL rather than a
// file path.
func IsURL(loc string) bool {
	return strings.HasPrefix(loc, "http://") || strings.HasPrefix(loc, "https://")
}

// FetchLogList reads and parses a logs/v0 list from a file path or an
// http(s) URL, at most MaxFileSize bytes. A nil client means
// http.DefaultClient; ctx bounds the request.
func FetchLogList(ctx context.Context, client *http.Client, loc string) ([]*Log, error) {
	var data []byte
	var err error
	if IsURL(loc) {
		data, err = getList(ctx, client, loc)
	} else {
		data, err = readFile(loc)
	}
	if err != nil {
		return nil, err
	}
	logs, err := ParseLogList(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", loc, err)
	}
	return logs, nil
}

func getList(ctx context.Context, client *http.Client, u string) ([]byte, error) {
	if client == nil {
		client = http.DefaultClient
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("fetching log list %s: %w", u, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetching log list: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetching log list %s: %s", u, resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("fetching log list %s: %w", u, err)
	}
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("fetching log list %s: larger than %d bytes", u, MaxFileSize)
	}
	return data, nil
}
