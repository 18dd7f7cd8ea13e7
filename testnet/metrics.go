package testnet

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// scrapeCounter sums the samples of a metric in a node's /metrics; name may
// carry a label set (`m{l="v"}`) to pick the one series written that way.
func scrapeCounter(ctx context.Context, baseURL, name string) (float64, error) {
	v, err := scrapeMetrics(ctx, baseURL, name)
	if err != nil {
		return 0, err
	}
	return v[0], nil
}

// scrapeMetrics is scrapeCounter for several names, from one GET.
func scrapeMetrics(ctx context.Context, baseURL string, names ...string) ([]float64, error) {
	resp, err := getMetrics(ctx, baseURL)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	sums := make([]float64, len(names))
	sc := bufio.NewScanner(io.LimitReader(resp.Body, 16<<20))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		for i, name := range names {
			if !strings.HasPrefix(line, name) || (len(line) > len(name) && line[len(name)] != '{' && line[len(name)] != ' ') {
				continue
			}
			f := strings.Fields(line)
			v, err := strconv.ParseFloat(f[len(f)-1], 64)
			if err != nil {
				return nil, fmt.Errorf("metric line %q: %w", line, err)
			}
			sums[i] += v
		}
	}
	return sums, sc.Err()
}

// getMetrics fetches a member's /metrics; the caller closes the body.
func getMetrics(ctx context.Context, baseURL string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, baseURL+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	return resp, nil
}
