package store_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/vigilnet/vigil/store"
)

// childEnv names the data directory a re-executed test binary writes
// witness updates to until it is killed.
const childEnv = "VIGIL_STORE_CRASH_CHILD"

const childLogs = 200

func childOrigin(i int) string { return fmt.Sprintf("example.com/log%03d", i) }

func childRoot(origin string, size uint64) [32]byte {
	return sha256.Sum256(fmt.Appendf(nil, "%s %d", origin, size))
}

// runWriterChild updates the witness state of childLogs logs, size by
// size, from 8 goroutines, printing "ack origin size" once each update is
// acknowledged (durable), until killed.
func runWriterChild(dir string) int {
	db, err := store.Open(dir, store.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				for i := g; i < childLogs; i += 8 {
					origin := childOrigin(i)
					var size uint64
					err := db.UpdateWitnessState(context.Background(), origin, func(old store.WitnessState, _ bool) (store.WitnessState, error) {
						size = old.Size + 1
						return store.WitnessState{Size: size, Root: childRoot(origin, size), Checkpoint: make([]byte, 100)}, nil
					})
					if err != nil {
						fmt.Fprintln(os.Stderr, err)
						os.Exit(3)
					}
					mu.Lock()
					fmt.Fprintf(os.Stdout, "ack %s %d\n", origin, size)
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	return 0
}

// killedWriter runs a writer child on dir and SIGKILLs it once it has
// acknowledged at least n updates; it returns the largest acknowledged
// size of each log.
func killedWriter(t *testing.T, dir string, n int) map[string]uint64 {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), childEnv+"="+dir)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := map[string]uint64{}
	sc := bufio.NewScanner(out)
	count, killed := 0, false
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 3 || f[0] != "ack" {
			continue
		}
		size, err := strconv.ParseUint(f[2], 10, 64)
		if err != nil {
			t.Fatalf("child printed %q", sc.Text())
		}
		acked[f[1]] = max(acked[f[1]], size)
		if count++; count >= n && !killed {
			cmd.Process.Signal(syscall.SIGKILL)
			killed = true
		}
	}
	err = cmd.Wait()
	if !killed {
		t.Fatalf("writer child ended before it was killed: %v\n%s", err, stderr.String())
	}
	if len(acked) != childLogs {
		t.Fatalf("child acknowledged %d logs, want %d", len(acked), childLogs)
	}
	return acked
}
