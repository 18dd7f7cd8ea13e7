package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/vigilnet/vigil/feed"
	"github.com/vigilnet/vigil/gossip/evidence"
	"github.com/vigilnet/vigil/node"
	vpb "github.com/vigilnet/vigil/proto"
	"github.com/vigilnet/vigil/store"
)

// hideFlags sets fs's usage to list every flag but the hidden ones: old
// names kept as aliases so existing scripts go on working.
func hideFlags(env *cliEnv, fs *flag.FlagSet, name, synopsis string, hidden ...string) {
	fs.Usage = func() {
		fmt.Fprintf(env.stderr, "usage: vigil %s %s\n", name, synopsis)
		shown := flag.NewFlagSet(name, flag.ContinueOnError)
		shown.SetOutput(env.stderr)
		fs.VisitAll(func(f *flag.Flag) {
			if !slices.Contains(hidden, f.Name) {
				shown.Var(f.Value, f.Name, f.Usage)
			}
		})
		shown.PrintDefaults()
	}
}

// runEvidence lists, shows and exports the evidence a node holds, reading
// its data directory (node stopped) or its feed (node running).
func runEvidence(ctx context.Context, env *cliEnv, args []string) error {
	const synopsis = "list|show ID|export ID [-o FILE] [--data DIR | --node URL]"
	fs := newFlagSet(env, "evidence", synopsis)
	data := fs.String("data", "", "read the node's data directory (the node must be stopped)")
	nodeURL := fs.String("node", "", "read a running node's feed at this base URL (default "+defaultNodeURL+"; VIGIL_TOKEN holds a bearer token for a private feed)")
	// --feed is the older name of --node, kept working but not shown.
	feedURL := fs.String("feed", "", "")
	hideFlags(env, fs, "evidence", synopsis, "feed")
	out := fs.String("o", "", "export: write the evidence file here instead of stdout")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if *nodeURL == "" {
		nodeURL = feedURL
	} else if *feedURL != "" && *feedURL != *nodeURL {
		fmt.Fprintln(env.stderr, "vigil evidence: --feed is another name for --node; give one")
		return errUsage
	}
	if len(pos) == 0 || *data != "" && *nodeURL != "" {
		fs.Usage()
		return errUsage
	}
	var src evidenceSource
	if *data != "" {
		db, err := store.Open(*data, store.Options{})
		if errors.Is(err, store.ErrLocked) {
			return fmt.Errorf("%w (the node is running: use --node URL)", err)
		}
		if err != nil {
			return err
		}
		defer db.Close()
		src = dbEvidence{db, *data}
	} else {
		u := *nodeURL
		if u == "" {
			u = defaultNodeURL
		}
		src = feedEvidence{newFeedClient(u)}
	}
	switch {
	case pos[0] == "list" && len(pos) == 1:
		list, err := src.list(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(env.stdout, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tKIND\tORIGIN\tDETECTED\tENTRY\tPROVES")
		for _, e := range list {
			entry := e.Entry
			if entry == "" {
				entry = "-" // not registered with a transparency service
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", e.ID, e.Kind, e.Origin, e.Detected.UTC().Format("2006-01-02T15:04:05Z"), entry, e.Summary)
		}
		return tw.Flush()
	case pos[0] == "show" && len(pos) == 2:
		file, err := src.file(ctx, pos[1])
		if err != nil {
			return err
		}
		e, err := evidence.ParseFile(file)
		if err != nil {
			return fmt.Errorf("evidence %s: %w", pos[1], err)
		}
		fmt.Fprintf(env.stdout, "id:       %s\nkind:     %s\n", evidence.ID(e), vpb.KindName(e.Kind))
		if e.WitnessKey != "" {
			fmt.Fprintf(env.stdout, "witness:  %s\n", e.WitnessKey)
		}
		fmt.Fprintf(env.stdout, "proof:    %d hashes\n\n", len(e.ConsistencyProof))
		fmt.Fprintf(env.stdout, "checkpoint A:\n%s\ncheckpoint B:\n%s\n", indent(e.CheckpointA), indent(e.CheckpointB))
		fmt.Fprintf(env.stdout, "Check it offline: vigil evidence export %s -o FILE && vigil verify FILE --roster ROSTER\n", pos[1])
		return nil
	case pos[0] == "export" && len(pos) == 2:
		file, err := src.file(ctx, pos[1])
		if err != nil {
			return err
		}
		if _, err := evidence.ParseFile(file); err != nil {
			return fmt.Errorf("evidence %s: %w", pos[1], err)
		}
		if *out == "" {
			_, err = env.stdout.Write(file)
			return err
		}
		return os.WriteFile(*out, file, 0o644)
	}
	fs.Usage()
	return errUsage
}

func indent(b []byte) string {
	return "  " + strings.ReplaceAll(strings.TrimSuffix(string(b), "\n"), "\n", "\n  ") + "\n"
}

type evidenceSource interface {
	list(ctx context.Context) ([]feed.Evidence, error)
	// file returns the evidence file (docs/evidence.md).
	file(ctx context.Context, id string) ([]byte, error)
}

type dbEvidence struct {
	db  *store.DB
	dir string // the data directory, for the entries of registered evidence
}

func (s dbEvidence) list(ctx context.Context) ([]feed.Evidence, error) {
	var out []feed.Evidence
	entries, err := node.ReadEvidenceEntries(s.dir)
	if err != nil {
		return nil, err
	}
	after := ""
	for {
		recs, err := s.db.ListEvidence(ctx, after, 500)
		if err != nil {
			return nil, err
		}
		for _, r := range recs {
			out = append(out, feed.Evidence{ID: r.ID, Kind: r.Kind, Origin: r.Origin, Detected: r.Stored, Stored: r.Stored, Summary: r.Statement, Entry: entries[r.ID]})
		}
		if len(recs) < 500 {
			return out, nil
		}
		after = recs[len(recs)-1].ID
	}
}

func (s dbEvidence) file(ctx context.Context, id string) ([]byte, error) {
	rec, err := s.db.Evidence(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("evidence %s: %w", id, err)
	}
	e, err := vpb.UnmarshalEvidence(rec.Data)
	if err != nil {
		return nil, fmt.Errorf("evidence %s: %w", id, err)
	}
	return evidence.MarshalFile(e)
}

type feedEvidence struct{ c *feedClient }

// list reads every page of /v1/evidence.
func (s feedEvidence) list(ctx context.Context) ([]feed.Evidence, error) {
	var out []feed.Evidence
	path := "/v1/evidence"
	for {
		b, err := s.c.get(ctx, path)
		if err != nil {
			return nil, err
		}
		var l feed.EvidenceList
		if err := json.Unmarshal(b, &l); err != nil {
			return nil, fmt.Errorf("decoding /v1/evidence: %w", err)
		}
		out = append(out, l.Evidence...)
		if l.Next == "" {
			return out, nil
		}
		path = "/v1/evidence?after=" + url.QueryEscape(l.Next)
	}
}

func (s feedEvidence) file(ctx context.Context, id string) ([]byte, error) {
	return s.c.get(ctx, "/v1/evidence/"+url.PathEscape(id)+"?format=raw")
}
