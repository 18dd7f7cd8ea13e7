// Command vigil runs and operates Vigil nodes: witnesses and observers that
// follow transparency logs, co-sign consistent checkpoints, gossip what they
// see and keep offline-verifiable evidence of split views.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"
)

// command is one `vigil` subcommand. run receives the arguments after the
// subcommand name; it returns errUsage for bad flags so main can print help.
type command struct {
	summary string
	run     func(ctx context.Context, env *cliEnv, args []string) error
}

// cliEnv carries the process's streams so commands are testable in-process.
type cliEnv struct {
	stdout io.Writer
	stderr io.Writer
}

// errUsage reports a command-line mistake already explained to the user.
var errUsage = errors.New("usage error")

// exitError lets a command choose its exit code (vigil verify: 1 = invalid).
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func commands() map[string]command {
	return map[string]command{
		"keygen":         {"create a cosigning key and a separate libp2p identity key", runKeygen},
		"node":           {"run a witness (or observer) node", runNode},
		"bench":          {"measure a witness: vigil bench witness --url URL | --spawn", runBench},
		"demo":           {"run a self-contained demonstration on loopback", runDemo},
		"testnet":        {"run a whole network on loopback under a scripted sequence of faults", runTestnet},
		"log":            {"run a standalone SCITT transparency service on Tessera", runLog},
		"submit":         {"sign a statement, register it with a transparency service, save the receipt", runSubmit},
		"verify-receipt": {"verify a COSE receipt for a statement offline", runVerifyReceipt},
		"verify-proof":   {"verify a C2SP tlog-proof offline against a tlog-policy (log key, witness quorum)", runVerifyProof},
		"status":         {"print a node's logs: size, cosigners, freshness, evidence, contested state (exit 1 contested, 2 unreadable, 3 stale)", runStatus},
		"checkpoint":     {"print a log's newest checkpoint with at least k cosignatures", runCheckpoint},
		"evidence":       {"list, show or export the split-view evidence a node holds", runEvidence},
		"export":         {"save a node's record of a period (checkpoints, witness availability, evidence) as JSON Lines or CSV", runExport},
		"verify":         {"check an evidence file offline against a roster: exit 0 valid, 1 invalid", runVerify},
	}
}

func main() {
	os.Exit(vigilMain(os.Args[1:], os.Stdout, os.Stderr))
}

func vigilMain(args []string, stdout, stderr io.Writer) int {
	env := &cliEnv{stdout: stdout, stderr: stderr}
	cmds := commands()
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr, cmds)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmd, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "vigil: unknown command %q\n", args[0])
		usage(stderr, cmds)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := cmd.run(ctx, env, args[1:])
	var ee *exitError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	case errors.As(err, &ee):
		fmt.Fprintf(stderr, "vigil %s: %v\n", args[0], ee.err)
		return ee.code
	default:
		fmt.Fprintf(stderr, "vigil %s: %v\n", args[0], err)
		return 1
	}
}

func usage(w io.Writer, cmds map[string]command) {
	fmt.Fprintln(w, "usage: vigil <command> [flags]")
	fmt.Fprintln(w, "\ncommands:")
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-16s %s\n", n, cmds[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'vigil <command> -h' for a command's flags.")
}

// newFlagSet returns a FlagSet that reports errors to env.stderr and never exits.
func newFlagSet(env *cliEnv, name, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet("vigil "+name, flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	fs.Usage = func() {
		fmt.Fprintf(env.stderr, "usage: vigil %s %s\n", name, synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args, mapping flag errors to errUsage.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	return nil
}
