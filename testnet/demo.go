package testnet

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"

	"github.com/vigilnet/vigil/node"
	"github.com/vigilnet/vigil/testnet/scriptlog"
	"github.com/vigilnet/vigil/tlog"
	"github.com/vigilnet/vigil/witness"
)

// DemoOptions configures RunDemo.
type DemoOptions struct {
	// Dir holds the demo's keys, roster and data; empty means a temp dir
	// removed afterwards.
	Dir string
	// Rounds is how many times the log grows and asks for a cosignature.
	Rounds int
	// Interval is the pause between rounds; the demo is meant to be watched.
	Interval time.Duration
	Logger   *slog.Logger
}

// RunDemo starts one witness node on loopback with a scripted honest log
// that grows and pushes its checkpoints, prints every cosigned checkpoint,
// and checks each cosignature with independent verifiers (x/mod note for the
// log signature, transparency-dev/formats for cosignature/v1). It finally
// shows the witness refusing a forked checkpoint.
func RunDemo(ctx context.Context, out io.Writer, opts DemoOptions) error {
	if opts.Rounds <= 0 {
		opts.Rounds = 8
	}
	dir := opts.Dir
	if dir == "" {
		d, err := os.MkdirTemp("", "vigil-demo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	lg, err := scriptlog.New("demo.vigil.example/log")
	if err != nil {
		return err
	}
	keysDir := filepath.Join(dir, "keys")
	wvkey, err := node.GenerateKeys(keysDir, "demo.vigil.example/witness")
	if err != nil {
		return err
	}
	rosterPath := filepath.Join(dir, "roster")
	policy := fmt.Sprintf("log %s\nwitness w1 %s\nquorum w1\n", lg.VerifierKey(), wvkey)
	if err := os.WriteFile(rosterPath, []byte(policy), 0o644); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	cfg := node.DefaultConfig()
	cfg.DataDir = filepath.Join(dir, "data")
	cfg.KeysDir = keysDir
	cfg.Roster = rosterPath
	n, err := node.New(cfg, node.Deps{Listener: ln, Logger: opts.Logger})
	if err != nil {
		ln.Close()
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	defer func() { cancel(); <-done }()

	fmt.Fprintf(out, "Vigil demo: one witness node at %s\n", n.URL())
	fmt.Fprintf(out, "  log      %s\n  witness  %s\n\n", lg.VerifierKey(), wvkey)

	logV, err := note.NewVerifier(lg.VerifierKey())
	if err != nil {
		return err
	}
	// The independent cosignature verifier: transparency-dev/formats, not ours.
	witV, err := fnote.NewVerifierForCosignatureV1(wvkey)
	if err != nil {
		return err
	}
	client := &witness.Client{URL: n.URL()}
	var old uint64
	for round := 1; round <= opts.Rounds; round++ {
		lg.AppendN(1+randInt(40), "honest")
		size := lg.Size()
		cp, err := lg.CheckpointAt(size)
		if err != nil {
			return err
		}
		cosig, err := client.Submit(ctx, &old, size, cp, lg)
		if err != nil {
			return fmt.Errorf("round %d: %w", round, err)
		}
		full := append(append([]byte(nil), cp...), cosig...)
		nt, err := note.Open(full, note.VerifierList(logV, witV))
		if err != nil {
			return fmt.Errorf("round %d: cosigned checkpoint does not verify: %w", round, err)
		}
		ts, _ := tlog.CosignatureTimestamp(nt.Sigs[len(nt.Sigs)-1])
		fmt.Fprintf(out, "round %d: cosigned checkpoint (size %d), verified: log signature ✓ cosignature/v1 by %s at %s ✓\n%s\n",
			round, size, witV.Name(), time.Unix(int64(ts), 0).UTC().Format(time.RFC3339), full)
		if err := sleepCtx(ctx, opts.Interval); err != nil {
			return err
		}
	}

	// The log now equivocates: a fork of the same size with other entries.
	fork, err := lg.Fork(lg.Size() - 1)
	if err != nil {
		return err
	}
	fork.AppendN(1, "evil")
	fcp, err := fork.CheckpointAt(fork.Size())
	if err != nil {
		return err
	}
	_, err = client.AddCheckpoint(ctx, &witness.AddCheckpointRequest{OldSize: old, Checkpoint: fcp})
	if !errors.Is(err, witness.ErrInconsistent) {
		return fmt.Errorf("the witness did not refuse a forked checkpoint: %v", err)
	}
	fmt.Fprintf(out, "the log showed a fork of size %d with a different root: the witness refused to cosign it (%v)\n", fork.Size(), err)
	return nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func randInt(n int) int {
	var b [1]byte
	rand.Read(b[:])
	return int(b[0]) % n
}
