package scitt_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/vigilnet/vigil/scitt"
	"golang.org/x/mod/sumdb/note"
)

// crashChildEnv makes the test binary run a bare transparency service
// (TestCrashChild) for TestCrash to kill.
const crashChildEnv = "VIGIL_SCITT_CRASH_CHILD_DIR"

// TestCrashChild is the child process of TestCrash; it is skipped otherwise.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashChildEnv)
	if dir == "" {
		t.Skip("child process of TestCrash only")
	}
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	signer, err := note.NewSigner(read("log.key"))
	if err != nil {
		t.Fatal(err)
	}
	rk, err := scitt.ParsePrivateKey(read("receipt.key"))
	if err != nil {
		t.Fatal(err)
	}
	pol, err := scitt.ParsePolicy([]byte(read("policy.yaml")))
	if err != nil {
		t.Fatal(err)
	}
	svc, err := scitt.New(context.Background(), scitt.Config{Dir: filepath.Join(dir, "data"), LogSigner: signer, ReceiptKey: rk, Policy: pol})
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: scitt.NewHandler(svc, scitt.HandlerOptions{RatePerClient: -1, SyncWait: 50 * time.Millisecond})}
	ln, err := listenLoopback()
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("LISTENING http://%s\n", ln.Addr())
	_ = srv.Serve(ln) // until SIGKILL
}

// TestCrash SIGKILLs a service under load and checks that every
// registration it acknowledged (201, or 303 after durable sequencing)
// is in the log after a restart, with a receipt that verifies.
func TestCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns a child process")
	}
	e := newEnv(t)
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(e.dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	rskey, _, _ := scitt.GenerateKey(strings.NewReader(strings.Repeat("r", 64)), "ts.vigil.test")
	var err error
	if e.receipt, err = scitt.ParsePrivateKey(rskey); err != nil {
		t.Fatal(err)
	}
	write("log.key", e.logSKey)
	write("receipt.key", rskey)
	write("policy.yaml", fmt.Sprintf("issuers:\n  - name: provider.example\n    keys: [%q]\n    kinds: [inventory]\n", e.issuer.Public().String()))

	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.v")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+e.dir)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	var base string
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if u, ok := strings.CutPrefix(sc.Text(), "LISTENING "); ok {
			base = u
			break
		}
	}
	go func() {
		for sc.Scan() {
		}
		_ = cmd.Wait()
		close(exited)
	}()
	if base == "" {
		t.Fatal("child did not start")
	}

	// Load from 32 clients; kill the child once 300 are acknowledged.
	var acked sync.Map // statement index → entry id
	var nAcked atomic.Int64
	killed := make(chan struct{})
	var killOnce sync.Once
	var wg sync.WaitGroup
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }, Timeout: 20 * time.Second}
	var next atomic.Int64
	for range 32 {
		wg.Go(func() {
			for {
				select {
				case <-killed:
					return
				default:
				}
				i := int(next.Add(1))
				stmt, err := scitt.SignStatement(e.issuer, fmt.Sprint("urn:crash:", i), scitt.KindInventory, payload(scitt.KindInventory, i), scitt.SignOptions{})
				if err != nil {
					t.Error(err) // not Fatal: this is not the test goroutine
					return
				}
				resp, err := client.Post(base+"/entries", "application/cose", strings.NewReader(string(stmt)))
				if err != nil {
					return // the child is gone
				}
				resp.Body.Close()
				if resp.StatusCode == http.StatusCreated || resp.StatusCode == http.StatusSeeOther {
					acked.Store(i, stmt)
					if nAcked.Add(1) >= 300 {
						killOnce.Do(func() {
							_ = cmd.Process.Signal(syscall.SIGKILL)
							close(killed)
						})
					}
				}
			}
		})
	}
	select {
	case <-killed:
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("not enough registrations acknowledged")
	}
	<-exited
	wg.Wait()

	e.dir = filepath.Join(e.dir, "data")
	svc, _ := e.start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	n := 0
	acked.Range(func(k, v any) bool {
		stmt := v.([]byte)
		entry, _ := scitt.EntryFor(stmt)
		id := fmt.Sprintf("%x", scitt.LeafHash(entry))
		var rcpt []byte
		var err error
		for {
			if rcpt, err = svc.Receipt(ctx, id); !errors.Is(err, scitt.ErrPending) || ctx.Err() != nil {
				break
			}
			<-pollTick.C // the restarted log publishes its first checkpoint
		}
		if err != nil {
			t.Errorf("acknowledged statement %d lost after the crash: %v", k, err)
			return true
		}
		if err := scitt.VerifyReceipt(stmt, rcpt, e.receipt.Public()); err != nil {
			t.Errorf("statement %d: %v", k, err)
		}
		n++
		return true
	})
	t.Logf("%d acknowledged registrations survived SIGKILL", n)
}
