package testnet_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/vigilnet/vigil/testnet"
	"github.com/vigilnet/vigil/testnet/tesseralog"
)

// splitCase is a different-size split view: two Tessera logs with one key,
// sharing their first shared entries, grown to sizes small and large; half
// A of the network follows the small one, half B the large one.
type splitCase struct {
	name         string
	shared       int
	small, large int
	// largerFirst shows the network the large view before the small one.
	largerFirst bool
}

// tesseraSplitCases is one split view of each shape: no shared entry, a
// shared prefix, a power-of-two smaller size, either side first.
var tesseraSplitCases = []splitCase{
	{"no shared entries 5 vs 9 smaller first", 0, 5, 9, false},
	{"shared prefix 8 vs 15 larger first", 3, 8, 15, true},
	{"shared prefix 8 vs 15 smaller first", 3, 8, 15, false},
}

// tesseraSoakCases are every other combination, and sizes that cross a
// tile.
var tesseraSoakCases = []splitCase{
	{"no shared entries 5 vs 9 larger first", 0, 5, 9, true},
	{"shared prefix 5 vs 9 larger first", 3, 5, 9, true},
	{"shared prefix 5 vs 9 smaller first", 3, 5, 9, false},
	{"no shared entries 8 vs 15 larger first", 0, 8, 15, true},
	{"no shared entries 8 vs 15 smaller first", 0, 8, 15, false},
	{"no shared entries 1 vs 2 larger first", 0, 1, 2, true},
	{"shared prefix 256 vs 300 larger first", 100, 256, 300, true},
	{"shared prefix 256 vs 300 smaller first", 100, 256, 300, false},
}

// TestTesseraNetwork is the guarantee's acceptance test on real parts: logs
// run by Tessera v1.0.4's POSIX storage, served as tlog-tiles over HTTP,
// followed by a network of `vigil node` processes. An honest log that
// starts empty and grows raises no suspicion anywhere and is cosigned by a
// quorum; every different-size split view, each view shown to half of the
// network, becomes evidence at every node that `vigil verify` accepts.
func TestTesseraNetwork(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a network of processes")
	}
	runTesseraNetwork(t, tesseraSplitCases)
}

// TestSoakTesseraNetwork is TestTesseraNetwork with every split-view shape
// (make soak, VIGIL_SOAK=1).
func TestSoakTesseraNetwork(t *testing.T) {
	if os.Getenv("VIGIL_SOAK") == "" {
		t.Skip("set VIGIL_SOAK=1 (make soak)")
	}
	runTesseraNetwork(t, append(tesseraSplitCases[:len(tesseraSplitCases):len(tesseraSplitCases)], tesseraSoakCases...))
}

func runTesseraNetwork(t *testing.T, cases []splitCase) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	bin, err := buildVigil()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()

	honestOrigin := "tessera.testnet.vigil.example/honest"
	honestKey, honestVKey := newLogKey(t, honestOrigin)
	honest := startTessera(ctx, t, filepath.Join(dir, "honest"), honestKey)
	type split struct {
		splitCase
		origin, vkey string
		a, b         *tesseralog.Log
	}
	var splits []split
	for i, c := range cases {
		origin := fmt.Sprintf("tessera.testnet.vigil.example/split-%d", i)
		skey, vkey := newLogKey(t, origin)
		a := startTessera(ctx, t, filepath.Join(dir, fmt.Sprintf("split-%d-a", i)), skey)
		b := startTessera(ctx, t, filepath.Join(dir, fmt.Sprintf("split-%d-b", i)), skey)
		splits = append(splits, split{c, origin, vkey, a, b})
	}
	// Members 0 and 1 are half A, the rest (witnesses 2 and 3, observer
	// 4) half B. The network's roster (for vigil verify) lists view A.
	const witnesses, observers = 4, 1
	logsFor := func(i int) []testnet.LogEntry {
		out := []testnet.LogEntry{{VKey: honestVKey, URL: honest.URL}}
		for _, s := range splits {
			u := s.b.URL
			if i < 2 {
				u = s.a.URL
			}
			out = append(out, testnet.LogEntry{VKey: s.vkey, URL: u})
		}
		return out
	}
	stderr := &syncBuffer{}
	began := time.Now()
	nw, err := testnet.Start(ctx, testnet.Options{
		Dir: filepath.Join(dir, "net"), Binary: bin, Witnesses: witnesses, Observers: observers,
		Logs: logsFor(-1), MemberLogs: logsFor, FollowInterval: 100 * time.Millisecond, Stderr: stderr,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer nw.Stop()
	defer func() {
		if t.Failed() {
			t.Logf("node logs:\n%s", lastLines(stderr.String(), 200))
		}
	}()
	if err := nw.WaitMeshed(ctx, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d vigil processes meshed in %s", witnesses+observers, time.Since(began).Round(time.Millisecond))

	t.Run("honest", func(t *testing.T) {
		size := 0
		for step, n := range []int{0, 1, 3, 12} {
			if n > 0 {
				if _, err := honest.Append(ctx, entries(honestOrigin, "", size, size+n)...); err != nil {
					t.Fatal(err)
				}
				size += n
			}
			if err := nw.WaitCosigned(ctx, honestOrigin, uint64(size), nw.Quorum(), 30*time.Second); err != nil {
				t.Fatalf("step %d (size %d): %v", step, size, err)
			}
			for i, m := range nw.Members {
				s, err := nw.Suspicions(ctx, i)
				if err != nil {
					t.Fatal(err)
				}
				if s != 0 {
					t.Fatalf("step %d (size %d): %s counts %v suspicions of an honest log", step, size, m.Name, s)
				}
			}
			for i, m := range nw.Members {
				ev, err := nw.Evidence(ctx, i)
				if err != nil {
					t.Fatal(err)
				}
				if len(ev) > 0 {
					t.Fatalf("%s holds evidence about an honest log: %+v", m.Name, ev[0])
				}
			}
		}
	})

	t.Run("split", func(t *testing.T) {
		for _, s := range splits {
			t.Run(s.name, func(t *testing.T) {
				t.Parallel()
				began := time.Now()
				if s.shared > 0 {
					shared := entries(s.origin, "shared", 0, s.shared)
					for _, l := range []*tesseralog.Log{s.a, s.b} {
						if _, err := l.Append(ctx, shared...); err != nil {
							t.Fatal(err)
						}
					}
					// Both halves cosign the shared prefix: one checkpoint.
					if err := nw.WaitCosigned(ctx, s.origin, uint64(s.shared), witnesses, 30*time.Second); err != nil {
						t.Fatal(err)
					}
				}
				grow := func(l *tesseralog.Log, side string, size int) {
					t.Helper()
					if _, err := l.Append(ctx, entries(s.origin, side, s.shared, size)...); err != nil {
						t.Fatal(err)
					}
				}
				first, second := s.a, s.b
				firstSide, secondSide, firstSize, secondSize := "A", "B", s.small, s.large
				if s.largerFirst {
					first, second = second, first
					firstSide, secondSide, firstSize, secondSize = secondSide, firstSide, secondSize, firstSize
				}
				grow(first, firstSide, firstSize)
				// The whole network holds the first view, cosigned by
				// the half that follows it, before the second exists.
				if err := nw.WaitCosigned(ctx, s.origin, uint64(firstSize), 2, 30*time.Second); err != nil {
					t.Fatal(err)
				}
				grow(second, secondSide, secondSize)
				if s.b.HasTile(0, 0, uint8(s.small)) && s.small < 256 && s.small != s.shared {
					t.Fatalf("view B holds tile/0/000.p/%d: it should have no partial tile of the smaller size", s.small)
				}
				found, err := nw.WaitEvidenceOf(ctx, s.origin, "log-equivocation-different-sizes", 30*time.Second)
				if err != nil {
					t.Fatal(err)
				}
				t.Logf("evidence at all %d nodes %s after the split began", len(found), time.Since(began).Round(time.Millisecond))
				for i, rec := range found {
					verifyWithVigil(ctx, t, bin, nw, i, rec.ID, s.small, s.large)
				}
			})
		}
	})
}

func newLogKey(t *testing.T, origin string) (skey, vkey string) {
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, origin)
	if err != nil {
		t.Fatal(err)
	}
	return skey, vkey
}

// startTessera starts a Tessera POSIX log in dir signed by skey.
func startTessera(ctx context.Context, t *testing.T, dir, skey string) *tesseralog.Log {
	t.Helper()
	signer, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	l, err := tesseralog.Start(ctx, dir, signer)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// entries returns the entries [from, to) of one side of a log.
func entries(origin, side string, from, to int) [][]byte {
	var out [][]byte
	for i := from; i < to; i++ {
		out = append(out, fmt.Appendf(nil, "%s %s entry %d", origin, side, i))
	}
	return out
}

// verifyWithVigil fetches the evidence file member i serves and checks it
// with `vigil verify` against the network's roster.
func verifyWithVigil(ctx context.Context, t *testing.T, bin string, nw *testnet.Network, i int, id string, small, large int) {
	t.Helper()
	file, err := nw.EvidenceFile(ctx, i, id)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), id+".evidence")
	if err := os.WriteFile(path, file, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.CommandContext(ctx, bin, "verify", path, "--roster", nw.RosterPath).CombinedOutput()
	if err != nil {
		t.Fatalf("vigil verify of %s's evidence %s: %v\n%s", nw.Members[i].Name, id, err, out)
	}
	for _, want := range []string{"VALID log-equivocation-different-sizes evidence " + id, fmt.Sprintf("A:      size %d ", small), fmt.Sprintf("B:      size %d ", large)} {
		if !strings.Contains(string(out), want) {
			t.Fatalf("vigil verify of %s's evidence: no %q in\n%s", nw.Members[i].Name, want, out)
		}
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
