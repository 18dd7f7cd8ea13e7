package main

import (
	"context"
	"fmt"

	"golang.org/x/mod/sumdb/note"

	"github.com/vigilnet/vigil/roster"
	"github.com/vigilnet/vigil/tlog"
)

func runCheckpoint(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlagSet(env, "checkpoint", "ORIGIN [--k N] [--node URL] [--roster FILE]")
	k := fs.Int("k", 0, "require at least N cosignatures from roster witnesses")
	nodeURL := fs.String("node", defaultNodeURL, "the node's base URL (VIGIL_TOKEN holds a bearer token for a private feed)")
	rosterPath := fs.String("roster", "", "verify the note against this roster (C2SP tlog-policy): log signature and N witness cosignatures")
	// Accept the origin before or after the flags.
	var origin string
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		origin, args = args[0], args[1:]
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if origin == "" && fs.NArg() == 1 {
		origin = fs.Arg(0)
	} else if fs.NArg() != 0 || origin == "" {
		fs.Usage()
		return errUsage
	}
	if *k < 0 {
		fmt.Fprintln(env.stderr, "vigil checkpoint: --k must not be negative")
		return errUsage
	}
	msg, err := newFeedClient(*nodeURL).get(ctx, fmt.Sprintf("/v1/logs/%s/checkpoint?k=%d", tlog.LogID(origin), *k))
	if err != nil {
		return err
	}
	if *rosterPath != "" {
		r, err := roster.Load(*rosterPath)
		if err != nil {
			return err
		}
		cosigners, err := verifyServedCheckpoint(r, origin, msg, *k)
		if err != nil {
			return &exitError{code: 1, err: err}
		}
		fmt.Fprintf(env.stderr, "verified: signed by %s, cosigned by %d roster witnesses %v\n", origin, len(cosigners), cosigners)
	} else {
		// Without a roster nothing was checked: the note is exactly what
		// the node served, and the count of cosignatures is the node's.
		fmt.Fprintln(env.stderr, "unverified: the note is printed as the node served it; give --roster FILE to check the log's signature and the witnesses' cosignatures")
	}
	_, err = env.stdout.Write(msg)
	return err
}

// verifyServedCheckpoint checks msg as a client that trusts only the roster:
// the log's signature, then at least k valid roster cosignatures.
func verifyServedCheckpoint(r *roster.Roster, origin string, msg []byte, k int) ([]string, error) {
	l, ok := r.Log(origin)
	if !ok {
		return nil, fmt.Errorf("the roster does not list log %q", origin)
	}
	_, n, err := tlog.VerifyCheckpoint(msg, origin, []note.Verifier{l.Verifier}, r.WitnessVerifiers()...)
	if err != nil {
		return nil, fmt.Errorf("checkpoint does not verify: %w", err)
	}
	var names []string
	set := map[string]bool{}
	for _, s := range n.Sigs {
		if w, ok := r.WitnessByKey(s.Name, s.Hash); ok && !set[w.Name] {
			set[w.Name] = true
			names = append(names, w.Name)
		}
	}
	if len(names) < k {
		return names, fmt.Errorf("checkpoint carries %d valid roster cosignatures, want at least %d", len(names), k)
	}
	return names, nil
}
