package main

import (
	"context"
	"encoding/json"
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
		return err
	}
	var logs feed.LogsResponse
	if err := json.Unmarshal(body, &logs); err != nil {
		return fmt.Errorf("decoding /v1/logs: %w", err)
	}
	writeStatus(env.stdout, logs)
	if n := divergentLogs(logs); n > 0 {
		return &exitError{code: exitDivergent, err: fmt.Errorf("%d %s an unproven divergence open: two checkpoints signed by the log that nobody has shown consistent", n, plural(n, "log has", "logs have"))}
	}
	return nil
}

// exitDivergent is vigil status's exit code when a log has an open
// unproven divergence (1 is a failure to read the node, 2 a usage error).
const exitDivergent = 3

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
	fmt.Fprintln(tw, "ORIGIN\tSIZE\tCOSIGNERS\tQUORUM\tAGE\tEVIDENCE\tSTATE")
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
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\n", l.Origin, size, cosigners, quorum, age, l.Evidence, state)
	}
	tw.Flush()
	for _, l := range logs.Logs {
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
