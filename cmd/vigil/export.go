package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/vigilnet/vigil/feed"
)

// runExport saves a node's export of a period (GET /v1/export): the
// checkpoints first seen in it with their cosigners, the evidence detected
// in it and each roster witness's availability. The file is written only
// once the node has sent all of it (its end record arrived); an export cut
// short leaves no file and exits 1.
func runExport(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlagSet(env, "export", "[--node URL] [--since RFC3339] [--until RFC3339] [--format jsonl|csv] [--out FILE]")
	nodeURL := fs.String("node", defaultNodeURL, "the node's base URL (VIGIL_TOKEN holds a bearer token for a private feed)")
	since := fs.String("since", "", "start of the period, inclusive (RFC 3339, e.g. 2026-04-01T00:00:00Z); default: the first record")
	until := fs.String("until", "", "end of the period, exclusive (RFC 3339); default: now")
	format := fs.String("format", feed.FormatJSONL, "jsonl or csv")
	out := fs.String("out", "", "write the export here (default: stdout)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 || (*format != feed.FormatJSONL && *format != feed.FormatCSV) {
		fs.Usage()
		return errUsage
	}
	q := url.Values{"format": {*format}}
	for name, v := range map[string]string{"since": *since, "until": *until} {
		if v == "" {
			continue
		}
		if _, err := time.Parse(time.RFC3339Nano, v); err != nil {
			fmt.Fprintf(env.stderr, "vigil export: --%s %q is not an RFC 3339 time (e.g. 2026-04-01T00:00:00Z)\n", name, v)
			return errUsage
		}
		q.Set(name, v)
	}
	c := newFeedClient(*nodeURL)
	req, err := http.NewRequestWithContext(ctx, "GET", c.base+"/v1/export?"+q.Encode(), nil)
	if err != nil {
		return err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	// No overall timeout: a quarter's export may take a while to stream.
	resp, err := (&http.Client{}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		reason := strings.TrimSpace(string(body))
		var ae struct{ Error string }
		if json.Unmarshal(body, &ae) == nil && ae.Error != "" {
			reason = ae.Error
		}
		return fmt.Errorf("/v1/export: %s: %s", resp.Status, reason)
	}
	var dst io.Writer = env.stdout
	var tmp *os.File
	if *out != "" {
		tmp, err = os.CreateTemp(filepath.Dir(*out), ".vigil-export-*")
		if err != nil {
			return err
		}
		defer func() {
			if tmp != nil {
				tmp.Close()
				os.Remove(tmp.Name())
			}
		}()
		dst = tmp
	}
	tail := &lastLine{}
	if _, err := io.Copy(io.MultiWriter(dst, tail), resp.Body); err != nil {
		return fmt.Errorf("reading the export: %w", err)
	}
	if err := exportComplete(*format, tail.line()); err != nil {
		return err
	}
	if tmp == nil {
		return nil
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), *out); err != nil {
		return err
	}
	tmp = nil
	return nil
}

// exportComplete checks an export's last line: the end record, not an
// error record or a cut.
func exportComplete(format, last string) error {
	var typ, reason string
	if format == feed.FormatCSV {
		if rec, err := csv.NewReader(strings.NewReader(last)).Read(); err == nil {
			typ, reason = rec[0], rec[len(rec)-1]
		}
	} else {
		var rec struct{ Type, Error string }
		json.Unmarshal([]byte(last), &rec)
		typ, reason = rec.Type, rec.Error
	}
	switch typ {
	case feed.ExportTypeEnd:
		return nil
	case feed.ExportTypeError:
		return fmt.Errorf("the node stopped the export: %s", reason)
	}
	return errors.New("the export ended before its end record: it is incomplete")
}

// lastLine keeps the last complete line written to it.
type lastLine struct {
	cur, done []byte
}

func (l *lastLine) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			l.cur = append(l.cur, p...)
			break
		}
		l.done = append(l.cur[:0:0], append(l.cur, p[:i]...)...)
		l.cur = l.cur[:0]
		p = p[i+1:]
	}
	return n, nil
}

func (l *lastLine) line() string {
	if len(l.cur) > 0 {
		return string(l.cur)
	}
	return string(l.done)
}
