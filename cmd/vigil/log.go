package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/vigilnet/vigil/node"
	"github.com/vigilnet/vigil/scitt"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/sync/errgroup"
	"k8s.io/klog/v2"
)

// stringList is a repeatable flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, " ") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

// runLog runs a standalone transparency service (package scitt).
func runLog(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlagSet(env, "log", "--data DIR [--init --origin NAME] [flags]")
	listen := fs.String("listen", "127.0.0.1:7390", "HTTP listen address")
	data := fs.String("data", "", "data directory (log tiles with POSIX, audit trail, default key location)")
	keyPath := fs.String("key", "", "checkpoint (note) signing key file (default DIR/log.key)")
	receiptKeyPath := fs.String("receipt-key", "", "receipt signing key file, distinct from --key (default DIR/receipt.key)")
	policyPath := fs.String("policy", "", "registration policy YAML (without it every registration is rejected)")
	mysqlDSN := fs.String("mysql", "", "store the log in MySQL/MariaDB (go-sql-driver DSN) instead of DIR/log")
	var witnesses stringList
	fs.Var(&witnesses, "witness", "witness as URL,VKEY (repeatable); checkpoints are published once cosigned")
	witnessPolicy := fs.String("witness-policy", "", "witnesses as a tlog-policy file (instead of --witness)")
	quorum := fs.Int("witness-quorum", 0, "how many --witness must cosign (default all)")
	failOpen := fs.Bool("witness-fail-open", false, "publish checkpoints even when the witness quorum is not met")
	syncWait := fs.Duration("sync-wait", 2*time.Second, "how long POST /entries waits for a receipt before answering 303")
	adminTokenFile := fs.String("admin-token-file", "", "file holding the bearer token that may read GET /audit (without it /audit is off)")
	publicAudit := fs.Bool("public-audit", false, "serve GET /audit to anyone, without client addresses")
	auditMax := fs.Int64("audit-max-bytes", scitt.DefaultAuditMaxBytes, "cap on the audit trail's files together; the oldest records go first")
	initKeys := fs.Bool("init", false, "create the keys (if absent), print the verifier keys and exit")
	origin := fs.String("origin", "", "with --init: the log origin and service identity, e.g. example.com/log")
	receiptAlg := fs.String("receipt-alg", "eddsa", "with --init: the receipt key's algorithm, eddsa (Ed25519) or es256 (P-256)")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	tlsCert := fs.String("tls-cert", "", "serve HTTPS with this PEM certificate (chain) file; needs --tls-key")
	tlsKey := fs.String("tls-key", "", "PEM private key of --tls-cert")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 || *data == "" {
		fs.Usage()
		return errUsage
	}
	if *keyPath == "" {
		*keyPath = filepath.Join(*data, "log.key")
	}
	if *receiptKeyPath == "" {
		*receiptKeyPath = filepath.Join(*data, "receipt.key")
	}
	if *initKeys {
		if *origin == "" {
			fmt.Fprintln(env.stderr, "vigil log: --init needs --origin")
			return errUsage
		}
		gen := scitt.GenerateKey
		switch *receiptAlg {
		case "eddsa":
		case "es256":
			gen = scitt.GenerateES256Key
		default:
			fmt.Fprintln(env.stderr, "vigil log: --receipt-alg must be eddsa or es256")
			return errUsage
		}
		return initLogKeys(env, *data, *keyPath, *receiptKeyPath, *origin, gen)
	}
	var level slog.Level
	_ = level.UnmarshalText([]byte(*logLevel))
	logger := slog.New(slog.NewTextHandler(env.stderr, &slog.HandlerOptions{Level: level}))
	klog.SetSlogLogger(logger.With("component", "tessera")) // Tessera logs through klog

	skey, err := os.ReadFile(*keyPath)
	if err != nil {
		return fmt.Errorf("reading log key (create it with --init): %w", err)
	}
	signer, err := note.NewSigner(strings.TrimSpace(string(skey)))
	if err != nil {
		return fmt.Errorf("log key: %w", err)
	}
	rkey, err := readPrivateKey(*receiptKeyPath)
	if err != nil {
		return fmt.Errorf("receipt key: %w", err)
	}
	cfg := scitt.Config{Dir: *data, MySQLDSN: *mysqlDSN, LogSigner: signer, ReceiptKey: rkey, Logger: logger, AuditMaxBytes: *auditMax}
	hopts := scitt.HandlerOptions{SyncWait: *syncWait, Logger: logger, PublicAudit: *publicAudit}
	if *adminTokenFile != "" {
		b, err := os.ReadFile(*adminTokenFile)
		if err != nil {
			return fmt.Errorf("reading admin token: %w", err)
		}
		if hopts.AdminToken = strings.TrimSpace(string(b)); len(hopts.AdminToken) < 16 {
			return errors.New("admin token: at least 16 characters")
		}
	}
	if *policyPath != "" {
		if cfg.Policy, err = scitt.LoadPolicy(*policyPath); err != nil {
			return err
		}
	} else {
		logger.Warn("no --policy: every registration will be rejected")
	}
	switch {
	case *witnessPolicy != "":
		b, err := os.ReadFile(*witnessPolicy)
		if err != nil {
			return fmt.Errorf("reading witness policy: %w", err)
		}
		cfg.Witnesses = &scitt.WitnessConfig{Policy: b, FailOpen: *failOpen}
	case len(witnesses) > 0:
		wc := &scitt.WitnessConfig{Quorum: *quorum, FailOpen: *failOpen}
		for _, w := range witnesses {
			u, vk, ok := strings.Cut(w, ",")
			if !ok {
				return fmt.Errorf("--witness %q: want URL,VKEY", w)
			}
			wc.Witnesses = append(wc.Witnesses, scitt.Witness{URL: u, VKey: vk})
		}
		cfg.Witnesses = wc
	}
	metrics := scitt.NewMetrics()
	cfg.Metrics = metrics
	svc, err := scitt.New(ctx, cfg)
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(metrics.Metrics()...)
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	mux.Handle("/", scitt.NewHandler(svc, hopts))
	var certs *node.CertFiles
	if *tlsCert != "" || *tlsKey != "" {
		if *tlsCert == "" || *tlsKey == "" {
			_ = svc.Close(context.Background())
			fmt.Fprintln(env.stderr, "vigil log: --tls-cert and --tls-key go together")
			return errUsage
		}
		if certs, err = node.LoadCertFiles(*tlsCert, *tlsKey, logger); err != nil {
			_ = svc.Close(context.Background())
			return err
		}
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		_ = svc.Close(context.Background())
		return err
	}
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	scheme := "http"
	if certs != nil {
		scheme = "https"
		srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: certs.GetCertificate}
	}
	fmt.Fprintf(env.stdout, "vigil log %s listening on %s://%s\n", svc.Origin(), scheme, ln.Addr())
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		var err error
		if certs != nil {
			err = srv.ServeTLS(ln, "", "")
		} else {
			err = srv.Serve(ln)
		}
		if !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		err := srv.Shutdown(sctx)
		if cerr := svc.Close(sctx); err == nil {
			err = cerr
		}
		return err
	})
	return g.Wait()
}

func readPrivateKey(path string) (*scitt.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return scitt.ParsePrivateKey(string(b))
}

// writeNewKey writes a fresh key named name to path (0600) and its verifier
// key to path.pub, unless path exists. It returns the verifier key.
func writeNewKey(path, name string) (string, error) {
	return writeNewKeyWith(path, name, scitt.GenerateKey)
}

// writeNewKeyWith is writeNewKey with the key generator given.
func writeNewKeyWith(path, name string, generate func(io.Reader, string) (string, string, error)) (string, error) {
	if b, err := os.ReadFile(path); err == nil {
		k, err := scitt.ParsePrivateKey(string(b))
		if err != nil {
			return "", fmt.Errorf("%s exists but is not a key: %w", path, err)
		}
		return k.Public().String(), nil
	}
	skey, vkey, err := generate(rand.Reader, name)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", err
	}
	if _, err := fmt.Fprintln(f, skey); err != nil {
		f.Close()
		return "", err
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	return vkey, os.WriteFile(path+".pub", []byte(vkey+"\n"), 0o644)
}

func initLogKeys(env *cliEnv, data, keyPath, receiptKeyPath, origin string, receiptKey func(io.Reader, string) (string, string, error)) error {
	if err := os.MkdirAll(data, 0o755); err != nil {
		return err
	}
	logV, err := writeNewKey(keyPath, origin)
	if err != nil {
		return fmt.Errorf("log key: %w", err)
	}
	rV, err := writeNewKeyWith(receiptKeyPath, origin, receiptKey)
	if err != nil {
		return fmt.Errorf("receipt key: %w", err)
	}
	fmt.Fprintf(env.stdout, "log (checkpoint) verifier key: %s\nreceipt verifier key (for verify-receipt --log-key): %s\n", logV, rV)
	return nil
}
