package main

import (
	"context"
	"time"

	"github.com/vigilnet/vigil/testnet"
)

func runDemo(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlagSet(env, "demo", "[--rounds N] [--interval D] [--dir DIR]")
	rounds := fs.Int("rounds", 8, "how many times the scripted log grows")
	interval := fs.Duration("interval", 400*time.Millisecond, "pause between rounds")
	dir := fs.String("dir", "", "keep the demo's keys, roster and data here (default: a temp dir, removed)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	return testnet.RunDemo(ctx, env.stdout, testnet.DemoOptions{Dir: *dir, Rounds: *rounds, Interval: *interval, Logger: newLogger(env, "warn")})
}
