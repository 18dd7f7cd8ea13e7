package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/vigilnet/vigil/node"
)

func runNode(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlagSet(env, "node", "[--config vigil.yaml] [flags]")
	configPath := fs.String("config", "", "YAML config file (optional; flags override it)")
	def := node.DefaultConfig()
	listen := fs.String("listen", def.Listen, "HTTP listen address")
	data := fs.String("data", def.DataDir, "data directory (Badger store)")
	keys := fs.String("keys", def.KeysDir, "keys directory (vigil keygen)")
	rosterPath := fs.String("roster", def.Roster, "roster file (C2SP tlog-policy)")
	allowNoLogs := fs.Bool("allow-no-logs", false, "start even if the roster names no log (the node then watches nothing)")
	allowReadableKeys := fs.Bool("allow-readable-keys", false, "accept private key files readable by group or others, with a warning")
	observer := fs.Bool("observer", false, "run without a cosigning key: follow, gossip and detect, never cosign")
	logLevel := fs.String("log-level", def.LogLevel, "debug, info, warn or error")
	tlsCert := fs.String("tls-cert", def.HTTP.TLSCert, "serve HTTPS with this PEM certificate (chain) file; needs --tls-key (config http.tls_cert)")
	tlsKey := fs.String("tls-key", def.HTTP.TLSKey, "PEM private key of --tls-cert (config http.tls_key)")
	recoverPeers := fs.Bool("recover-from-peers", false, "resume logs whose stored witness state was rolled back (a damaged write-ahead log) at the size and root of the witness journal")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		fs.Usage()
		return errUsage
	}
	cfg := def
	if *configPath != "" {
		var err error
		if cfg, err = node.LoadConfig(*configPath); err != nil {
			return err
		}
	}
	// Flags given explicitly override the file.
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "listen":
			cfg.Listen = *listen
		case "data":
			cfg.DataDir = *data
		case "keys":
			cfg.KeysDir = *keys
		case "roster":
			cfg.Roster = *rosterPath
		case "observer":
			cfg.Observer = *observer
		case "log-level":
			cfg.LogLevel = *logLevel
		case "allow-no-logs":
			cfg.AllowNoLogs = *allowNoLogs
		case "allow-readable-keys":
			cfg.AllowReadableKeys = *allowReadableKeys
		case "tls-cert":
			cfg.HTTP.TLSCert = *tlsCert
		case "tls-key":
			cfg.HTTP.TLSKey = *tlsKey
		case "recover-from-peers":
			cfg.RecoverFromPeers = *recoverPeers
		}
	})
	if err := cfg.Validate(); err != nil {
		return err
	}
	logger := newLogger(env, cfg.LogLevel)
	if cfg.MemoryLimitMB > 0 && os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(int64(cfg.MemoryLimitMB) << 20)
	}
	warnFDLimit(logger, cfg.HTTP.MaxConns)
	n, err := node.New(cfg, node.Deps{Logger: logger})
	if err != nil {
		return err
	}
	// Catch SIGHUP before announcing readiness: a reload requested as soon
	// as the node is up must not hit the default action, which kills it.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	// Gossip addresses first: whoever waits for "listening on" (the testnet,
	// scripts) can then bootstrap other nodes from them.
	if g := n.Gossip(); g != nil {
		for _, a := range g.Host().Addrs() {
			fmt.Fprintf(env.stdout, "vigil node gossip %s/p2p/%s\n", a, g.ID())
		}
	}
	fmt.Fprintf(env.stdout, "vigil node listening on %s\n", n.URL())
	go func() {
		for {
			select {
			case <-hup:
				if err := n.ReloadRoster(); err != nil {
					logger.Error("roster reload failed; keeping the old roster", "err", err)
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	return n.Run(ctx)
}

// warnFDLimit warns when the process's file descriptor limit leaves too
// little room beside the HTTP connection cap: libp2p's resource manager
// takes up to half of the limit, and Badger and the listeners need some.
func warnFDLimit(log *slog.Logger, maxConns int) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return
	}
	if need := 2*maxConns + 128; lim.Cur < uint64(need) {
		log.Warn("the file descriptor limit is low for http.max_conns; raise it (LimitNOFILE=) or lower max_conns", "nofile", lim.Cur, "max_conns", maxConns, "want_at_least", need)
	}
}

func newLogger(env *cliEnv, level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	return slog.New(slog.NewTextHandler(env.stderr, &slog.HandlerOptions{Level: l}))
}
