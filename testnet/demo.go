package testnet

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/vigilnet/vigil/gossip/evidence"
	vpb "github.com/vigilnet/vigil/proto"
	"github.com/vigilnet/vigil/scitt"
	"github.com/vigilnet/vigil/testnet/scriptlog"
)

// DemoOptions configures RunDemo.
type DemoOptions struct {
	// Dir holds the demo's keys, roster and data; required.
	Dir string
	// Rounds is how many times the scripted log grows honestly before it
	// equivocates.
	Rounds int
	// Interval is the pause between rounds; the demo is meant to be watched.
	Interval time.Duration
	Logger   *slog.Logger
}

// DemoResult is what the demo leaves for the caller to show.
type DemoResult struct {
	// Network is still running; the caller stops it.
	Network *Network
	// Regulator is the URL of the regulator's observer node (its dashboard).
	Regulator string
	// EvidenceFile is a vigil-evidence/v1 file, and RosterPath the roster
	// to check it against with `vigil verify`.
	EvidenceFile, RosterPath string
	stopLog                  func()
}

// Stop stops the network and the transparency service.
func (r *DemoResult) Stop() {
	r.Network.Stop()
	r.stopLog()
}

const (
	demoWitnesses = 5
	demoObservers = 2
	demoCustomer  = demoWitnesses     // index of the customer's observer
	demoRegulator = demoWitnesses + 1 // index of the regulator's observer
)

// RunDemo runs the scenario a newcomer sees first: five witnesses, a
// customer's and a regulator's observer, Vigil's SCITT transparency service
// (witnessed by the network) and a scripted log. Statements are registered
// and shown witnessed; the scripted log grows honestly, then shows half the
// witnesses one history and the other half another; every node ends up with
// evidence, which the caller checks with `vigil verify`.
func RunDemo(ctx context.Context, out io.Writer, opts DemoOptions) (_ *DemoResult, err error) {
	if opts.Dir == "" {
		return nil, errors.New("demo: Dir is required")
	}
	if opts.Rounds <= 0 {
		opts.Rounds = 6
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	say := func(format string, args ...any) { fmt.Fprintf(out, format+"\n", args...) }

	// The transparency service's keys and listener come first: its URL
	// goes in the roster so that every node follows it.
	ts, err := NewTransparencyService("ts.demo.vigil.example", "provider.demo.vigil.example")
	if err != nil {
		return nil, err
	}
	lg, err := scriptlog.New("scripted.demo.vigil.example/log")
	if err != nil {
		ts.Close()
		return nil, err
	}
	// Every node registers the evidence it finds with the service.
	evcfg, err := ts.EvidenceConfig(opts.Dir)
	if err != nil {
		ts.Close()
		return nil, err
	}
	nw, err := Start(ctx, Options{
		Evidence:       evcfg,
		Dir:            opts.Dir,
		Network:        "demo",
		Witnesses:      demoWitnesses,
		Observers:      demoObservers,
		Logs:           []LogEntry{ts.LogEntry(), {VKey: lg.VerifierKey()}},
		FollowInterval: time.Second,
		Logger:         opts.Logger,
	})
	if err != nil {
		ts.Close()
		return nil, err
	}
	res := &DemoResult{Network: nw, Regulator: nw.Members[demoRegulator].URL, RosterPath: nw.RosterPath, stopLog: ts.Close}
	defer func() {
		if err != nil {
			res.Stop()
		}
	}()
	say("Vigil demo: %d witnesses and %d observers on loopback (gossip network %q)", demoWitnesses, demoObservers, "demo")
	for _, m := range nw.Members {
		role := string(m.Role)
		switch m.Index {
		case demoCustomer:
			role = "observer (customer)"
		case demoRegulator:
			role = "observer (regulator)"
		}
		say("  %-12s %-22s %s", m.Name, role, m.URL)
	}
	say("\nDashboard (the regulator's node): %s/\nRoster: %s\n", res.Regulator, nw.RosterPath)

	if err := ts.Start(ctx, nw, tsDir(nw), opts.Logger); err != nil {
		return nil, fmt.Errorf("transparency service: %w", err)
	}
	say("Transparency service %s at %s, witnessed by the %d witnesses (quorum %d)", ts.Origin, ts.URL, demoWitnesses, nw.Quorum())
	if _, err := ts.Register(ctx, demoStatements); err != nil {
		return nil, err
	}
	for _, st := range demoStatements {
		say("  registered %s: COSE receipt verified offline ✓", st.What)
	}
	w, err := ts.Witnessed(ctx)
	if err != nil {
		return nil, err
	}
	if err := waitQuorum(ctx, res.Regulator, ts.Origin, w.Size, nw.Quorum(), say); err != nil {
		return nil, err
	}

	say("\nThe scripted log %s grows and pushes each checkpoint to every witness:", lg.Origin())
	p := NewPusher(nw)
	witnesses := Range(0, demoWitnesses)
	for round := 1; round <= opts.Rounds; round++ {
		lg.AppendN(1+demoRand(30), "honest")
		if err := p.PushAll(ctx, lg, witnesses); err != nil {
			return nil, fmt.Errorf("round %d: %w", round, err)
		}
		say("  round %d: size %d cosigned by all %d witnesses", round, lg.Size(), demoWitnesses)
		if err := sleepCtx(ctx, opts.Interval); err != nil {
			return nil, err
		}
	}
	if err := waitQuorum(ctx, res.Regulator, lg.Origin(), lg.Size(), nw.Quorum(), say); err != nil {
		return nil, err
	}

	// The split view: the log shows witnesses 0-2 one history and 3-4
	// another, both signed with its key.
	fork, err := lg.Fork(lg.Size())
	if err != nil {
		return nil, err
	}
	lg.AppendN(5, "view A")
	fork.AppendN(5, "view B")
	say("\nNow the scripted log equivocates: size %d with root %s… to witnesses 0-2, root %s… to witnesses 3-4",
		lg.Size(), short(lg), short(fork))
	if err := p.PushAll(ctx, lg, Range(0, 3)); err != nil {
		return nil, err
	}
	if err := p.PushAll(ctx, fork, Range(3, demoWitnesses)); err != nil {
		return nil, err
	}
	start := time.Now()
	if err := nw.WaitEvidence(ctx, time.Minute); err != nil {
		return nil, fmt.Errorf("evidence did not reach every node: %w", err)
	}
	held, err := nw.Evidence(ctx, demoRegulator)
	if err != nil {
		return nil, err
	}
	rec := held[0]
	say("Every node (witnesses and observers) holds the evidence %s after %s:\n  %s",
		rec.ID, time.Since(start).Round(time.Millisecond), rec.Statement)
	e, err := vpb.UnmarshalEvidence(rec.Data)
	if err != nil {
		return nil, err
	}
	file, err := evidence.MarshalFile(e)
	if err != nil {
		return nil, err
	}
	res.EvidenceFile = filepath.Join(opts.Dir, "evidence-"+rec.ID+".txt")
	if err := os.WriteFile(res.EvidenceFile, file, 0o644); err != nil {
		return nil, err
	}
	return res, nil
}

// demoStatements are what the demo's provider registers about its
// customer acme: an inventory, and a configuration as a hash envelope.
var demoStatements = []Statement{
	{
		Subject: "acme/inventory", Kind: "inventory", What: "inventory of acme's resources",
		Payload: []byte(`{"provider":"cloud.demo.vigil.example","customer":"acme","as_of":"2026-11-23T00:00:00Z","resources":[{"id":"vm-1","type":"compute.vm","region":"eu-west"},{"id":"db-1","type":"database","region":"eu-west"}]}`),
	},
	{
		Subject: "acme/configuration", Kind: "configuration", What: "configuration of db-1 (hash envelope: only the digest is public)",
		Payload: []byte(`{"resource":"db-1","as_of":"2026-11-23T00:00:00Z","config":{"encryption":"aes-256","public_access":false}}`),
		Opts:    scitt.SignOptions{HashEnvelope: true, Location: "https://cloud.demo.vigil.example/configs/db-1"},
	},
}

func short(l *scriptlog.Log) string {
	r, _ := l.Root(l.Size())
	return fmt.Sprintf("%x", r[:4])
}

func indent(s string) string {
	return "    " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n    ")
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

func demoRand(n int) int {
	var b [1]byte
	rand.Read(b[:])
	return int(b[0]) % n
}
