package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"

	"github.com/vigilnet/vigil/testnet/scriptlog"
)

// TestMain exposes `vigil` to the scripts: the test binary, copied into
// $PATH as vigil, runs vigilMain when invoked under that name.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"vigil": func() { os.Exit(vigilMain(os.Args[1:], os.Stdout, os.Stderr)) },
	})
}

// waitTimeout bounds every wait for a node (start, log line, exit).
const waitTimeout = 30 * time.Second

func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		RequireExplicitExec: true,
		Setup: func(env *testscript.Env) error {
			st := &scriptState{nodes: map[string]*bgNode{}, logs: map[string]*scriptLog{}}
			env.Values[stateKey{}] = st
			env.Defer(st.killAll)
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"exitcode":      cmdExitCode,
			"startnode":     cmdStartNode,
			"stopnode":      cmdStopNode,
			"signalnode":    cmdSignalNode,
			"waitlog":       cmdWaitLog,
			"mklog":         cmdMkLog,
			"addcheckpoint": cmdAddCheckpoint,
		},
	})
}

type stateKey struct{}

// scriptState is one script's background nodes and scripted logs.
type scriptState struct {
	mu    sync.Mutex
	nodes map[string]*bgNode
	logs  map[string]*scriptLog
}

type scriptLog struct {
	*scriptlog.Log
	cosigned uint64 // the size last cosigned by a 200
}

func state(ts *testscript.TestScript) *scriptState { return ts.Value(stateKey{}).(*scriptState) }

// killAll stops any node a failed script left running (its own processes only).
func (s *scriptState) killAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range s.nodes {
		select {
		case <-n.exited:
		default:
			n.cmd.Process.Kill()
			<-n.exited
		}
	}
}

// vigilPath finds the vigil binary testscript.Main put in $PATH.
func vigilPath(ts *testscript.TestScript) string {
	p, err := exec.LookPath("vigil")
	ts.Check(err)
	return p
}

// exitcode N [args...]: run vigil with args and require exit status N; its
// stdout and stderr become the command's, for stdout/stderr checks.
func cmdExitCode(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 1 {
		ts.Fatalf("usage: exitcode N [args...]")
	}
	want, err := strconv.Atoi(args[0])
	ts.Check(err)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, vigilPath(ts), args[1:]...)
	cmd.Dir = ts.MkAbs(".")
	cmd.Stdout, cmd.Stderr = ts.Stdout(), ts.Stderr()
	err = cmd.Run()
	got := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		got = ee.ExitCode()
	case err != nil:
		ts.Fatalf("running vigil: %v", err)
	}
	if got != want {
		ts.Fatalf("vigil %s: exit status %d, want %d", strings.Join(args[1:], " "), got, want)
	}
}

// watchedBuffer collects a process's output and wakes waiters on each write.
type watchedBuffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{}
}

func newWatchedBuffer() *watchedBuffer { return &watchedBuffer{changed: make(chan struct{})} }

func (w *watchedBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	close(w.changed)
	w.changed = make(chan struct{})
	return len(p), nil
}

func (w *watchedBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// wait returns the first match of re in the output, waiting until it
// appears, the process exits or the deadline passes.
func (w *watchedBuffer) wait(re *regexp.Regexp, exited <-chan struct{}) ([]string, error) {
	deadline := time.NewTimer(waitTimeout)
	defer deadline.Stop()
	for {
		w.mu.Lock()
		m := re.FindStringSubmatch(w.buf.String())
		changed := w.changed
		w.mu.Unlock()
		if m != nil {
			return m, nil
		}
		select {
		case <-changed:
		case <-exited:
			if m := re.FindStringSubmatch(w.String()); m != nil {
				return m, nil
			}
			return nil, fmt.Errorf("process exited before printing %q", re)
		case <-deadline.C:
			return nil, fmt.Errorf("no %q within %v", re, waitTimeout)
		}
	}
}

// bgNode is a `vigil node` process running in the background.
type bgNode struct {
	cmd            *exec.Cmd
	stdout, stderr *watchedBuffer
	exited         chan struct{}
	err            error // from Wait, valid once exited is closed
}

var listeningRE = regexp.MustCompile(`vigil node listening on (http://127\.0\.0\.1:[0-9]+)\n`)

var gossipRE = regexp.MustCompile(`vigil node gossip (/ip4/[0-9.]+/tcp/[0-9]+)/p2p/`)

// startnode NAME [node flags...]: start `vigil node` in the background, wait
// for its "listening on" line and set $NAME_URL to its base URL.
func cmdStartNode(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 1 {
		ts.Fatalf("usage: startnode NAME [flags...]")
	}
	st := state(ts)
	name := args[0]
	n := &bgNode{stdout: newWatchedBuffer(), stderr: newWatchedBuffer(), exited: make(chan struct{})}
	n.cmd = exec.Command(vigilPath(ts), append([]string{"node"}, args[1:]...)...)
	n.cmd.Dir = ts.MkAbs(".")
	n.cmd.Stdout, n.cmd.Stderr = n.stdout, n.stderr
	ts.Check(n.cmd.Start())
	go func() {
		n.err = n.cmd.Wait()
		close(n.exited)
	}()
	st.mu.Lock()
	if old, ok := st.nodes[name]; ok {
		select {
		case <-old.exited:
		default:
			st.mu.Unlock()
			ts.Fatalf("node %s is already running", name)
		}
	}
	st.nodes[name] = n
	st.mu.Unlock()
	m, err := n.stdout.wait(listeningRE, n.exited)
	if err != nil {
		ts.Logf("node stderr:\n%s", n.stderr)
		ts.Fatalf("starting node %s: %v", name, err)
	}
	ts.Setenv(name+"_URL", m[1])
	// The gossip address, without /p2p/<ID>, lets a script start a second
	// node on the same one.
	if g := gossipRE.FindStringSubmatch(n.stdout.String()); g != nil {
		ts.Setenv(name+"_GOSSIP", g[1])
	}
	ts.Logf("node %s listening on %s", name, m[1])
}

func nodeNamed(ts *testscript.TestScript, name string) *bgNode {
	st := state(ts)
	st.mu.Lock()
	defer st.mu.Unlock()
	n, ok := st.nodes[name]
	if !ok {
		ts.Fatalf("no node %s", name)
	}
	return n
}

// signalnode NAME HUP|INT|TERM: send a signal to the node's process.
func cmdSignalNode(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: signalnode NAME HUP|INT|TERM")
	}
	sig, ok := map[string]os.Signal{"HUP": syscall.SIGHUP, "INT": os.Interrupt, "TERM": syscall.SIGTERM}[args[1]]
	if !ok {
		ts.Fatalf("unknown signal %q", args[1])
	}
	ts.Check(nodeNamed(ts, args[0]).cmd.Process.Signal(sig))
}

// waitlog NAME REGEXP: wait until the node's stderr (its slog output)
// matches REGEXP.
func cmdWaitLog(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: waitlog NAME REGEXP")
	}
	re, err := regexp.Compile(args[1])
	ts.Check(err)
	n := nodeNamed(ts, args[0])
	if _, err := n.stderr.wait(re, n.exited); err != nil {
		ts.Logf("node stderr:\n%s", n.stderr)
		ts.Fatalf("node %s: %v", args[0], err)
	}
}

// stopnode NAME: SIGTERM the node, wait for it and require a clean exit
// (with !, a failed one); the node's stdout and stderr become the command's.
func cmdStopNode(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: stopnode NAME")
	}
	n := nodeNamed(ts, args[0])
	select {
	case <-n.exited:
	default:
		ts.Check(n.cmd.Process.Signal(syscall.SIGTERM))
	}
	select {
	case <-n.exited:
	case <-time.After(waitTimeout):
		n.cmd.Process.Kill()
		<-n.exited
		ts.Fatalf("node %s did not stop on SIGTERM", args[0])
	}
	io.WriteString(ts.Stdout(), n.stdout.String())
	io.WriteString(ts.Stderr(), n.stderr.String())
	if neg != (n.err != nil) {
		ts.Fatalf("node %s exited with %v", args[0], n.err)
	}
}

// mklog NAME ORIGIN ROSTERFILE: create a scripted log and append its
// `log <vkey>` line to the roster file.
func cmdMkLog(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: mklog NAME ORIGIN ROSTERFILE")
	}
	l, err := scriptlog.New(args[1])
	ts.Check(err)
	f, err := os.OpenFile(ts.MkAbs(args[2]), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	ts.Check(err)
	_, err = fmt.Fprintf(f, "log %s\n", l.VerifierKey())
	ts.Check(err)
	ts.Check(f.Close())
	st := state(ts)
	st.mu.Lock()
	st.logs[args[0]] = &scriptLog{Log: l}
	st.mu.Unlock()
}

// addcheckpoint [-old N] LOG SIZE URL VKEYFILE: grow LOG to SIZE and push
// its checkpoint, with a consistency proof from the old size (default: the
// size last cosigned), to URL/add-checkpoint. Prints "status <code>" and the
// body. A 200 must carry a cosignature that verifies with the key in
// VKEYFILE (x/mod note + transparency-dev/formats' cosignature verifier,
// Ed25519 or ML-DSA-44);
// anything but 200 fails unless negated.
func cmdAddCheckpoint(ts *testscript.TestScript, neg bool, args []string) {
	fs := flag.NewFlagSet("addcheckpoint", flag.ContinueOnError)
	old := fs.Int64("old", -1, "old size (default: the last cosigned size)")
	if err := fs.Parse(args); err != nil || fs.NArg() != 4 {
		ts.Fatalf("usage: addcheckpoint [-old N] LOG SIZE URL VKEYFILE")
	}
	st := state(ts)
	st.mu.Lock()
	l, ok := st.logs[fs.Arg(0)]
	st.mu.Unlock()
	if !ok {
		ts.Fatalf("no log %s", fs.Arg(0))
	}
	size, err := strconv.ParseUint(fs.Arg(1), 10, 64)
	ts.Check(err)
	oldSize := l.cosigned
	if *old >= 0 {
		oldSize = uint64(*old)
	}
	if cur := l.Size(); cur < size {
		l.AppendN(int(size-cur), "entry")
	}
	cp, err := l.CheckpointAt(size)
	ts.Check(err)
	proof, err := l.ConsistencyProof(min(oldSize, size), size)
	ts.Check(err)
	var body bytes.Buffer
	fmt.Fprintf(&body, "old %d\n", oldSize)
	for _, h := range proof {
		fmt.Fprintf(&body, "%s\n", base64.StdEncoding.EncodeToString(h))
	}
	body.WriteString("\n")
	body.Write(cp)

	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, fs.Arg(2)+"/add-checkpoint", &body)
	ts.Check(err)
	resp, err := http.DefaultClient.Do(req)
	ts.Check(err)
	defer resp.Body.Close()
	respBody, err := io.ReadAll(resp.Body)
	ts.Check(err)
	fmt.Fprintf(ts.Stdout(), "status %d\n%s", resp.StatusCode, respBody)

	if resp.StatusCode != http.StatusOK {
		if !neg {
			ts.Fatalf("add-checkpoint: status %d: %s", resp.StatusCode, respBody)
		}
		return
	}
	if neg {
		ts.Fatalf("add-checkpoint unexpectedly cosigned")
	}
	vkey := strings.TrimSpace(ts.ReadFile(fs.Arg(3)))
	witV, err := fnote.NewVerifierForCosignatureV1(vkey)
	ts.Check(err)
	logV, err := note.NewVerifier(l.VerifierKey())
	ts.Check(err)
	n, err := note.Open(append(cp, respBody...), note.VerifierList(logV, witV))
	if err != nil {
		ts.Fatalf("cosignature does not verify with %s: %v", fs.Arg(3), err)
	}
	if len(n.Sigs) != 2 {
		ts.Fatalf("%d verified signatures, want the log's and the witness's", len(n.Sigs))
	}
	fmt.Fprintf(ts.Stdout(), "verified cosignature by %s\n", witV.Name())
	l.cosigned = size
}
