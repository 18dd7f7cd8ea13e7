package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/vigilnet/vigil/feed"
)

// defaultNodeURL is where a node listens with no configuration.
const defaultNodeURL = "http://127.0.0.1:7380"

// feedClient reads a node's feed.
type feedClient struct {
	base  string
	token string
	http  *http.Client
}

func newFeedClient(base string) *feedClient {
	return &feedClient{
		base: strings.TrimSuffix(base, "/"),
		// VIGIL_TOKEN is the bearer token of a private feed.
		token: os.Getenv("VIGIL_TOKEN"),
		http:  &http.Client{Timeout: 30 * time.Second},
	}
}

// get returns the body of a 200 response, or an error with the server's reason.
func (c *feedClient) get(ctx context.Context, path string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", c.base+path, nil)
	if err != nil {
		return nil, err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		reason := strings.TrimSpace(string(body))
		var ae struct{ Error string }
		if json.Unmarshal(body, &ae) == nil && ae.Error != "" {
			reason = ae.Error
		}
		return nil, fmt.Errorf("%s: %s: %s", path, resp.Status, reason)
	}
	return body, nil
}

func runStatus(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlagSet(env, "status", "[--node URL]")
	nodeURL := fs.String("node", defaultNodeURL, "the node's base URL (VIGIL_TOKEN holds a bearer token for a private feed)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		fs.Usage()
		return errUsage
	}
	body, err := newFeedClient(*nodeURL).get(ctx, "/v1/logs")
	if err != nil {
		return &exitError{code: exitStatusUnreadable, err: err}
	}
	var logs feed.LogsResponse
	if err := json.Unmarshal(body, &logs); err != nil {
		return &exitError{code: exitStatusUnreadable, err: fmt.Errorf("decoding /v1/logs: %w", err)}
	}
	writeStatus(env.stdout, logs)
	return statusVerdict(logs)
}

// Exit codes of vigil status (docs/api.md). When several apply, the lowest
// non-zero one wins: a contested log matters more than a stale one.
const (
	// exitContested: the node holds evidence or a log is contested.
	exitContested = 1
	// exitStatusUnreadable: the node could not be read or answered
	// something that is not a /v1/logs response (also bad flags).
	exitStatusUnreadable = 2
	// exitStale: a log is stale.
	exitStale = 3
)

// statusVerdict maps the node's state to vigil status's exit code.
func statusVerdict(logs feed.LogsResponse) error {
	contested, divergent, stale := 0, divergentLogs(logs), 0
	for _, l := range logs.Logs {
		if l.Contested != nil || l.Evidence > 0 || len(l.Divergences()) > 0 {
			contested++
		}
		if l.Freshness.State == feed.FreshnessStale {
			stale++
		}
	}
	switch {
	case logs.Evidence > 0 || contested > 0:
		msg := fmt.Sprintf("%d %s contested", contested, plural(contested, "log is", "logs are"))
		if logs.Evidence > 0 {
			msg += fmt.Sprintf("; the node holds %d piece(s) of evidence of misbehaviour", logs.Evidence)
		}
		if divergent > 0 {
			msg += fmt.Sprintf("; %d %s an unproven divergence open: two checkpoints signed by the log that nobody has shown consistent", divergent, plural(divergent, "log has", "logs have"))
		}
		return &exitError{code: exitContested, err: errors.New(msg)}
	case stale > 0:
		return &exitError{code: exitStale, err: fmt.Errorf("%d %s stale: no quorum-cosigned checkpoint for %d expected intervals", stale, plural(stale, "log is", "logs are"), feed.StaleAfter)}
	}
	return nil
}

// divergentLogs counts the logs with an open unproven divergence.
func divergentLogs(logs feed.LogsResponse) int {
	n := 0
	for _, l := range logs.Logs {
		if len(l.Divergences()) > 0 {
			n++
		}
	}
	return n
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// writeStatus prints the log table of vigil status, then each open
// divergence and the count of other open suspicions per log.
func writeStatus(w io.Writer, logs feed.LogsResponse) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ORIGIN\tSIZE\tCOSIGNERS\tQUORUM\tAGE\tFRESHNESS\tEVIDENCE\tSTATE")
	for _, l := range logs.Logs {
		size, cosigners, quorum, age := "-", "-", "-", "-"
		if c := l.Latest; c != nil {
			size = fmt.Sprint(c.Size)
			cosigners = fmt.Sprintf("%d/%d", len(c.Cosigners), len(logs.Witnesses))
			if len(c.Cosigners) > 0 {
				cosigners += " " + strings.Join(c.Cosigners, ",")
			}
		}
		if q := l.Quorum; q != nil {
			quorum = fmt.Sprint(q.Size)
		}
		if l.AgeSeconds != nil {
			age = (time.Duration(*l.AgeSeconds) * time.Second).String()
		}
		state := l.State
		if state == "" {
			state = "-" // a node older than the state field
		}
		if l.Contested != nil && state == feed.StateOK {
			state = "contested"
		}
		fresh := l.Freshness.State
		if fresh == "" {
			fresh = "-" // a node older than the freshness field
		}
		if l.Contested != nil {
			size += " CONTESTED"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", l.Origin, size, cosigners, quorum, age, fresh, l.Evidence, state)
	}
	tw.Flush()
	for _, l := range logs.Logs {
		if c := l.Contested; c != nil {
			sizes := make([]string, len(c.Sizes))
			for i, n := range c.Sizes {
				sizes[i] = fmt.Sprint(n)
			}
			fmt.Fprintf(w, "\nCONTESTED %s: conflicting sizes %s (%d evidence, %d open divergences): do not rely on its checkpoints until this is settled\n",
				l.Origin, strings.Join(sizes, ", "), len(c.Evidence), len(c.Suspicions))
		}
		if l.Freshness.State == feed.FreshnessLate || l.Freshness.State == feed.FreshnessStale {
			fmt.Fprintf(w, "\n%s %s: no quorum-cosigned checkpoint since %s (expected every %s)\n", strings.ToUpper(l.Freshness.State), l.Origin,
				l.Freshness.Since.UTC().Format(time.RFC3339), time.Duration(l.Freshness.ExpectedIntervalSeconds*float64(time.Second)))
		}
		for _, d := range l.Divergences() {
			fmt.Fprintf(w, "\nDIVERGENT %s: size %d (root %s, cosigned by %s) and size %d (root %s, cosigned by %s) are both signed by the log; nobody has shown them consistent\n",
				l.Origin, d.Size, d.Root, witnessList(d.Cosigners), d.Other.Size, d.Other.Root, witnessList(d.Other.Cosigners))
			fmt.Fprintf(w, "  %s; seen %d %s, first %s, last %s\n", d.Reason, d.Count, plural(int(d.Count), "time", "times"),
				d.FirstSeen.UTC().Format(time.RFC3339), d.LastSeen.UTC().Format(time.RFC3339))
		}
		unchecked := 0
		for _, s := range l.Suspicions {
			if s.Open && s.Other == nil {
				unchecked++
			}
		}
		if unchecked > 0 {
			fmt.Fprintf(w, "\nSUSPECT %s: %d %s the log did not let the node check: GET /v1/suspicions?open=true\n",
				l.Origin, unchecked, plural(unchecked, "checkpoint", "checkpoints"))
		}
		if more := l.OpenSuspicions - len(l.Suspicions); more > 0 {
			fmt.Fprintf(w, "\nMORE %s: %d more open %s not shown: GET /v1/suspicions?open=true\n", l.Origin, more, plural(more, "suspicion", "suspicions"))
		}
	}
	if logs.Evidence > 0 {
		fmt.Fprintf(w, "\nWARNING: the node holds %d piece(s) of evidence of misbehaviour: GET /v1/evidence\n", logs.Evidence)
	}
}

func witnessList(names []string) string {
	if len(names) == 0 {
		return "no roster witness"
	}
	return strings.Join(names, ", ")
}
