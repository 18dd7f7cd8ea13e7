package witness_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"

	"github.com/vigilnet/vigil/store"
	"github.com/vigilnet/vigil/tlog"
	"github.com/vigilnet/vigil/witness"
)

// gatedStore holds UpdateWitnessState calls at a barrier while armed: each
// call announces itself on arrived and waits for release.
type gatedStore struct {
	witness.StateStore
	mu      sync.Mutex
	arrived chan struct{}
	release chan struct{}
}

func (g *gatedStore) arm(n int) (arrived, release chan struct{}) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.arrived, g.release = make(chan struct{}, n), make(chan struct{})
	return g.arrived, g.release
}

func (g *gatedStore) disarm() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.arrived, g.release = nil, nil
}

func (g *gatedStore) UpdateWitnessState(ctx context.Context, origin string, fn func(store.WitnessState, bool) (store.WitnessState, error)) error {
	g.mu.Lock()
	arrived, release := g.arrived, g.release
	g.mu.Unlock()
	if arrived != nil {
		arrived <- struct{}{}
		select {
		case <-release:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return g.StateStore.UpdateWitnessState(ctx, origin, fn)
}

// waitN receives n signals from ch or fails at the deadline.
func waitN(t testing.TB, ch <-chan struct{}, n int, what string) {
	t.Helper()
	deadline := time.NewTimer(30 * time.Second)
	defer deadline.Stop()
	for i := 0; i < n; i++ {
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("timed out waiting for %s (%d of %d)", what, i, n)
		}
	}
}

// TestRacingForks sends two requests with incompatible checkpoints (fork A
// and fork B of the same size, both with old = the stored size) and holds
// both state updates at a barrier until both have passed every other check.
// Exactly one may be cosigned.
func TestRacingForks(t *testing.T) {
	iterations := 100
	if testing.Short() {
		iterations = 20
	}
	base := newTestLog(t, "example.com/race", nil)
	base.grow(3, "base")
	var gate *gatedStore
	f := newFixture(t, fixtureOptions{wrap: func(s witness.StateStore) witness.StateStore {
		gate = &gatedStore{StateStore: s}
		return gate
	}}, base)
	f.push(base, 0, 3, 200)
	vkey := base.VerifierKey()

	wins := map[string]int{}
	for i := 0; i < iterations; i++ {
		n := base.Size()
		k := uint64(1 + i%7)
		forks := [2]*testLog{base.fork(t, n), base.fork(t, n)}
		bodies := [2][]byte{}
		for j, fl := range forks {
			fl.grow(n+k, fmt.Sprintf("iter %d fork %d", i, j))
			bodies[j] = requestBody(n, fl.proof(t, n, n+k), fl.checkpoint(t, n+k))
		}
		arrived, release := gate.arm(2)
		results := make(chan struct {
			j int
			r response
		}, 2)
		for j := range forks {
			go func() {
				results <- struct {
					j int
					r response
				}{j, doRequest(t, f.srv.Client(), http.MethodPost, f.srv.URL+"/add-checkpoint", bodies[j])}
			}()
		}
		waitN(t, arrived, 2, "both state updates at the barrier")
		close(release)
		var got [2]response
		for range 2 {
			select {
			case res := <-results:
				got[res.j] = res.r
			case <-time.After(30 * time.Second):
				t.Fatal("timed out waiting for the responses")
			}
		}
		gate.disarm()

		winner := -1
		for j, r := range got {
			switch r.code {
			case 200:
				if winner >= 0 {
					t.Fatalf("iteration %d: both forks cosigned", i)
				}
				winner = j
				checkCosignature(t, f.vkey, vkey, forks[j].checkpoint(t, n+k), r.body)
			case 409, 422:
				if r.code == 409 && r.body != strconv.FormatUint(n+k, 10)+"\n" {
					t.Fatalf("iteration %d: loser's 409 body %q, want %d", i, r.body, n+k)
				}
			default:
				t.Fatalf("iteration %d: fork %d got %d %q", i, j, r.code, r.body)
			}
		}
		if winner < 0 {
			t.Fatalf("iteration %d: neither fork cosigned (%d, %d)", i, got[0].code, got[1].code)
		}
		wins[strconv.Itoa(winner)]++
		if st := f.state(base.Origin()); st.Size != n+k || st.Root != forks[winner].root(t, n+k) {
			t.Fatalf("iteration %d: stored %d/%x, not the winner's checkpoint", i, st.Size, st.Root[:4])
		}
		base = forks[winner]
	}
	t.Logf("wins by fork: %v", wins)
}

// cosigned is one 200 response of the stress test.
type cosigned struct {
	size uint64
	root [32]byte
	fork int
	cp   []byte
	line string
}

// TestConcurrentForksStress has many goroutines push checkpoints of one log
// from two forks at once. Afterwards every pair of cosigned checkpoints must
// be consistent: same size ⇒ same root, different sizes ⇒ a consistency
// proof between them exists on the fork that produced the larger one.
func TestConcurrentForksStress(t *testing.T) {
	const (
		forkAt   = 10
		maxSize  = 400
		workers  = 8
		requests = 40
	)
	base := newTestLog(t, "example.com/stress", nil)
	base.grow(forkAt, "base")
	forks := [2]*testLog{base.fork(t, forkAt), base.fork(t, forkAt)}
	forks[0].grow(maxSize, "fork A")
	forks[1].grow(maxSize, "fork B")
	f := newFixture(t, fixtureOptions{}, base)
	f.push(base, 0, forkAt, 200)

	var (
		mu  sync.Mutex
		out []cosigned
	)
	var wg sync.WaitGroup
	errc := make(chan error, workers)
	for g := 0; g < workers; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 42))
			fl := forks[g%2]
			guess := uint64(forkAt)
			for i := 0; i < requests; i++ {
				size := guess + uint64(rng.IntN(12)) // sometimes the same size: re-cosign
				if size > maxSize {
					size = maxSize
				}
				p, err := fl.ConsistencyProof(guess, size)
				if err != nil {
					errc <- err
					return
				}
				cp, err := fl.CheckpointAt(size)
				if err != nil {
					errc <- err
					return
				}
				r, err := postRaw(f.srv.Client(), f.srv.URL, requestBody(guess, p, cp))
				if err != nil {
					errc <- err
					return
				}
				switch r.code {
				case 200:
					root, _ := fl.Root(size)
					mu.Lock()
					out = append(out, cosigned{size: size, root: root, fork: g % 2, cp: cp, line: r.body})
					mu.Unlock()
					guess = size
				case 409:
					guess, err = strconv.ParseUint(strings.TrimSpace(r.body), 10, 64)
					if err != nil {
						errc <- fmt.Errorf("409 body %q", r.body)
						return
					}
				case 422:
					// This fork lost; keep pushing it anyway.
				default:
					errc <- fmt.Errorf("status %d %q", r.code, r.body)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}

	witV, err := tlog.NewCosignatureVerifier(f.vkey)
	if err != nil {
		t.Fatal(err)
	}
	logV := mustNoteVerifier(t, base.VerifierKey())
	var maxC cosigned
	for _, c := range out {
		if _, err := note.Open(append(bytes.Clone(c.cp), c.line...), note.VerifierList(logV, witV)); err != nil {
			t.Fatalf("returned cosignature for size %d does not verify: %v", c.size, err)
		}
		if c.size >= maxC.size {
			maxC = c
		}
	}
	for i, a := range out {
		for _, b := range out[i+1:] {
			if a.size > b.size {
				a, b = b, a
			}
			if a.size == b.size {
				if a.root != b.root {
					t.Fatalf("cosigned two roots at size %d", a.size)
				}
				continue
			}
			p, err := forks[b.fork].ConsistencyProof(a.size, b.size)
			if err != nil {
				t.Fatal(err)
			}
			if err := proof.VerifyConsistency(rfc6962.DefaultHasher, a.size, b.size, p, a.root[:], b.root[:]); err != nil {
				t.Fatalf("cosigned %d (fork %d) and %d (fork %d), which are inconsistent", a.size, a.fork, b.size, b.fork)
			}
		}
	}
	st := f.state(base.Origin())
	if len(out) > 0 && (st.Size != maxC.size || st.Root != maxC.root) {
		t.Fatalf("stored size %d, but the largest cosigned is %d", st.Size, maxC.size)
	}
	forksSeen := map[int]int{}
	for _, c := range out {
		if c.size > forkAt {
			forksSeen[c.fork]++
		}
	}
	if len(forksSeen) > 1 {
		t.Fatalf("cosigned checkpoints beyond the fork point from both forks: %v", forksSeen)
	}
	t.Logf("%d cosignatures, final size %d, beyond the fork: %v", len(out), st.Size, forksSeen)
}

// postRaw is doRequest without testing.TB, for goroutines.
func postRaw(c *http.Client, base string, body []byte) (response, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/add-checkpoint", bytes.NewReader(body))
	if err != nil {
		return response{}, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	if _, err := b.ReadFrom(resp.Body); err != nil {
		return response{}, err
	}
	return response{code: resp.StatusCode, header: resp.Header, body: b.String()}, nil
}

// TestClosedStore: after the store is closed a request fails with a server
// error and never hangs.
func TestClosedStore(t *testing.T) {
	a := newTestLog(t, "example.com/a", nil)
	a.grow(4, "a")
	f := newFixture(t, fixtureOptions{}, a)
	db := f.db
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		req, err := witness.ParseAddCheckpointRequest(requestBody(0, nil, a.checkpoint(t, 4)))
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() {
			_, err := f.w.AddCheckpoint(context.Background(), req)
			done <- err
		}()
		select {
		case err := <-done:
			if err == nil {
				t.Fatal("cosigned with a closed store")
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("attempt %d: AddCheckpoint on a closed store hangs", i)
		}
	}
}
