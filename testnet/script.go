package testnet

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/vigilnet/vigil/node"
	vpb "github.com/vigilnet/vigil/proto"
	"github.com/vigilnet/vigil/testnet/scriptlog"
)

// Step is one timed action of a fault script.
type Step struct {
	At   time.Duration
	Op   string
	Args []string
	Line int
}

// scriptOps lists every operation with its argument count range.
var scriptOps = map[string][2]int{
	"say":           {1, 1 << 10},
	"grow":          {2, 2},
	"kill":          {1, 1},
	"restart":       {1, 1},
	"partition":     {2, 2},
	"heal":          {0, 0},
	"equivocate":    {3, 3},
	"cosign-both":   {2, 2},
	"flood":         {2, 3},
	"mode":          {2, 3},
	"wait-evidence": {0, 1},
	"register":      {1, 1},
	"wait-cosigned": {0, 1},
	"witnessed":     {0, 0},
}

// NeedsTransparencyService reports whether st acts on the transparency
// service, which a network without one cannot run.
func NeedsTransparencyService(st Step) bool {
	return st.Op == "register" || st.Op == "wait-cosigned" || st.Op == "witnessed"
}

// maxRegister bounds one register step: the testnet shows witnessing, it
// is not a load generator (testnet/load is).
const maxRegister = 1000

// scriptArgChecks validate arguments that can be checked before the script
// runs, so that a typo fails at once rather than minutes into a run.
var scriptArgChecks = map[string]func(args []string) error{
	"register": func(args []string) error {
		_, err := registerCount(args[0])
		return err
	},
	"wait-cosigned": checkTimeout,
	"wait-evidence": checkTimeout,
}

func checkTimeout(args []string) error {
	if len(args) == 0 {
		return nil
	}
	_, err := parseTimeout(args[0])
	return err
}

// parseTimeout parses a wait step's optional timeout.
func parseTimeout(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("timeout %q is not a positive duration", s)
	}
	return d, nil
}

func registerCount(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > maxRegister {
		return 0, fmt.Errorf("statement count %q must be 1..%d", s, maxRegister)
	}
	return n, nil
}

// ParseScript parses a fault script: one "at <duration> <op> <args...>"
// per line, '#' comments, steps in time order. Operations:
//
//	grow LOG N                 append N entries to LOG, push to all witnesses
//	kill I | restart I         SIGKILL (or stop) member I / start it again
//	partition A B              cut groups A and B apart (e.g. 0-4 5,6,7)
//	heal                       lift the partition
//	equivocate LOG A B         fork LOG: one view to witnesses A, one to B
//	cosign-both I LOG          witness I cosigns both views of the last fork
//	flood N DURATION [RATE]    N hostile peers flood invalid gossip
//	mode LOG MODE [DELAY]      honest | withhold-proofs | slow | offline
//	wait-evidence [TIMEOUT]    until every running member holds evidence
//	register N                 register N statements with the transparency
//	                           service over SCRAPI, verify their receipts and
//	                           show who cosigned the checkpoint covering them
//	wait-cosigned [TIMEOUT]    until every running member serves that
//	                           checkpoint with a quorum of cosignatures
//	witnessed                  fetch the first registered statement's
//	                           witnessed receipt (against the latest
//	                           witnessed checkpoint) and tlog-proof, and
//	                           verify both offline with the roster
//	say TEXT                   print TEXT
func ParseScript(src []byte) ([]Step, error) {
	var steps []Step
	sc := bufio.NewScanner(bytes.NewReader(src))
	var last time.Duration
	for ln := 1; sc.Scan(); ln++ {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) < 3 || f[0] != "at" {
			return nil, fmt.Errorf("script line %d: want \"at <duration> <op> [args]\"", ln)
		}
		at, err := time.ParseDuration(f[1])
		if err != nil || at < 0 {
			return nil, fmt.Errorf("script line %d: bad time %q", ln, f[1])
		}
		if at < last {
			return nil, fmt.Errorf("script line %d: %s is before the previous step (%s)", ln, at, last)
		}
		last = at
		n, ok := scriptOps[f[2]]
		if !ok {
			return nil, fmt.Errorf("script line %d: unknown operation %q", ln, f[2])
		}
		if args := len(f) - 3; args < n[0] || args > n[1] {
			return nil, fmt.Errorf("script line %d: %s takes %d to %d arguments, got %d", ln, f[2], n[0], n[1], args)
		}
		if check := scriptArgChecks[f[2]]; check != nil {
			if err := check(f[3:]); err != nil {
				return nil, fmt.Errorf("script line %d: %s: %w", ln, f[2], err)
			}
		}
		steps = append(steps, Step{At: at, Op: f[2], Args: f[3:], Line: ln})
	}
	return steps, sc.Err()
}

// parseMembers parses "0-4" or "1,3,5" (or a mix: "0-2,7").
func parseMembers(s string, n int) ([]int, error) {
	var out []int
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		b := a
		if err == nil && isRange {
			b, err = strconv.Atoi(hi)
		}
		if err != nil || a < 0 || b < a || b >= n {
			return nil, fmt.Errorf("member list %q: want indexes 0..%d like 0-2,5", s, n-1)
		}
		for i := a; i <= b; i++ {
			out = append(out, i)
		}
	}
	return out, nil
}

// Scenario runs fault scripts against a network and its served logs.
type Scenario struct {
	nw     *Network
	logs   map[string]*LogServer
	ts     *TransparencyService // nil without one
	pusher *Pusher
	out    io.Writer

	forks     map[string][2]*scriptlog.Log
	partition [2][]int
	mu        sync.Mutex
	hostiles  []*FloodPeer
	wg        sync.WaitGroup
}

// NewScenario prepares scripts for nw; logs maps script names to served logs
// that are in nw's roster.
func NewScenario(nw *Network, logs map[string]*LogServer, out io.Writer) *Scenario {
	return &Scenario{nw: nw, logs: logs, pusher: NewPusher(nw), out: out, forks: map[string][2]*scriptlog.Log{}}
}

// Run executes steps in order, each at its time after Run starts.
func (s *Scenario) Run(ctx context.Context, steps []Step) error {
	start := time.Now()
	for _, st := range steps {
		if err := sleepCtx(ctx, time.Until(start.Add(st.At))); err != nil {
			return err
		}
		fmt.Fprintf(s.out, "[%6s] %s %s\n", time.Since(start).Round(10*time.Millisecond), st.Op, strings.Join(st.Args, " "))
		if err := s.step(ctx, st); err != nil {
			return fmt.Errorf("script line %d (%s): %w", st.Line, st.Op, err)
		}
	}
	return nil
}

// Close stops the hostile peers and waits for their floods.
func (s *Scenario) Close() {
	s.mu.Lock()
	hs := s.hostiles
	s.hostiles = nil
	s.mu.Unlock()
	for _, h := range hs {
		h.Close()
	}
	s.wg.Wait()
}

func (s *Scenario) log(name string) (*LogServer, error) {
	l, ok := s.logs[name]
	if !ok {
		return nil, fmt.Errorf("no log named %q", name)
	}
	return l, nil
}

func (s *Scenario) runningWitnesses() []int {
	var out []int
	for _, m := range s.nw.Members {
		if m.Role == Witness && m.Running() {
			out = append(out, m.Index)
		}
	}
	return out
}

func (s *Scenario) step(ctx context.Context, st Step) error {
	n := len(s.nw.Members)
	switch st.Op {
	case "say":
		fmt.Fprintf(s.out, "         %s\n", strings.Join(st.Args, " "))
	case "grow":
		l, err := s.log(st.Args[0])
		if err != nil {
			return err
		}
		k, err := strconv.Atoi(st.Args[1])
		if err != nil || k < 1 {
			return fmt.Errorf("entry count %q must be a positive number", st.Args[1])
		}
		l.Log.AppendN(k, "honest")
		return s.pusher.PushAll(ctx, l.Log, s.runningWitnesses())
	case "kill", "restart":
		ms, err := parseMembers(st.Args[0], n)
		if err != nil {
			return err
		}
		for _, i := range ms {
			if st.Op == "kill" {
				err = s.nw.Kill(i)
			} else {
				err = s.nw.Restart(ctx, i)
			}
			if err != nil {
				return err
			}
		}
	case "partition":
		a, err := parseMembers(st.Args[0], n)
		if err != nil {
			return err
		}
		b, err := parseMembers(st.Args[1], n)
		if err != nil {
			return err
		}
		s.partition = [2][]int{a, b}
		return s.nw.Partition(a, b)
	case "heal":
		if s.partition[0] == nil {
			return errors.New("no partition to heal")
		}
		err := s.nw.Heal(ctx, s.partition[0], s.partition[1])
		s.partition = [2][]int{}
		return err
	case "equivocate":
		return s.equivocate(ctx, st.Args)
	case "cosign-both":
		return s.cosignBoth(ctx, st.Args)
	case "flood":
		return s.flood(ctx, st.Args)
	case "mode":
		l, err := s.log(st.Args[0])
		if err != nil {
			return err
		}
		m, err := ParseLogMode(st.Args[1])
		if err != nil {
			return err
		}
		var d time.Duration
		if len(st.Args) == 3 {
			if d, err = time.ParseDuration(st.Args[2]); err != nil {
				return fmt.Errorf("delay %q: %v", st.Args[2], err)
			}
		}
		l.SetMode(m, d)
	case "wait-evidence", "wait-cosigned":
		d := time.Minute
		if len(st.Args) == 1 {
			var err error
			if d, err = parseTimeout(st.Args[0]); err != nil {
				return err
			}
		}
		if st.Op == "wait-cosigned" {
			return s.waitCosigned(ctx, d)
		}
		return s.nw.WaitEvidence(ctx, d)
	case "register":
		k, err := registerCount(st.Args[0])
		if err != nil {
			return err
		}
		return s.register(ctx, k)
	case "witnessed":
		return s.witnessedReceipts(ctx)
	}
	return nil
}

// equivocate forks a log at its size and shows each group one view.
func (s *Scenario) equivocate(ctx context.Context, args []string) error {
	l, err := s.log(args[0])
	if err != nil {
		return err
	}
	a, err := parseMembers(args[1], len(s.nw.Members))
	if err != nil {
		return err
	}
	b, err := parseMembers(args[2], len(s.nw.Members))
	if err != nil {
		return err
	}
	// View B goes out first: the served log (view A, what every follower
	// pulls) changes only after group B has cosigned B, so B's witnesses
	// cannot have cosigned A from a pull in between.
	fork, err := l.Log.Fork(l.Log.Size())
	if err != nil {
		return err
	}
	fork.AppendN(2, "view B")
	s.forks[args[0]] = [2]*scriptlog.Log{l.Log, fork}
	if err := s.pusher.PushAll(ctx, fork, b); err != nil {
		return err
	}
	l.Log.AppendN(2, "view A")
	return s.pusher.PushAll(ctx, l.Log, a)
}

// cosignBoth makes witness I misbehave: it cosigns both views of the last
// fork with its own key (bypassing its honest core) and gossips both.
func (s *Scenario) cosignBoth(ctx context.Context, args []string) error {
	ms, err := parseMembers(args[0], len(s.nw.Members))
	if err != nil || len(ms) != 1 {
		return fmt.Errorf("cosign-both takes one witness index, got %q", args[0])
	}
	m := s.nw.Members[ms[0]]
	views, ok := s.forks[args[1]]
	if !ok {
		return fmt.Errorf("log %q has no fork yet (equivocate first)", args[1])
	}
	if m.Role != Witness || m.Node() == nil || m.Node().Gossip() == nil {
		return fmt.Errorf("%s must be a running in-process witness", m.Name)
	}
	keys, err := node.LoadKeys(m.cfg.KeysDir, false)
	if err != nil {
		return err
	}
	// It signs with every key its witness.cosignature_types names, as its
	// honest add-checkpoint would, so the roster's key type catches it.
	cosigners, err := keys.Signers(m.cfg.Witness.CosignatureTypes)
	if err != nil {
		return err
	}
	signers := make([]note.Signer, len(cosigners))
	for i, c := range cosigners {
		signers[i] = c
	}
	for _, v := range views {
		cp, err := v.Checkpoint()
		if err != nil {
			return err
		}
		n, err := note.Open(cp, note.VerifierList(verifierOf(v)))
		if err != nil {
			return err
		}
		signed, err := note.Sign(n, signers...)
		if err != nil {
			return err
		}
		if err := m.Node().Gossip().PublishSighting(ctx, signed, vpb.Source_SOURCE_COSIGN); err != nil {
			return err
		}
	}
	return nil
}

func verifierOf(l *scriptlog.Log) note.Verifier {
	v, err := note.NewVerifier(l.VerifierKey())
	if err != nil {
		panic(err) // scriptlog keys are always valid
	}
	return v
}

// flood starts N hostile peers connected to every running member; they
// flood forged sightings of a scripted log in the background
// and stop after the given duration (or when the scenario closes).
func (s *Scenario) flood(ctx context.Context, args []string) error {
	k, err := strconv.Atoi(args[0])
	if err != nil || k < 1 || k > 100 {
		return fmt.Errorf("hostile peer count %q must be 1..100", args[0])
	}
	d, err := time.ParseDuration(args[1])
	if err != nil || d <= 0 {
		return fmt.Errorf("flood duration %q is not a positive duration", args[1])
	}
	rate := 200.0
	if len(args) == 3 {
		if rate, err = strconv.ParseFloat(args[2], 64); err != nil || rate <= 0 {
			return fmt.Errorf("flood rate %q must be a positive number", args[2])
		}
	}
	var target *scriptlog.Log
	for _, l := range s.logs {
		target = l.Log
		break
	}
	if target == nil {
		return errors.New("flood needs a scripted log to imitate")
	}
	for i := 0; i < k; i++ {
		h, err := NewFloodPeer(s.nw.opts.Network)
		if err != nil {
			return err
		}
		s.mu.Lock()
		s.hostiles = append(s.hostiles, h)
		s.mu.Unlock()
		for _, m := range s.nw.Members {
			if m.Running() {
				if err := h.Connect(ctx, m); err != nil {
					return err
				}
			}
		}
		if err := h.Flood(target, rate); err != nil {
			return err
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			t := time.NewTimer(d)
			defer t.Stop()
			select {
			case <-t.C:
			case <-ctx.Done():
			}
			h.Close()
		}()
	}
	return nil
}

// register registers k statements with the transparency service and shows
// who cosigned the checkpoint covering them, as the service published it:
// Tessera collected the roster's quorum of cosignatures before publishing.
func (s *Scenario) register(ctx context.Context, k int) error {
	if s.ts == nil {
		return ErrNoTransparencyService
	}
	// Without a quorum of reachable witnesses the service publishes nothing
	// and receipts never come: fail the step instead of hanging the run.
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	regs, err := s.ts.Register(ctx, s.ts.CloudStatements(k))
	if err != nil {
		return err
	}
	fmt.Fprintf(s.out, "         ts: %s\n", describeRegistrations(regs))
	w, err := s.ts.Witnessed(ctx)
	if err != nil {
		return err
	}
	witnesses := 0
	for _, m := range s.nw.Members {
		if m.Role == Witness {
			witnesses++
		}
	}
	w.Cosigners = s.nw.members(w.Cosigners)
	fmt.Fprintf(s.out, "         ts: %s\n", cosignersLine(w, witnesses, s.nw.Quorum()))
	if !w.QuorumMet {
		return fmt.Errorf("the transparency service published size %d without a quorum of cosignatures", w.Size)
	}
	return nil
}

// waitCosigned waits until every running member serves the transparency
// service's checkpoint, at the size it has published now, with the quorum
// of cosignatures: what a customer or auditor reads from any node.
func (s *Scenario) waitCosigned(ctx context.Context, d time.Duration) error {
	if s.ts == nil {
		return ErrNoTransparencyService
	}
	w, err := s.ts.Witnessed(ctx)
	if err != nil {
		return err
	}
	start := time.Now()
	k := s.nw.QuorumCosignatures()
	if err := s.nw.WaitCosigned(ctx, s.ts.Origin, w.Size, k, d); err != nil {
		return err
	}
	fmt.Fprintf(s.out, "         ts: every running node serves size ≥ %d with ≥ %d cosignatures (after %s)\n",
		w.Size, k, time.Since(start).Round(time.Millisecond))
	return nil
}
