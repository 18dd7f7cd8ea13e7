package testnet

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/vigilnet/vigil/gossip/evidence"
	vpb "github.com/vigilnet/vigil/proto"
	"github.com/vigilnet/vigil/scitt"
	"github.com/vigilnet/vigil/testnet/scriptlog"
	"github.com/vigilnet/vigil/tlog"
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
	tsSkey, tsVkey, err := note.GenerateKey(rand.Reader, "ts.demo.vigil.example")
	if err != nil {
		return nil, err
	}
	tsLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	tsURL := "http://" + tsLn.Addr().String()
	lg, err := scriptlog.New("scripted.demo.vigil.example/log")
	if err != nil {
		tsLn.Close()
		return nil, err
	}
	nw, err := Start(ctx, Options{
		Dir:            opts.Dir,
		Network:        "demo",
		Witnesses:      demoWitnesses,
		Observers:      demoObservers,
		Logs:           []LogEntry{{VKey: tsVkey, URL: tsURL}, {VKey: lg.VerifierKey()}},
		FollowInterval: time.Second,
		Logger:         opts.Logger,
	})
	if err != nil {
		tsLn.Close()
		return nil, err
	}
	res := &DemoResult{Network: nw, Regulator: nw.Members[demoRegulator].URL, RosterPath: nw.RosterPath, stopLog: func() {}}
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

	stopTS, reg, err := startDemoTS(ctx, nw, tsSkey, tsLn, opts)
	if err != nil {
		return nil, fmt.Errorf("transparency service: %w", err)
	}
	res.stopLog = stopTS
	say("Transparency service ts.demo.vigil.example at %s, witnessed by the %d witnesses (quorum 3)", tsURL, demoWitnesses)
	if err := reg.registerDemoStatements(ctx, say); err != nil {
		return nil, err
	}
	if err := waitQuorum(ctx, res.Regulator, "ts.demo.vigil.example", reg.size, say); err != nil {
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
	if err := waitQuorum(ctx, res.Regulator, lg.Origin(), lg.Size(), say); err != nil {
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

// demoTS is the demo's transparency service and its issuer.
type demoTS struct {
	svc    *scitt.Service
	url    *url.URL
	issuer *scitt.PrivateKey
	rkey   *scitt.PublicKey
	size   uint64
}

func startDemoTS(ctx context.Context, nw *Network, skey string, ln net.Listener, opts DemoOptions) (func(), *demoTS, error) {
	signer, err := note.NewSigner(skey)
	if err != nil {
		return nil, nil, err
	}
	rskey, _, err := scitt.GenerateKey(rand.Reader, "ts.demo.vigil.example")
	if err != nil {
		return nil, nil, err
	}
	rkey, err := scitt.ParsePrivateKey(rskey)
	if err != nil {
		return nil, nil, err
	}
	iskey, ivkey, err := scitt.GenerateKey(rand.Reader, "provider.demo.vigil.example")
	if err != nil {
		return nil, nil, err
	}
	issuer, err := scitt.ParsePrivateKey(iskey)
	if err != nil {
		return nil, nil, err
	}
	policy, err := scitt.ParsePolicy([]byte(fmt.Sprintf("issuers:\n  - name: provider.demo.vigil.example\n    keys: [%q]\n    kinds: [inventory, configuration]\n", ivkey)))
	if err != nil {
		return nil, nil, err
	}
	wc := &scitt.WitnessConfig{Quorum: 3}
	for _, m := range nw.Members {
		if m.Role == Witness {
			wc.Witnesses = append(wc.Witnesses, scitt.Witness{URL: m.URL, VKey: m.VKey})
		}
	}
	svc, err := scitt.New(ctx, scitt.Config{
		Dir: filepath.Join(nw.opts.Dir, "ts"), LogSigner: signer, ReceiptKey: rkey,
		Policy: policy, Witnesses: wc, Logger: opts.Logger,
	})
	if err != nil {
		return nil, nil, err
	}
	srv := &http.Server{Handler: scitt.NewHandler(svc, scitt.HandlerOptions{Logger: opts.Logger}), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	stop := func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
		svc.Close(sctx)
	}
	return stop, &demoTS{svc: svc, url: &url.URL{Scheme: "http", Host: ln.Addr().String()}, issuer: issuer, rkey: rkey.Public()}, nil
}

// registerDemoStatements registers an inventory and a hash-envelope
// configuration statement over SCRAPI and verifies their receipts offline.
func (ts *demoTS) registerDemoStatements(ctx context.Context, say func(string, ...any)) error {
	inv := []byte(`{"provider":"cloud.demo.vigil.example","customer":"acme","as_of":"2026-11-23T00:00:00Z","resources":[{"id":"vm-1","type":"compute.vm","region":"eu-west"},{"id":"db-1","type":"database","region":"eu-west"}]}`)
	conf := []byte(`{"resource":"db-1","as_of":"2026-11-23T00:00:00Z","config":{"encryption":"aes-256","public_access":false}}`)
	for _, st := range []struct {
		kind    scitt.Kind
		payload []byte
		opts    scitt.SignOptions
		what    string
	}{
		{scitt.Kind("inventory"), inv, scitt.SignOptions{}, "inventory of acme's resources"},
		{scitt.Kind("configuration"), conf, scitt.SignOptions{HashEnvelope: true, Location: "https://cloud.demo.vigil.example/configs/db-1"}, "configuration of db-1 (hash envelope: only the digest is public)"},
	} {
		stmt, err := scitt.SignStatement(ts.issuer, "acme/"+string(st.kind), st.kind, st.payload, st.opts)
		if err != nil {
			return err
		}
		_, receipt, err := scitt.Register(ctx, ts.url, stmt)
		if err != nil {
			return fmt.Errorf("registering %s: %w", st.kind, err)
		}
		if err := scitt.VerifyReceipt(stmt, receipt, ts.rkey); err != nil {
			return fmt.Errorf("receipt for %s does not verify: %w", st.kind, err)
		}
		say("  registered %s: COSE receipt verified offline ✓", st.what)
	}
	cp, err := ts.svc.Reader().ReadCheckpoint(ctx)
	if err != nil {
		return err
	}
	c, err := tlog.ParseCheckpoint(cp[:strings.Index(string(cp), "\n\n")+1])
	if err != nil {
		return err
	}
	ts.size = c.Size
	return nil
}

// waitQuorum waits until the regulator's feed serves a checkpoint of origin
// of at least size with the roster's quorum of cosignatures, and shows it.
func waitQuorum(ctx context.Context, feedURL, origin string, size uint64, say func(string, ...any)) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	url := fmt.Sprintf("%s/v1/logs/%s/checkpoint?k=3", feedURL, tlog.LogID(origin))
	for {
		resp, err := http.Get(url)
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				c, err := tlog.ParseCheckpoint([]byte(body[:strings.Index(string(body), "\n\n")+1]))
				if err == nil && c.Size >= size {
					say("  the regulator's node serves %s at size %d with ≥ 3 witness cosignatures:\n%s", origin, c.Size, indent(string(body)))
					return nil
				}
			}
		}
		if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
			return fmt.Errorf("no checkpoint of %s with 3 cosignatures at size ≥ %d: %w", origin, size, err)
		}
	}
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
