package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/vigilnet/vigil/node"
	"github.com/vigilnet/vigil/store"
	"github.com/vigilnet/vigil/testnet/scriptlog"
	"github.com/vigilnet/vigil/tlog"
	"github.com/vigilnet/vigil/witness"
)

// startFeedCmdNode runs an in-process witness node on 127.0.0.1 whose
// roster lists one log, the node's own key and one other witness; the node
// has cosigned the log at size 9. db is the node's store.
func startFeedCmdNode(t *testing.T, configure ...func(*node.Config)) (url, rosterPath string, l *scriptlog.Log, db *store.DB) {
	t.Helper()
	dir := t.TempDir()
	l, err := scriptlog.New("example.com/cmdlog")
	if err != nil {
		t.Fatal(err)
	}
	skey, vkey, err := tlog.GenerateCosignerKey(rand.Reader, "self.example")
	if err != nil {
		t.Fatal(err)
	}
	_, otherVKey, _ := tlog.GenerateCosignerKey(rand.Reader, "other.example")
	signer, _ := tlog.NewCosignatureSigner(skey, nil)
	p2p, _, _ := crypto.GenerateEd25519Key(rand.Reader)
	rosterPath = filepath.Join(dir, "roster")
	policy := fmt.Sprintf("log %s\nwitness self %s\nwitness other %s\n", l.VerifierKey(), vkey, otherVKey)
	if err := os.WriteFile(rosterPath, []byte(policy), 0o644); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := node.DefaultConfig()
	cfg.Listen, cfg.DataDir, cfg.Roster = ln.Addr().String(), filepath.Join(dir, "data"), rosterPath
	for _, c := range configure {
		c(&cfg)
	}
	db, err = store.Open(cfg.DataDir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	n, err := node.New(cfg, node.Deps{Listener: ln, Store: db, Keys: &node.Keys{Cosigner: signer, P2P: p2p}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; db.Close() })
	l.AppendN(9, "a")
	cp, _ := l.Checkpoint()
	if _, err := n.Witness().AddCheckpoint(ctx, &witness.AddCheckpointRequest{OldSize: 0, Checkpoint: cp}); err != nil {
		t.Fatal(err)
	}
	return n.URL(), rosterPath, l, db
}

func TestStatusAndCheckpointCommands(t *testing.T) {
	url, rosterPath, l, _ := startFeedCmdNode(t)
	run := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := vigilMain(args, &out, &errb)
		return code, out.String(), errb.String()
	}
	code, out, errs := run("status", "--node", url)
	if code != 0 {
		t.Fatalf("status: exit %d: %s", code, errs)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "ORIGIN") {
		t.Fatalf("status output:\n%s", out)
	}
	f := strings.Fields(lines[1])
	if f[0] != l.Origin() || f[1] != "9" || f[2] != "1/2" || f[3] != "self" || f[len(f)-2] != "0" || f[len(f)-1] != "ok" {
		t.Errorf("status row: %q", lines[1])
	}
	cp, _ := l.Checkpoint()
	tests := []struct {
		name string
		args []string
		code int
		out  string // prefix of stdout
		err  string // substring of stderr
	}{
		{"k=1 verified", []string{"checkpoint", l.Origin(), "--k", "1", "--node", url, "--roster", rosterPath}, 0, string(cp[:strings.Index(string(cp), "\n\n")]), "cosigned by 1 roster witnesses [self]"},
		{"origin after the flags", []string{"checkpoint", "--node", url, l.Origin()}, 0, l.Origin() + "\n9\n", ""},
		{"k=2 not yet", []string{"checkpoint", l.Origin(), "--k", "2", "--node", url}, 1, "", "no checkpoint of example.com/cmdlog with at least 2 roster cosignatures"},
		{"unknown log", []string{"checkpoint", "example.com/other", "--node", url}, 1, "", "unknown log"},
		{"roster lacks the log", []string{"checkpoint", l.Origin(), "--node", url, "--roster", writeFile(t, "log "+otherLogVKey(t)+"\n")}, 1, "", "does not list log"},
		{"no origin", []string{"checkpoint", "--node", url}, 2, "", "usage"},
		{"negative k", []string{"checkpoint", l.Origin(), "--k", "-1", "--node", url}, 2, "", "negative"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errs := run(tc.args...)
			if code != tc.code || !strings.HasPrefix(out, tc.out) || !strings.Contains(errs, tc.err) {
				t.Errorf("exit %d, stdout %q, stderr %q", code, out, errs)
			}
		})
	}
}

func writeFile(t *testing.T, s string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func otherLogVKey(t *testing.T) string {
	t.Helper()
	l, err := scriptlog.New("example.com/else")
	if err != nil {
		t.Fatal(err)
	}
	return l.VerifierKey()
}
