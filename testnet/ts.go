package testnet

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/sync/errgroup"

	"github.com/vigilnet/vigil/node"
	"github.com/vigilnet/vigil/roster"
	"github.com/vigilnet/vigil/scitt"
	"github.com/vigilnet/vigil/tlog"
)

// ErrNoTransparencyService is returned by script steps that need the
// transparency service in a network started without it.
var ErrNoTransparencyService = errors.New("this network runs no transparency service")

// TransparencyService is Vigil's SCITT transparency service (package scitt
// on Tessera's POSIX storage) run beside a test network as one of its logs.
// It is listed in the roster with its URL, so every node pulls its
// checkpoints and tiles like any log's, and Tessera asks the network's
// witnesses (C2SP tlog-witness) to cosign each checkpoint before it is
// published, so a quorum of the roster's witnesses cosigns all of them.
type TransparencyService struct {
	// Origin is the log's origin and URL its SCRAPI and tlog-tiles base.
	Origin, URL string

	logSkey, logVkey string
	ln               net.Listener
	issuerName       string
	issuer           *scitt.PrivateKey
	// evidenceIssuer signs the network's evidence statements (every node
	// registers the evidence it finds).
	evidenceIssuer *scitt.PrivateKey
	evidenceSKey   string
	rkey           *scitt.PublicKey
	svc            *scitt.Service
	srv            *http.Server
	roster         *roster.Roster
	logVerifier    note.Verifier

	mu         sync.Mutex
	seq        int
	registered []Registration
}

// Registration is a statement registered over SCRAPI, with the receipt the
// service returned for it (verified before it is recorded).
type Registration struct {
	Statement, Receipt []byte
	// Location is the entry's URL path (GET it for the receipt again).
	Location string
	// Index is the entry's position in the log, from the receipt.
	Index uint64
}

// Statement is a statement for the service's issuer to sign and register.
type Statement struct {
	Subject string
	Kind    scitt.Kind
	Payload []byte
	Opts    scitt.SignOptions
	// What describes it for people watching.
	What string
}

// NewTransparencyService creates the service's keys and reserves its
// listener on 127.0.0.1, so that its URL can go in the roster (LogEntry)
// before the network starts; Start it once the network runs. issuer names
// the one statement issuer its registration policy admits (for inventory
// and configuration statements).
func NewTransparencyService(origin, issuer string) (*TransparencyService, error) {
	skey, vkey, err := note.GenerateKey(rand.Reader, origin)
	if err != nil {
		return nil, err
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, err
	}
	iskey, _, err := scitt.GenerateKey(rand.Reader, issuer)
	if err != nil {
		return nil, err
	}
	ik, err := scitt.ParsePrivateKey(iskey)
	if err != nil {
		return nil, err
	}
	eskey, _, err := scitt.GenerateKey(rand.Reader, "nodes."+origin)
	if err != nil {
		return nil, err
	}
	ek, err := scitt.ParsePrivateKey(eskey)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	return &TransparencyService{evidenceIssuer: ek, evidenceSKey: eskey,
		Origin: origin, URL: "http://" + ln.Addr().String(),
		logSkey: skey, logVkey: vkey, logVerifier: v, ln: ln, issuerName: issuer, issuer: ik,
	}, nil
}

// EvidenceConfig writes the key the network's nodes sign evidence
// statements with into dir and returns the node option that registers
// their evidence with the service.
func (ts *TransparencyService) EvidenceConfig(dir string) (*node.EvidenceConfig, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "evidence-issuer.key")
	if err := os.WriteFile(path, []byte(ts.evidenceSKey+"\n"), 0o600); err != nil {
		return nil, err
	}
	return &node.EvidenceConfig{RegisterTo: ts.URL, IssuerKey: path}, nil
}

// EntryReceipt returns a fresh receipt for entry id (the hex leaf hash), or
// an error if the service holds no such entry.
func (ts *TransparencyService) EntryReceipt(ctx context.Context, id string) ([]byte, error) {
	if ts.svc == nil {
		return nil, errors.New("the transparency service is not running")
	}
	return ts.svc.Receipt(ctx, id)
}

// LogEntry is the service's line in the network's roster.
func (ts *TransparencyService) LogEntry() LogEntry { return LogEntry{VKey: ts.logVkey, URL: ts.URL} }

// ReceiptKey is the key the service signs receipts with.
func (ts *TransparencyService) ReceiptKey() *scitt.PublicKey { return ts.rkey }

// Start runs the service with its data in dir, witnessed by nw's witnesses:
// the roster's quorum of them must cosign each checkpoint before Tessera
// publishes it (no fail-open: a service that cannot get its checkpoints
// witnessed stops publishing, which is what a customer would want).
func (ts *TransparencyService) Start(ctx context.Context, nw *Network, dir string, logger *slog.Logger) error {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	r, err := roster.Load(nw.RosterPath)
	if err != nil {
		return err
	}
	if _, ok := r.Log(ts.Origin); !ok {
		return fmt.Errorf("the roster does not list %s", ts.Origin)
	}
	ts.roster = r
	signer, err := note.NewSigner(ts.logSkey)
	if err != nil {
		return err
	}
	// The receipt key is not the checkpoint key (DESIGN invariant 5).
	rskey, _, err := scitt.GenerateKey(rand.Reader, ts.Origin)
	if err != nil {
		return err
	}
	rkey, err := scitt.ParsePrivateKey(rskey)
	if err != nil {
		return err
	}
	ts.rkey = rkey.Public()
	policy, err := scitt.ParsePolicy(fmt.Appendf(nil, "issuers:\n  - name: %s\n    keys: [%q]\n    kinds: [inventory, configuration]\n  - name: %s\n    keys: [%q]\n    kinds: [evidence]\n",
		ts.issuerName, ts.issuer.Public().String(), ts.evidenceIssuer.Name, ts.evidenceIssuer.Public().String()))
	if err != nil {
		return err
	}
	wc := &scitt.WitnessConfig{Quorum: nw.Quorum()}
	for _, m := range nw.Members {
		if m.Role == Witness {
			// A restarted member keeps its address (Network.Restart), so
			// this list stays right for the whole run.
			wc.Witnesses = append(wc.Witnesses, scitt.Witness{URL: m.URL, VKey: m.VKey})
		}
	}
	if len(wc.Witnesses) == 0 {
		return errors.New("the network has no witnesses")
	}
	ts.svc, err = scitt.New(ctx, scitt.Config{
		Dir: dir, LogSigner: signer, ReceiptKey: rkey,
		Policy: policy, Witnesses: wc, Logger: logger,
	})
	if err != nil {
		return err
	}
	ts.srv = &http.Server{Handler: scitt.NewHandler(ts.svc, scitt.HandlerOptions{Logger: logger}), ReadHeaderTimeout: 5 * time.Second}
	go ts.srv.Serve(ts.ln)
	return nil
}

// Close stops serving and closes the service.
func (ts *TransparencyService) Close() {
	if ts.srv == nil {
		ts.ln.Close()
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ts.srv.Shutdown(ctx)
	ts.svc.Close(ctx)
}

// Register signs each statement as the issuer, registers them all at once
// through SCRAPI (POST /entries, as any client would, so that they share
// Tessera batches and witnessing rounds), waits for their receipts and
// verifies each one offline against the service's receipt key.
func (ts *TransparencyService) Register(ctx context.Context, stmts []Statement) ([]Registration, error) {
	if ts.svc == nil {
		return nil, errors.New("transparency service not started")
	}
	base, err := url.Parse(ts.URL)
	if err != nil {
		return nil, err
	}
	out := make([]Registration, len(stmts))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for i, st := range stmts {
		g.Go(func() error {
			signed, err := scitt.SignStatement(ts.issuer, st.Subject, st.Kind, st.Payload, st.Opts)
			if err != nil {
				return err
			}
			loc, receipt, err := scitt.Register(gctx, base, signed)
			if err != nil {
				return fmt.Errorf("registering %s: %w", st.Subject, err)
			}
			if err := scitt.VerifyReceipt(signed, receipt, ts.rkey); err != nil {
				return fmt.Errorf("receipt for %s does not verify: %w", st.Subject, err)
			}
			r, err := scitt.ParseReceipt(receipt)
			if err != nil {
				return err
			}
			out[i] = Registration{Statement: signed, Receipt: receipt, Location: loc, Index: r.Proof.Index}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	ts.mu.Lock()
	ts.registered = append(ts.registered, out...)
	ts.mu.Unlock()
	return out, nil
}

// Registered returns every registration so far.
func (ts *TransparencyService) Registered() []Registration {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return append([]Registration(nil), ts.registered...)
}

// CloudStatements makes n statements about a made-up customer's cloud:
// inventories of its machines and their configurations, every other one a
// hash envelope (only the payload's digest goes in the log). Each call
// makes new ones, so none is a replay.
func (ts *TransparencyService) CloudStatements(n int) []Statement {
	ts.mu.Lock()
	first := ts.seq
	ts.seq += n
	ts.mu.Unlock()
	asOf := time.Now().UTC().Format(time.RFC3339)
	out := make([]Statement, n)
	for i := range out {
		k := first + i
		vm := fmt.Sprintf("vm-%d", k)
		if k%2 == 0 {
			out[i] = Statement{
				Subject: "acme/inventory/" + vm, Kind: "inventory", What: "inventory of " + vm,
				Payload: fmt.Appendf(nil, `{"provider":"cloud.testnet.vigil.example","customer":"acme","as_of":%q,"resources":[{"id":%q,"type":"compute.vm","region":"eu-west"}]}`, asOf, vm),
			}
			continue
		}
		out[i] = Statement{
			Subject: "acme/configuration/" + vm, Kind: "configuration", What: "configuration of " + vm + " (hash envelope)",
			Payload: fmt.Appendf(nil, `{"resource":%q,"as_of":%q,"config":{"disk_encryption":"aes-256","public_ip":false}}`, vm, asOf),
			Opts:    scitt.SignOptions{HashEnvelope: true, Location: "https://cloud.testnet.vigil.example/configs/" + vm},
		}
	}
	return out
}

// Witnessed is the service's published checkpoint and the roster witnesses
// whose cosignatures on it verify.
type Witnessed struct {
	Size      uint64
	Cosigners []string
	// QuorumMet reports whether Cosigners satisfy the roster's quorum.
	QuorumMet  bool
	Checkpoint []byte
}

// Witnessed reads the service's published checkpoint and checks its
// cosignatures against the roster.
func (ts *TransparencyService) Witnessed(ctx context.Context) (Witnessed, error) {
	if ts.svc == nil {
		return Witnessed{}, errors.New("transparency service not started")
	}
	cp, err := ts.svc.Reader().ReadCheckpoint(ctx)
	if err != nil {
		return Witnessed{}, err
	}
	c, n, err := tlog.VerifyCheckpoint(cp, ts.Origin, []note.Verifier{ts.logVerifier}, ts.roster.WitnessVerifiers()...)
	if err != nil {
		return Witnessed{}, fmt.Errorf("the service's own checkpoint: %w", err)
	}
	w := Witnessed{Size: c.Size, Checkpoint: cp}
	cosigned := map[string]bool{}
	for _, wi := range ts.roster.Witnesses() {
		if tlog.SignedBy(n, wi.Verifier) {
			cosigned[wi.Name] = true
			w.Cosigners = append(w.Cosigners, wi.Name)
		}
	}
	sort.Strings(w.Cosigners)
	w.QuorumMet = ts.roster.QuorumMet(cosigned)
	return w, nil
}

// describeRegistrations is one line about a set of registrations, for the
// script output.
func describeRegistrations(regs []Registration) string {
	if len(regs) == 0 {
		return "no statements"
	}
	lo, hi := regs[0].Index, regs[0].Index
	for _, r := range regs {
		lo, hi = min(lo, r.Index), max(hi, r.Index)
	}
	return fmt.Sprintf("%d statements registered over SCRAPI (entries %d-%d), %d COSE receipts verified offline", len(regs), lo, hi, len(regs))
}

// cosignersLine says who cosigned a witnessed checkpoint.
func cosignersLine(w Witnessed, witnesses, k int) string {
	met := "quorum met"
	if !w.QuorumMet {
		met = "quorum NOT met"
	}
	return fmt.Sprintf("checkpoint size %d cosigned by %d of %d witnesses (%s; %s, k=%d)",
		w.Size, len(w.Cosigners), witnesses, strings.Join(w.Cosigners, " "), met, k)
}

// tsDir is where a network's transparency service keeps its data.
func tsDir(nw *Network) string { return filepath.Join(nw.opts.Dir, "ts") }
