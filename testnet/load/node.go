package load

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/vigilnet/vigil/node"
)

// WitnessName is the cosigner name of nodes started by StartNode.
const WitnessName = "bench.vigil.example/witness"

// Node is a witness node running in this process for a self-contained run:
// real Badger store on disk (SyncWrites), real HTTP server on 127.0.0.1.
type Node struct {
	// URL is the node's base URL.
	URL string
	// VKey is the node's first cosigner verifier key: Ed25519 unless it
	// signs with ML-DSA-44 only (witness.cosignature_types: mldsa).
	VKey string
	// VKeys are the verifier keys of every cosignature type it signs with,
	// in the order of its add-checkpoint lines (Ed25519 first).
	VKeys []string
	// Node is the running node.
	Node *node.Node

	cancel context.CancelFunc
	done   chan error
}

// StartNode generates keys in dir, writes the policy roster there and starts
// a witness node on 127.0.0.1:0 with its store in dir and no per-log rate
// limit. logger may be nil.
func StartNode(dir string, policy []byte, logger *slog.Logger) (*Node, error) {
	return StartNodeWith(dir, policy, logger, nil)
}

// StartNodeWith is StartNode with tune, if not nil, adjusting the node's
// configuration before it starts (benchmarks compare settings with it).
func StartNodeWith(dir string, policy []byte, logger *slog.Logger, tune func(*node.Config)) (*Node, error) {
	keysDir := filepath.Join(dir, "keys")
	vkeys, err := node.GenerateAllKeys(keysDir, WitnessName)
	if err != nil {
		return nil, err
	}
	rosterPath := filepath.Join(dir, "roster.policy")
	if err := os.WriteFile(rosterPath, policy, 0o644); err != nil {
		return nil, fmt.Errorf("writing roster: %w", err)
	}
	cfg := node.DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.DataDir = filepath.Join(dir, "data")
	cfg.KeysDir = keysDir
	cfg.Roster = rosterPath
	cfg.Witness = node.WitnessConfig{} // unlimited: measure the witness, not its limiter
	// A bench node may start before its roster names the workload's logs
	// (vigil bench witness --url writes it, then the node reloads it).
	cfg.AllowNoLogs = true
	if tune != nil {
		tune(&cfg)
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("listening: %w", err)
	}
	n, err := node.New(cfg, node.Deps{Listener: ln, Logger: logger})
	if err != nil {
		ln.Close()
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	nd := &Node{URL: n.URL(), VKeys: signedVKeys(vkeys, cfg.Witness.CosignatureTypes), Node: n, cancel: cancel, done: make(chan error, 1)}
	nd.VKey = nd.VKeys[0]
	go func() { nd.done <- n.Run(ctx) }()
	return nd, nil
}

// Close shuts the node down and closes its store.
func (n *Node) Close() error {
	n.cancel()
	return <-n.done
}

// signedVKeys lists the verifier keys of the cosignature types a witness
// configured with types signs with (empty is the default, both).
func signedVKeys(v node.VKeys, types string) []string {
	switch types {
	case node.CosignEd25519:
		return []string{strings.TrimSpace(v.Ed25519)}
	case node.CosignMLDSA:
		return []string{strings.TrimSpace(v.MLDSA)}
	default:
		return []string{strings.TrimSpace(v.Ed25519), strings.TrimSpace(v.MLDSA)}
	}
}
