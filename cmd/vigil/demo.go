package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/vigilnet/vigil/testnet"
	"k8s.io/klog/v2"
)

func runDemo(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlagSet(env, "demo", "[--rounds N] [--interval D] [--dir DIR] [--exit]")
	rounds := fs.Int("rounds", 6, "how many times the scripted log grows honestly before it equivocates")
	interval := fs.Duration("interval", 500*time.Millisecond, "pause between rounds")
	dir := fs.String("dir", "", "keep the demo's keys, roster, data and evidence here (default: a temp dir, removed)")
	exit := fs.Bool("exit", false, "stop when the scenario ends instead of serving until Ctrl-C")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *dir == "" {
		d, err := os.MkdirTemp("", "vigil-demo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		*dir = d
	}
	logger := newLogger(env, "error")
	klog.SetSlogLogger(logger.With("component", "tessera")) // Tessera logs through klog
	res, err := testnet.RunDemo(ctx, env.stdout, testnet.DemoOptions{Dir: *dir, Rounds: *rounds, Interval: *interval, Logger: logger})
	if err != nil {
		return err
	}
	defer res.Stop()

	fmt.Fprintf(env.stdout, "\n$ vigil status --node %s\n", res.Regulator)
	// The demo's log is contested on purpose: status exits 1 for it.
	var status *exitError
	if err := runStatus(ctx, env, []string{"--node", res.Regulator}); err != nil && !(errors.As(err, &status) && status.code == exitContested) {
		return err
	}
	fmt.Fprintf(env.stdout, "\n$ vigil verify %s --roster %s\n", res.EvidenceFile, res.RosterPath)
	if err := runVerify(ctx, env, []string{res.EvidenceFile, "--roster", res.RosterPath}); err != nil {
		return err
	}
	if *exit {
		return nil
	}
	fmt.Fprintf(env.stdout, "\nThe network keeps running: open %s/ for the dashboard (red banner: the evidence).\nPress Ctrl-C to stop.\n", res.Regulator)
	<-ctx.Done()
	fmt.Fprintln(env.stdout, "stopping…")
	return nil
}
