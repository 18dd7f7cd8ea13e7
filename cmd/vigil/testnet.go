package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/vigilnet/vigil/testnet"
)

func runTestnet(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlagSet(env, "testnet", "[--witnesses N] [--observers N] [--logs N] [--processes] [--script FILE] [--dir DIR] [--exit]")
	witnesses := fs.Int("witnesses", 8, "witness nodes")
	observers := fs.Int("observers", 2, "observer nodes")
	logs := fs.Int("logs", 2, "scripted logs (log-0, log-1, ...), served over tlog-tiles and pushed to witnesses")
	processes := fs.Bool("processes", false, "run every node as a separate `vigil node` process (partitions, floods and cosign-both need in-process nodes)")
	scriptPath := fs.String("script", "", "fault script (default: the built-in one, see testnet/scripts/faults.txt)")
	dir := fs.String("dir", "", "keep keys, data and configs here (default: a temp dir, removed)")
	exit := fs.Bool("exit", false, "stop when the script ends instead of serving until Ctrl-C")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *witnesses < 1 || *observers < 0 || *logs < 1 {
		fmt.Fprintln(env.stderr, "vigil testnet: need at least one witness and one log")
		return errUsage
	}
	script := testnet.DefaultScript
	if *scriptPath != "" {
		b, err := os.ReadFile(*scriptPath)
		if err != nil {
			return err
		}
		script = b
	}
	steps, err := testnet.ParseScript(script)
	if err != nil {
		return err
	}
	if *dir == "" {
		d, err := os.MkdirTemp("", "vigil-testnet-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		*dir = d
	}
	opts := testnet.Options{Dir: *dir, Witnesses: *witnesses, Observers: *observers, FollowInterval: time.Second, Logger: newLogger(env, "error")}
	if *processes {
		if opts.Binary, err = os.Executable(); err != nil {
			return err
		}
	}
	sn, err := testnet.StartScripted(ctx, opts, *logs, env.stdout)
	if err != nil {
		return err
	}
	defer sn.Stop()
	fmt.Fprintf(env.stdout, "testnet: %d witnesses, %d observers, roster %s\n", *witnesses, *observers, sn.RosterPath)
	for _, m := range sn.Members {
		fmt.Fprintf(env.stdout, "  %-12s %s/\n", m.Name, m.URL)
	}
	for name, l := range sn.Logs {
		fmt.Fprintf(env.stdout, "  %-12s %s (%s)\n", name, l.URL, l.Log.Origin())
	}
	if err := sn.Scenario.Run(ctx, steps); err != nil {
		return err
	}
	if *exit {
		return nil
	}
	fmt.Fprintln(env.stdout, "script done; the network keeps running. Press Ctrl-C to stop.")
	<-ctx.Done()
	return nil
}
