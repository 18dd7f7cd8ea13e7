package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/vigilnet/vigil/testnet"
	"k8s.io/klog/v2"
)

func runTestnet(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlagSet(env, "testnet", "[--witnesses N] [--observers N] [--logs N] [--scitt=false] [--processes] [--roster-keys ed25519|mldsa|both] [--cosignature-types ed25519|mldsa|both] [--script FILE] [--dir DIR] [--exit]")
	witnesses := fs.Int("witnesses", 8, "witness nodes")
	observers := fs.Int("observers", 2, "observer nodes")
	logs := fs.Int("logs", 2, "scripted logs (log-0, log-1, ...), served over tlog-tiles and pushed to witnesses")
	scitt := fs.Bool("scitt", true, "also run Vigil's transparency service (SCITT on Tessera POSIX storage) as log \"ts\", cosigned by the witnesses; scripts register statements with \"register N\"")
	processes := fs.Bool("processes", false, "run every node as a separate \"vigil node\" process (partitions, floods and cosign-both need in-process nodes)")
	rosterKeys := fs.String("roster-keys", "ed25519", "witness keys the roster lists: ed25519, mldsa (ML-DSA-44), or both (each witness by both keys in an \"any\" group, counted once)")
	cosignTypes := fs.String("cosignature-types", "both", "what every witness cosigns with (witness.cosignature_types): ed25519, mldsa or both")
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
	if err := checkTestnetKeys(*rosterKeys, *cosignTypes); err != nil {
		fmt.Fprintf(env.stderr, "vigil testnet: %v\n", err)
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
	if !*scitt {
		// The default script registers statements; without the service
		// those steps are left out (and said so) rather than failing.
		var kept []testnet.Step
		var left []string
		for _, st := range steps {
			if testnet.NeedsTransparencyService(st) {
				left = append(left, strconv.Itoa(st.Line))
				continue
			}
			kept = append(kept, st)
		}
		if len(left) > 0 {
			fmt.Fprintf(env.stdout, "testnet: --scitt=false: leaving out the script's transparency-service steps (lines %s)\n", strings.Join(left, ", "))
		}
		steps = kept
	}
	if *dir == "" {
		d, err := os.MkdirTemp("", "vigil-testnet-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		*dir = d
	}
	logger := newLogger(env, "error")
	klog.SetSlogLogger(logger.With("component", "tessera")) // Tessera logs through klog
	opts := testnet.Options{Dir: *dir, Witnesses: *witnesses, Observers: *observers, FollowInterval: time.Second, Logger: logger,
		RosterKeys: *rosterKeys, CosignatureTypes: func(int) string { return *cosignTypes }}
	if *processes {
		if opts.Binary, err = os.Executable(); err != nil {
			return err
		}
	}
	sn, err := testnet.StartScripted(ctx, opts, testnet.ScriptedOptions{Logs: *logs, SCITT: *scitt}, env.stdout)
	if err != nil {
		return err
	}
	defer sn.Stop()
	fmt.Fprintf(env.stdout, "testnet: %d witnesses (quorum %d), %d observers, roster %s (%s keys; witnesses cosign with %s)\n", *witnesses, sn.Quorum(), *observers, sn.RosterPath, *rosterKeys, *cosignTypes)
	for _, m := range sn.Members {
		fmt.Fprintf(env.stdout, "  %-12s %s/\n", m.Name, m.URL)
	}
	if sn.TS != nil {
		fmt.Fprintf(env.stdout, "  %-12s %s (%s: the SCITT transparency service on Tessera, cosigned by the witnesses)\n", "ts", sn.TS.URL, sn.TS.Origin)
	}
	for i := 0; i < len(sn.Logs); i++ {
		name := fmt.Sprintf("log-%d", i)
		l := sn.Logs[name]
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

// checkTestnetKeys checks --roster-keys and --cosignature-types, and that
// the witnesses sign with a key type the roster lists.
func checkTestnetKeys(rosterKeys, cosignTypes string) error {
	for _, f := range []struct{ name, v string }{{"--roster-keys", rosterKeys}, {"--cosignature-types", cosignTypes}} {
		if f.v == "" || testnet.CheckKeyType(f.v) != nil {
			return fmt.Errorf("%s %q: want ed25519, mldsa or both", f.name, f.v)
		}
	}
	if rosterKeys != "both" && cosignTypes != "both" && rosterKeys != cosignTypes {
		return fmt.Errorf("--roster-keys %s with --cosignature-types %s: no witness cosignature would count; sign with %s or both", rosterKeys, cosignTypes, rosterKeys)
	}
	return nil
}
