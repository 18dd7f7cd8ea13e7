// Package load drives C2SP tlog-witness add-checkpoint load against a
// witness over HTTP and measures it: scripted logs with pre-generated
// checkpoint chains, concurrent keep-alive clients that each own a disjoint
// set of logs, latency percentiles, error counts by status, and verification
// of every returned cosignature. The `vigil bench witness` command and the Go
// benchmarks share it.
package load

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"runtime"
	"strings"
	"sync"

	"github.com/vigilnet/vigil/testnet/scriptlog"
	"github.com/vigilnet/vigil/witness"
)

// Step is one pre-generated add-checkpoint request.
type Step struct {
	// OldSize is the size the witness must hold for the request to succeed.
	OldSize uint64
	// Size and Root describe the checkpoint.
	Size uint64
	Root [32]byte
	// Body is the complete add-checkpoint request body.
	Body []byte
	// Checkpoint is the signed checkpoint note inside Body.
	Checkpoint []byte
}

// Chain is a log and its sequence of add-checkpoint requests, each extending
// the previous one, starting from a witness that has never seen the log.
type Chain struct {
	Log   *scriptlog.Log
	Steps []Step
}

// WorkloadConfig configures NewWorkload. Zero values mean the documented
// defaults.
type WorkloadConfig struct {
	// Logs is the number of scripted logs; default 1.
	Logs int
	// Steps is the number of checkpoints pre-generated per log; default 1.
	Steps int
	// MaxGrowth is the most entries a log grows by between checkpoints
	// (each step grows by 1..MaxGrowth, chosen at random); default 8.
	MaxGrowth int
	// OriginPrefix names the logs: "<prefix>/<index>". Default
	// "bench.vigil.example/<random hex>", so every workload has fresh origins
	// a witness has never cosigned.
	OriginPrefix string
	// Workers bounds the goroutines generating chains; default GOMAXPROCS.
	Workers int
}

// Workload is a set of logs and their pre-generated checkpoint chains.
type Workload struct {
	Chains []*Chain
}

// NewWorkload creates cfg.Logs fresh scripted logs and pre-generates
// cfg.Steps checkpoints (with consistency proofs) for each, in parallel.
func NewWorkload(cfg WorkloadConfig) (*Workload, error) {
	if cfg.Logs <= 0 {
		cfg.Logs = 1
	}
	if cfg.Steps <= 0 {
		cfg.Steps = 1
	}
	if cfg.MaxGrowth <= 0 {
		cfg.MaxGrowth = 8
	}
	if cfg.OriginPrefix == "" {
		var b [6]byte
		rand.Read(b[:])
		cfg.OriginPrefix = "bench.vigil.example/" + hex.EncodeToString(b[:])
	}
	if strings.ContainsAny(cfg.OriginPrefix, "+ \t\n") {
		return nil, fmt.Errorf("origin prefix %q must not contain '+' or spaces", cfg.OriginPrefix)
	}
	if cfg.Workers <= 0 {
		cfg.Workers = runtime.GOMAXPROCS(0)
	}
	w := &Workload{Chains: make([]*Chain, cfg.Logs)}
	jobs := make(chan int)
	errs := make([]error, cfg.Workers)
	var wg sync.WaitGroup
	for k := range cfg.Workers {
		wg.Go(func() {
			for i := range jobs {
				if errs[k] != nil {
					continue
				}
				w.Chains[i], errs[k] = newChain(fmt.Sprintf("%s/%d", cfg.OriginPrefix, i), cfg.Steps, cfg.MaxGrowth)
			}
		})
	}
	for i := range cfg.Logs {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return w, nil
}

func newChain(origin string, steps, maxGrowth int) (*Chain, error) {
	l, err := scriptlog.New(origin)
	if err != nil {
		return nil, err
	}
	c := &Chain{Log: l}
	return c, c.Extend(steps, maxGrowth)
}

// Extend grows the log and appends n more steps to the chain.
func (c *Chain) Extend(n, maxGrowth int) error {
	if maxGrowth <= 0 {
		maxGrowth = 1
	}
	old := c.Log.Size()
	if len(c.Steps) > 0 {
		old = c.Steps[len(c.Steps)-1].Size
	}
	for range n {
		c.Log.AppendN(1+mrand.IntN(maxGrowth), "load")
		st, err := NewStep(c.Log, old, c.Log.Size())
		if err != nil {
			return err
		}
		c.Steps = append(c.Steps, st)
		old = st.Size
	}
	return nil
}

// NewStep builds the add-checkpoint request that moves a witness holding
// size old of l to size n.
func NewStep(l *scriptlog.Log, old, n uint64) (Step, error) {
	cp, err := l.CheckpointAt(n)
	if err != nil {
		return Step{}, err
	}
	root, err := l.Root(n)
	if err != nil {
		return Step{}, err
	}
	p, err := l.ConsistencyProof(old, n)
	if err != nil {
		return Step{}, err
	}
	body := (&witness.AddCheckpointRequest{OldSize: old, Proof: p, Checkpoint: cp}).Marshal()
	return Step{OldSize: old, Size: n, Root: root, Body: body, Checkpoint: body[len(body)-len(cp):]}, nil
}

// Requests is the total number of steps in the workload.
func (w *Workload) Requests() int {
	n := 0
	for _, c := range w.Chains {
		n += len(c.Steps)
	}
	return n
}

// Policy returns a C2SP tlog-policy roster listing the workload's logs, to
// start the target witness with. If witnessVKey is not empty the witness is
// listed too and made the quorum; otherwise the quorum is none.
func (w *Workload) Policy(witnessName, witnessVKey string) []byte {
	var b strings.Builder
	b.WriteString("# Logs of a vigil bench witness workload.\n")
	for _, c := range w.Chains {
		fmt.Fprintf(&b, "log %s\n", c.Log.VerifierKey())
	}
	if witnessVKey != "" {
		fmt.Fprintf(&b, "witness %s %s\nquorum %s\n", witnessName, witnessVKey, witnessName)
	} else {
		b.WriteString("quorum none\n")
	}
	return []byte(b.String())
}

// probeBody returns a request a witness answers with 404 while it does not
// know the chain's log and with 400 (old size larger than the checkpoint)
// once it does; it never changes the witness's state.
func (c *Chain) probeBody() ([]byte, error) {
	cp, err := c.Log.CheckpointAt(0)
	if err != nil {
		return nil, err
	}
	return (&witness.AddCheckpointRequest{OldSize: 1, Checkpoint: cp}).Marshal(), nil
}
