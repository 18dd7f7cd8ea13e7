package connflood

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Probe sends one request from 127.0.0.1 on a fresh connection, as a
// well-behaved client arriving during a flood does, and returns its status,
// body and how long it took from dialling to the end of the response.
func Probe(ctx context.Context, method, url string, body []byte) (int, []byte, time.Duration, error) {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}, Timeout: 10 * time.Second}
	client := &http.Client{
		Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true},
		Timeout:   10 * time.Second,
	}
	defer client.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, 0, err
	}
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, time.Since(start), err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, time.Since(start), err
}

// Metrics reads a node's /metrics and returns the sum of each metric
// family's samples, keyed by the family name, and each sample keyed by its
// whole name with labels.
func Metrics(ctx context.Context, base string) (map[string]float64, error) {
	code, body, _, err := Probe(ctx, http.MethodGet, base+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: status %d", code)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		sample := line[:i]
		out[sample] = v
		if j := strings.IndexByte(sample, '{'); j >= 0 {
			out[sample[:j]] += v
		}
	}
	return out, sc.Err()
}
