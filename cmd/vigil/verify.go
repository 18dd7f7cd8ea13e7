package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/vigilnet/vigil/gossip/evidence"
	vpb "github.com/vigilnet/vigil/proto"
	"github.com/vigilnet/vigil/roster"
)

// runVerify checks an evidence file offline against a roster: only the
// logs' and witnesses' public keys are used. Exit 0: the evidence is valid
// and the output says exactly what it proves; exit 1: invalid, with the
// reason; exit 2: usage, or a file that cannot be read.
func runVerify(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlagSet(env, "verify", "FILE --roster FILE [--logs FILE]...")
	rosterPath := fs.String("roster", "", "roster file (C2SP tlog-policy) with the log's and witnesses' keys")
	var logLists logListFlag
	fs.Var(&logLists, "logs", "witness-network logs/v0 list adding logs to the roster (repeatable)")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || *rosterPath == "" {
		fs.Usage()
		return errUsage
	}
	// Input that cannot be read is exit 2, as for verify-receipt: 1 means
	// the evidence was read and is invalid.
	r, err := roster.Load(*rosterPath, logLists...)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	data, err := readEvidenceFile(pos[0])
	var ee *exitError
	if err != nil && !errors.As(err, &ee) {
		return &exitError{code: 2, err: err}
	}
	if err != nil {
		return err
	}
	e, err := evidence.ParseFile(data)
	if err != nil {
		return &exitError{code: 1, err: fmt.Errorf("INVALID: %s is not an evidence file: %v", pos[0], err)}
	}
	f, err := evidence.Verify(e, r)
	if err != nil {
		return &exitError{code: 1, err: fmt.Errorf("INVALID: %v", err)}
	}
	printFinding(env.stdout, evidence.ID(e), e, f)
	return nil
}

func printFinding(w io.Writer, id string, e *vpb.Evidence, f *evidence.Finding) {
	fmt.Fprintf(w, "VALID %s evidence %s\n", vpb.KindName(f.Kind), id)
	fmt.Fprintf(w, "proves: %s\n", f.Statement())
	fmt.Fprintf(w, "log:    %s (key verified from the roster)\n", f.Origin)
	fmt.Fprintf(w, "A:      size %d root %x\n", f.A.Size, f.A.Root)
	fmt.Fprintf(w, "B:      size %d root %x\n", f.B.Size, f.B.Root)
	if f.A.Size < f.B.Size {
		fmt.Fprintf(w, "proof:  %d hashes reproduce B's root and give the size-%d root %x, not A's\n", len(e.ConsistencyProof), f.A.Size, f.ProvenRootA)
	}
	if f.Witness != "" {
		fmt.Fprintf(w, "witness: %s (%s) cosigned both A and B\n", f.Witness, f.WitnessKey)
	}
	if e.Observer != "" {
		fmt.Fprintf(w, "found by: %s (informational, not signed)\n", e.Observer)
	}
}

// readEvidenceFile reads a file (or stdin for "-") up to the evidence size
// bound.
func readEvidenceFile(path string) ([]byte, error) {
	var r io.Reader
	if path == "-" {
		r = os.Stdin
	} else {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, evidence.MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	if len(b) > evidence.MaxFileSize {
		return nil, &exitError{code: 1, err: fmt.Errorf("INVALID: %s is larger than %d bytes", path, evidence.MaxFileSize)}
	}
	return b, nil
}

// parseInterleaved parses flags that may come before or after positional
// arguments (`vigil verify FILE --roster R`), returning the positionals.
func parseInterleaved(fs interface {
	Parse([]string) error
	Args() []string
}, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, errUsage
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// logListFlag is a repeatable string flag.
type logListFlag []string

func (m *logListFlag) String() string     { return strings.Join(*m, ",") }
func (m *logListFlag) Set(s string) error { *m = append(*m, s); return nil }
