package testnet_test

// The network soak (issue 7, item 5): `vigil node` processes under push load
// from honest and equivocating logs, SIGKILLed and restarted at random, with
// every cosignature and every piece of evidence checked.

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"

	"github.com/vigilnet/vigil/gossip/evidence"
	vpb "github.com/vigilnet/vigil/proto"
	"github.com/vigilnet/vigil/roster"
	"github.com/vigilnet/vigil/store"
	"github.com/vigilnet/vigil/testnet"
	"github.com/vigilnet/vigil/testnet/load"
	"github.com/vigilnet/vigil/testnet/scriptlog"
	"github.com/vigilnet/vigil/tlog"
	"github.com/vigilnet/vigil/witness"
)

const (
	soakNetCycles     = 5    // in make test
	soakNetCyclesLong = 1000 // with VIGIL_SOAK=1
	soakWitnesses     = 5
	soakObservers     = 1
	soakHonestLogs    = 3
	soakEquivocateAt  = 10                    // a new equivocation every this many cycles (VIGIL_SOAK_EQUIVOCATE_EVERY)
	soakPushEvery     = 40 * time.Millisecond // per witness, one push per honest log
)

// soakOrigin is a log and the histories it has shown.
type soakOrigin struct {
	histories []*scriptlog.Log
	honest    bool
	triggered bool // equivocated (evidence about it is expected, and valid)
}

// soakCosig is one cosignature a witness returned.
type soakCosig struct {
	witness int
	size    uint64
	root    [32]byte
}

type soakNet struct {
	t         *testing.T
	nw        *testnet.Network
	roster    *roster.Roster
	verifiers []note.Verifier
	mu        sync.Mutex
	urls      []string // "" while a member is down
	origins   map[string]*soakOrigin
	cosigs    map[string][]soakCosig
	refused   int               // pushes of the other view the witnesses refused
	known     []map[string]bool // evidence IDs each member is known to hold
	violation atomic.Int32
}

func (s *soakNet) fail(format string, args ...any) {
	if s.violation.Add(1) <= 20 {
		s.t.Errorf(format, args...)
	}
}

// TestSoakNetwork runs 5 witnesses and 1 observer as processes; honest logs
// are pushed to every running witness continuously while random members are
// SIGKILLed and restarted; every few cycles a fresh log equivocates (view A
// to some witnesses, view B to the others, then each view to the other
// side). After each kill it opens the dead member's store: the evidence it
// held before the kill is still there, and every piece verifies and is about
// a log that equivocated. At the end every returned cosignature is checked
// for consistency, per origin (per witness for the equivocating ones).
func TestSoakNetwork(t *testing.T) {
	if testing.Short() {
		t.Skip("runs vigil node processes")
	}
	cycles := soakNetCycles
	if os.Getenv("VIGIL_SOAK") == "1" {
		cycles = soakNetCyclesLong
	}
	every := soakEquivocateAt
	if v := os.Getenv("VIGIL_SOAK_EQUIVOCATE_EVERY"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			t.Fatalf("VIGIL_SOAK_EQUIVOCATE_EVERY=%q", v)
		}
		every = n
	}
	if v := os.Getenv("VIGIL_SOAK_CYCLES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			t.Fatalf("VIGIL_SOAK_CYCLES=%q", v)
		}
		cycles = n
	}
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("VIGIL_SOAK_SEED"); v != "" {
		var err error
		if seed, err = strconv.ParseUint(v, 10, 64); err != nil {
			t.Fatal(err)
		}
	}
	rng := mrand.New(mrand.NewPCG(seed, 1))
	t.Logf("seed %d (VIGIL_SOAK_SEED), %d cycles (VIGIL_SOAK_CYCLES)", seed, cycles)
	bin, err := buildVigil()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 110*time.Minute)
	defer cancel()
	began := time.Now()

	s := &soakNet{t: t, origins: map[string]*soakOrigin{}, cosigs: map[string][]soakCosig{}}
	var entries []testnet.LogEntry
	var honest, equivocating []*scriptlog.Log
	for i := range soakHonestLogs + (cycles+every-1)/every {
		kind := "honest"
		if i >= soakHonestLogs {
			kind = "equivocating"
		}
		lg, err := scriptlog.New(fmt.Sprintf("soak.testnet.vigil.example/%s/%d", kind, i))
		if err != nil {
			t.Fatal(err)
		}
		s.origins[lg.Origin()] = &soakOrigin{histories: []*scriptlog.Log{lg}, honest: kind == "honest"}
		if kind == "honest" {
			honest = append(honest, lg)
		} else {
			equivocating = append(equivocating, lg)
		}
		entries = append(entries, testnet.LogEntry{VKey: lg.VerifierKey()})
	}
	stderr := &syncBuffer{}
	s.nw, err = testnet.Start(ctx, testnet.Options{
		Dir: t.TempDir(), Binary: bin, Witnesses: soakWitnesses, Observers: soakObservers, Logs: entries, Stderr: stderr,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.nw.Stop()
	if s.roster, err = roster.Load(s.nw.RosterPath); err != nil {
		t.Fatal(err)
	}
	for _, m := range s.nw.Members {
		s.urls = append(s.urls, m.URL)
		s.known = append(s.known, map[string]bool{})
		if m.Role == testnet.Witness {
			v, err := tlog.NewCosignatureVerifier(m.VKey)
			if err != nil {
				t.Fatal(err)
			}
			s.verifiers = append(s.verifiers, v)
		}
	}

	// Load: every witness gets each honest log's latest checkpoint every
	// soakPushEvery; the logs grow as they go.
	loadCtx, stopLoad := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var pushes atomic.Int64
	for w := range soakWitnesses {
		wrng := mrand.New(mrand.NewPCG(rng.Uint64(), rng.Uint64()))
		wg.Go(func() {
			old := make([]uint64, len(honest))
			tick := time.NewTicker(soakPushEvery)
			defer tick.Stop()
			for loadCtx.Err() == nil {
				for h, lg := range honest {
					if wrng.IntN(2) == 0 {
						lg.AppendN(1+wrng.IntN(3), "honest")
					}
					if s.push(loadCtx, w, lg, &old[h]) == nil {
						pushes.Add(1)
					}
				}
				select {
				case <-tick.C:
				case <-loadCtx.Done():
				}
			}
		})
	}

	kills := 0
	for c := range cycles {
		if c%every == 0 {
			s.equivocate(ctx, equivocating[c/every])
		}
		// Kill at a random point of the load: after 1 to 60 more cosignatures.
		target := pushes.Load() + 1 + rng.Int64N(60)
		if err := waitUntil(ctx, 30*time.Second, func() bool { return pushes.Load() >= target }); err != nil {
			t.Fatalf("cycle %d: load stalled: %v", c, err)
		}
		j := rng.IntN(len(s.nw.Members))
		s.killAndCheck(ctx, j)
		kills++
		if err := s.nw.Restart(ctx, j); err != nil {
			t.Fatalf("cycle %d: restarting %s: %v\n%s", c, s.nw.Members[j].Name, err, tail(stderr.String()))
		}
		s.mu.Lock()
		s.urls[j] = s.nw.Members[j].URL
		s.mu.Unlock()
		if s.violation.Load() > 0 {
			t.Fatalf("cycle %d: violations", c)
		}
		if c%50 == 49 {
			t.Logf("cycle %d, %s", c+1, time.Since(began).Round(time.Second))
		}
	}
	stopLoad()
	wg.Wait()

	// Every member learns of every equivocation (gossip, or the catch-up
	// sync when it reconnects).
	var missing []string
	waitUntil(ctx, 2*time.Minute, func() bool { missing = s.evidenceMissing(ctx); return len(missing) == 0 })
	everywhere := len(missing) == 0
	if !everywhere {
		t.Errorf("members without evidence of an equivocation after 2 minutes: %q", missing)
	}
	// A clean stop, then every store is checked one last time.
	s.nw.Stop()
	for j := range s.nw.Members {
		s.checkStore(j)
	}
	nCosigs := s.checkCosignatures()
	var nEvidence int
	for _, k := range s.known {
		nEvidence += len(k)
	}
	triggered := 0
	for _, o := range s.origins {
		if o.triggered {
			triggered++
		}
	}
	t.Logf("%d cycles (%d SIGKILLs) in %s: %d honest pushes cosigned, %d cosignatures checked, %d equivocations (%d pushes of the other view refused), %d evidence records held in all, evidence everywhere at the end: %v; violations %d",
		cycles, kills, time.Since(began).Round(time.Second), pushes.Load(), nCosigs, triggered, s.refused, nEvidence, everywhere, s.violation.Load())
	if b, err := json.Marshal(map[string]any{
		"cycles": cycles, "kills": kills, "seconds": time.Since(began).Seconds(), "cosignatures": nCosigs,
		"equivocations": triggered, "refused": s.refused, "evidence_records": nEvidence, "violations": s.violation.Load(),
		"lost_evidence": 0, "false_evidence": 0, "evidence_everywhere": everywhere, "seed": seed,
	}); err == nil {
		t.Logf("soak-result %s", b) // the counters are 0 unless the test failed above
	}
}

// push sends lg's current checkpoint to witness w and records a cosignature.
// Errors from a member that is down or being killed are expected.
func (s *soakNet) push(ctx context.Context, w int, lg *scriptlog.Log, old *uint64) error {
	s.mu.Lock()
	url := s.urls[w]
	s.mu.Unlock()
	if url == "" {
		return errors.New("down")
	}
	size := lg.Size()
	cp, err := lg.CheckpointAt(size)
	if err != nil {
		return err
	}
	c := &witness.Client{URL: url, HTTP: soakHTTP}
	cosig, err := c.Submit(ctx, old, size, cp, lg)
	if err != nil {
		if errors.Is(err, witness.ErrInconsistent) && s.origins[lg.Origin()].honest {
			s.fail("%s refused honest %s size %d (old %d) as inconsistent: %v", s.nw.Members[w].Name, lg.Origin(), size, *old, err)
		}
		return err
	}
	if err := load.VerifyCosignature(cp, cosig, s.verifiers[w]); err != nil {
		s.fail("%s: cosignature of %s size %d: %v", s.nw.Members[w].Name, lg.Origin(), size, err)
	}
	root, err := lg.Root(size)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.cosigs[lg.Origin()] = append(s.cosigs[lg.Origin()], soakCosig{witness: w, size: size, root: root})
	s.mu.Unlock()
	return nil
}

var soakHTTP = &http.Client{Timeout: 10 * time.Second}

// equivocate makes lg show view A to the first half of the witnesses and
// view B to the rest, then tries each view on the other side.
func (s *soakNet) equivocate(ctx context.Context, lg *scriptlog.Log) {
	fork, err := lg.Fork(0)
	if err != nil {
		s.t.Fatal(err)
	}
	lg.AppendN(4, "view A")
	fork.AppendN(4, "view B")
	o := s.origins[lg.Origin()]
	s.mu.Lock()
	o.histories = append(o.histories, fork)
	o.triggered = true
	s.mu.Unlock()
	half := soakWitnesses / 2
	olds := make([]uint64, soakWitnesses)
	var wg sync.WaitGroup
	for w := range soakWitnesses {
		view := lg
		if w >= half {
			view = fork
		}
		wg.Go(func() {
			if err := s.push(ctx, w, view, &olds[w]); err != nil {
				s.t.Errorf("equivocation %s: %s did not cosign its view: %v", lg.Origin(), s.nw.Members[w].Name, err)
			}
		})
	}
	wg.Wait()
	for w := range soakWitnesses {
		view := fork
		if w >= half {
			view = lg
		}
		wg.Go(func() {
			if err := s.push(ctx, w, view, &olds[w]); err != nil {
				s.mu.Lock()
				s.refused++
				s.mu.Unlock()
			}
		})
	}
	wg.Wait()
}

// killAndCheck lists member j's evidence over HTTP, SIGKILLs it and checks
// its store.
func (s *soakNet) killAndCheck(ctx context.Context, j int) {
	s.mu.Lock()
	url := s.urls[j]
	s.urls[j] = ""
	s.mu.Unlock()
	ids, err := evidenceIDs(ctx, url)
	if err != nil {
		s.t.Fatalf("listing %s's evidence: %v", s.nw.Members[j].Name, err)
	}
	for _, id := range ids {
		s.known[j][id] = true
	}
	if err := s.nw.Kill(j); err != nil {
		s.t.Fatal(err)
	}
	s.checkStore(j)
}

// checkStore opens stopped member j's store: it must hold every evidence
// record the member was known to hold, each valid and about a log that
// equivocated.
func (s *soakNet) checkStore(j int) {
	m := s.nw.Members[j]
	db, err := store.Open(filepath.Join(m.Dir, "data"), store.Options{})
	if err != nil {
		s.t.Fatalf("opening %s's store: %v", m.Name, err)
	}
	defer db.Close()
	recs, err := db.ListEvidence(context.Background(), "", 100000)
	if err != nil {
		s.t.Fatal(err)
	}
	held := map[string]bool{}
	for _, rec := range recs {
		held[rec.ID] = true
		if s.known[j][rec.ID] {
			continue // checked when first seen
		}
		e, err := vpb.UnmarshalEvidence(rec.Data)
		if err != nil {
			s.fail("%s holds undecodable evidence %s: %v", m.Name, rec.ID, err)
			continue
		}
		f, err := evidence.Verify(e, s.roster)
		if err != nil {
			s.fail("%s holds evidence %s that does not verify: %v", m.Name, rec.ID, err)
			continue
		}
		s.mu.Lock()
		o := s.origins[f.Origin]
		bogus := o == nil || o.honest || !o.triggered
		s.mu.Unlock()
		if bogus {
			s.fail("false evidence: %s holds %s about %s, which never equivocated", m.Name, rec.ID, f.Origin)
		}
		s.known[j][rec.ID] = true
	}
	for id := range s.known[j] {
		if !held[id] {
			s.fail("lost evidence: %s held %s before it was killed, not after", m.Name, id)
		}
	}
}

// evidenceMissing lists "member: origin" for every log that equivocated and
// every member that holds no evidence about it.
func (s *soakNet) evidenceMissing(ctx context.Context) []string {
	var out []string
	for j, m := range s.nw.Members {
		s.mu.Lock()
		url := s.urls[j]
		s.mu.Unlock()
		list, err := evidenceList(ctx, url)
		if err != nil {
			out = append(out, fmt.Sprintf("%s: %v", m.Name, err))
			continue
		}
		about := map[string]bool{}
		for _, e := range list {
			about[e.Origin] = true
		}
		for origin, o := range s.origins {
			if o.triggered && !about[origin] {
				out = append(out, m.Name+": "+origin)
			}
		}
	}
	slices.Sort(out)
	return out
}

// checkCosignatures checks every cosignature returned per origin: sorted by
// size, each adjacent pair has the same root at the same size, or a
// consistency proof from one of the log's histories verifies from the
// smaller to the larger. Consistency is transitive, so this holds for every
// pair. Equivocating logs are checked per witness (each witness was shown
// one view; invariant 1 is about one witness), honest logs across all.
func (s *soakNet) checkCosignatures() int {
	n := 0
	for origin, cs := range s.cosigs {
		o := s.origins[origin]
		groups := map[int][]soakCosig{}
		for _, c := range cs {
			k := -1
			if !o.honest {
				k = c.witness
			}
			groups[k] = append(groups[k], c)
		}
		for _, g := range groups {
			n += len(g)
			slices.SortFunc(g, func(a, b soakCosig) int {
				if a.size != b.size {
					return cmp.Compare(a.size, b.size)
				}
				return bytes.Compare(a.root[:], b.root[:])
			})
			g = slices.CompactFunc(g, func(a, b soakCosig) bool { return a.size == b.size && a.root == b.root })
			for i := 1; i < len(g); i++ {
				if err := consistent(o.histories, g[i-1], g[i]); err != nil {
					s.fail("%s: cosigned size %d (%s) and size %d (%s) are not consistent: %v", origin,
						g[i-1].size, s.nw.Members[g[i-1].witness].Name, g[i].size, s.nw.Members[g[i].witness].Name, err)
				}
			}
		}
	}
	return n
}

func consistent(histories []*scriptlog.Log, a, b soakCosig) error {
	if a.size == b.size {
		return fmt.Errorf("same size, different roots")
	}
	for _, h := range histories {
		if r, err := h.Root(b.size); err != nil || r != b.root {
			continue
		}
		p, err := h.ConsistencyProof(a.size, b.size)
		if err != nil {
			return err
		}
		if a.size == 0 {
			return nil
		}
		return proof.VerifyConsistency(rfc6962.DefaultHasher, a.size, b.size, p, a.root[:], b.root[:])
	}
	return fmt.Errorf("no history has root %x at size %d", b.root[:4], b.size)
}

func evidenceList(ctx context.Context, url string) ([]struct{ ID, Origin string }, error) {
	if url == "" {
		return nil, errors.New("member is down")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/v1/evidence", nil)
	if err != nil {
		return nil, err
	}
	resp, err := soakHTTP.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /v1/evidence: %s", resp.Status)
	}
	var body struct {
		Evidence []struct{ ID, Origin string }
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, err
	}
	return body.Evidence, nil
}

func evidenceIDs(ctx context.Context, url string) ([]string, error) {
	list, err := evidenceList(ctx, url)
	var ids []string
	for _, e := range list {
		ids = append(ids, e.ID)
	}
	return ids, err
}

// waitUntil polls cond every 10 ms until it holds or d passes.
func waitUntil(ctx context.Context, d time.Duration, cond func() bool) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("not within %s", d)
		case <-tick.C:
		}
	}
	return nil
}

func tail(s string) string {
	if len(s) > 4000 {
		return s[len(s)-4000:]
	}
	return s
}
