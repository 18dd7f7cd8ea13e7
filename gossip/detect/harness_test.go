package detect_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"
	"golang.org/x/mod/sumdb/note"

	"github.com/vigilnet/vigil/gossip/detect"
	"github.com/vigilnet/vigil/gossip/evidence"
	vpb "github.com/vigilnet/vigil/proto"
	"github.com/vigilnet/vigil/roster"
	"github.com/vigilnet/vigil/tlog"
)

// The keys, trees and signatures of the tests are made once and shared:
// a property run builds thousands of histories from them.
const (
	numLogs      = 4
	numWitnesses = 5
	maxTreeSize  = 48
)

type world struct {
	roster    *roster.Roster
	logs      []*testLog
	witnesses []*tlog.CosignatureSigner
	names     []string // roster names of witnesses, by index

	mu    sync.Mutex
	trees map[treeID]*testonly.Tree
	sigs  map[sigKey]note.Signature
	keys  map[sigKey]detect.Key
}

type testLog struct {
	origin string
	signer note.Signer
}

// treeID names a tree of a log: branch 0 is the honest tree; branch p+1
// is the fork that shares the honest tree's first p entries and then
// diverges.
type treeID struct {
	log    int
	branch int
}

// sigKey names a signature: by the log (signer -1) or a witness of the
// checkpoint of tree t at size.
type sigKey struct {
	t      treeID
	size   uint64
	signer int
}

var (
	worldOnce sync.Once
	theWorld  *world
)

func getWorld(t testing.TB) *world {
	t.Helper()
	worldOnce.Do(func() {
		w := &world{trees: map[treeID]*testonly.Tree{}, sigs: map[sigKey]note.Signature{}, keys: map[sigKey]detect.Key{}}
		var policy strings.Builder
		for i := range numLogs {
			skey, vkey, err := note.GenerateKey(rand.Reader, fmt.Sprintf("log%d.example/log", i))
			if err != nil {
				panic(err)
			}
			s, err := note.NewSigner(skey)
			if err != nil {
				panic(err)
			}
			w.logs = append(w.logs, &testLog{origin: s.Name(), signer: s})
			fmt.Fprintf(&policy, "log %s\n", vkey)
		}
		var quorum []string
		for i := range numWitnesses {
			name := fmt.Sprintf("w%d", i)
			skey, vkey, err := tlog.GenerateCosignerKey(rand.Reader, fmt.Sprintf("witness%d.example/w", i))
			if err != nil {
				panic(err)
			}
			c, err := tlog.NewCosignatureSigner(skey, func() time.Time { return time.Unix(1_800_000_000, 0) })
			if err != nil {
				panic(err)
			}
			w.witnesses = append(w.witnesses, c)
			w.names = append(w.names, name)
			quorum = append(quorum, name)
			fmt.Fprintf(&policy, "witness %s %s\n", name, vkey)
		}
		fmt.Fprintf(&policy, "group all %d %s\nquorum all\n", len(quorum)/2+1, strings.Join(quorum, " "))
		r, err := roster.ParsePolicy([]byte(policy.String()))
		if err != nil {
			panic(err)
		}
		w.roster = r
		theWorld = w
	})
	return theWorld
}

// tree returns the tree id, built to maxTreeSize entries.
func (w *world) tree(id treeID) *testonly.Tree {
	w.mu.Lock()
	defer w.mu.Unlock()
	if t, ok := w.trees[id]; ok {
		return t
	}
	t := testonly.New(rfc6962.DefaultHasher)
	for i := range maxTreeSize {
		leaf := fmt.Sprintf("log %d entry %d", id.log, i)
		if id.branch > 0 && i >= id.branch-1 {
			leaf = fmt.Sprintf("log %d fork %d entry %d", id.log, id.branch-1, i)
		}
		t.AppendData([]byte(leaf))
	}
	w.trees[id] = t
	return t
}

func (w *world) key(id treeID, size uint64) detect.Key {
	kk := sigKey{id, size, -2}
	w.mu.Lock()
	k, ok := w.keys[kk]
	w.mu.Unlock()
	if ok {
		return k
	}
	k = detect.Key{Origin: w.logs[id.log].origin, Size: size, Root: [32]byte(w.tree(id).HashAt(size))}
	w.mu.Lock()
	w.keys[kk] = k
	w.mu.Unlock()
	return k
}

func (w *world) body(id treeID, size uint64) []byte {
	k := w.key(id, size)
	return tlog.Checkpoint{Origin: k.Origin, Size: k.Size, Root: k.Root}.Marshal()
}

// sig returns the signature of the checkpoint (id, size) by the log
// (signer -1) or witness signer.
func (w *world) sig(id treeID, size uint64, signer int) note.Signature {
	sk := sigKey{id, size, signer}
	w.mu.Lock()
	s, ok := w.sigs[sk]
	w.mu.Unlock()
	if ok {
		return s
	}
	body := w.body(id, size)
	var ns note.Signer = w.logs[id.log].signer
	if signer >= 0 {
		ns = w.witnesses[signer]
	}
	raw, err := ns.Sign(body)
	if err != nil {
		panic(err)
	}
	s = note.Signature{Name: ns.Name(), Hash: ns.KeyHash(), Base64: base64.StdEncoding.EncodeToString(append(binary.BigEndian.AppendUint32(nil, ns.KeyHash()), raw...))}
	w.mu.Lock()
	w.sigs[sk] = s
	w.mu.Unlock()
	return s
}

// sighting returns the checkpoint (id, size) signed by the log and
// cosigned by the witnesses in mask, published by from.
func (w *world) sighting(id treeID, size uint64, mask uint8, from string) detect.Sighting {
	s := detect.Sighting{Key: w.key(id, size), Body: w.body(id, size), Cosigners: map[string]bool{}, From: from}
	s.Sigs = append(s.Sigs, w.sig(id, size, -1))
	for i := range numWitnesses {
		if mask&(1<<i) != 0 {
			s.Sigs = append(s.Sigs, w.sig(id, size, i))
			s.Cosigners[w.names[i]] = true
		}
	}
	return s
}

// proof returns the evidence-form consistency proof m→n of tree id.
func (w *world) proof(id treeID, m, n uint64) [][]byte {
	t := w.tree(id)
	p, err := t.ConsistencyProof(m, n)
	if err != nil {
		panic(err)
	}
	if evidence.IsPowerOfTwo(m) {
		p = evidence.EvidenceProof(m, t.HashAt(m), p)
	}
	return p
}

// memStore is an in-memory detect.Store: the signatures of each
// checkpoint merged, as the node's store keeps them.
type memStore struct {
	mu   sync.Mutex
	w    *world
	recs map[detect.Key]*memRecord
	// fail makes every call fail (a broken disk).
	fail bool
}

type memRecord struct {
	body []byte
	sigs []note.Signature
}

var errDisk = errors.New("disk failed")

func newMemStore(w *world) *memStore { return &memStore{w: w, recs: map[detect.Key]*memRecord{}} }

func (m *memStore) Known(k detect.Key) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.recs[k]
	return ok
}

func (m *memStore) AtSize(_ context.Context, origin string, size uint64) ([]detect.Key, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail {
		return nil, errDisk
	}
	var out []detect.Key
	for k := range m.recs {
		if k.Origin == origin && k.Size == size {
			out = append(out, k)
		}
	}
	return out, nil
}

func (m *memStore) Merge(_ context.Context, s detect.Sighting) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail {
		return false, errDisk
	}
	r, ok := m.recs[s.Key]
	if !ok {
		m.recs[s.Key] = &memRecord{body: s.Body, sigs: slices.Clone(s.Sigs)}
		return true, nil
	}
	added := false
	for _, sg := range s.Sigs {
		if !slices.ContainsFunc(r.sigs, func(o note.Signature) bool { return o.Name == sg.Name && o.Hash == sg.Hash }) {
			r.sigs = append(r.sigs, sg)
			added = true
		}
	}
	return added, nil
}

func (m *memStore) Note(_ context.Context, k detect.Key) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.recs[k]
	if !ok || m.fail {
		return nil, errors.New("not found")
	}
	return tlog.FormatNote(r.body, r.sigs)
}

func (m *memStore) Cosigners(_ context.Context, k detect.Key) (map[string]bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.recs[k]
	if !ok || m.fail {
		return nil, errors.New("not found")
	}
	out := map[string]bool{}
	for _, s := range r.sigs {
		if wt, ok := m.w.roster.WitnessByKey(s.Name, s.Hash); ok {
			out[wt.Name] = true
		}
	}
	return out, nil
}

func (m *memStore) Newest(_ context.Context, origin string) (detect.Key, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var best detect.Key
	found := false
	for k := range m.recs {
		if k.Origin == origin && (!found || k.Size > best.Size) {
			best, found = k, true
		}
	}
	return best, found, nil
}

// logProofs says how each log's tree can be read: by tiles (serving the
// honest tree, if tilesUp) and by peers (serving any tree, if peersUp).
type logProofs struct {
	mu      sync.Mutex
	w       *world
	tiled   map[int]bool
	tilesUp map[int]bool
	peersUp map[int]bool
	// forks are the fork branches of each log peers know of.
	forks map[int][]int
	// tileCalls and peerCalls count the requests.
	tileCalls, peerCalls int
}

func (lp *logProofs) logIndex(origin string) int {
	for i, l := range lp.w.logs {
		if l.origin == origin {
			return i
		}
	}
	return -1
}

func (lp *logProofs) Consistency(_ context.Context, origin string, m, n uint64, _ [32]byte) ([][]byte, [32]byte, [32]byte, error) {
	lp.mu.Lock()
	defer lp.mu.Unlock()
	lp.tileCalls++
	var rm, rn [32]byte
	i := lp.logIndex(origin)
	if !lp.tiled[i] {
		return nil, rm, rn, fmt.Errorf("log %q has no tiles URL: %w", origin, detect.ErrNoSource)
	}
	if !lp.tilesUp[i] {
		return nil, rm, rn, errors.New("tiles: connection refused")
	}
	if n > maxTreeSize || m == 0 || m >= n {
		return nil, rm, rn, errors.New("tiles: no such size")
	}
	p := lp.w.proof(treeID{i, 0}, m, n)
	rm, rn, err := evidence.RootsFromConsistency(m, n, p)
	return p, rm, rn, err
}

func (lp *logProofs) PeerProof(_ context.Context, peer, origin string, m, n uint64, rootN [32]byte) ([][]byte, [32]byte, error) {
	lp.mu.Lock()
	defer lp.mu.Unlock()
	lp.peerCalls++
	i := lp.logIndex(origin)
	if !lp.tiled[i] || !lp.peersUp[i] || peer == "" || m == 0 || m >= n || n > maxTreeSize {
		return nil, [32]byte{}, errors.New("peer: proof unavailable")
	}
	for _, b := range append([]int{0}, lp.forks[i]...) {
		id := treeID{i, b}
		if lp.w.key(id, n).Root == rootN {
			p := lp.w.proof(id, m, n)
			rm, _, err := evidence.RootsFromConsistency(m, n, p)
			return p, rm, err
		}
	}
	return nil, [32]byte{}, errors.New("peer: no tree with that root")
}

func (lp *logProofs) WitnessPeer(name string) (string, bool) { return "peer-" + name, true }

// recorder is the detector's output, with the store's suspicion semantics:
// a divergence recorded opens the record of its larger side, resolving
// closes it.
type recorder struct {
	mu          sync.Mutex
	evidence    []*vpb.Evidence
	open        map[detect.Key]string
	resolved    map[detect.Key]string
	divergences int
	heads       []detect.Key
}

func newRecorder() *recorder {
	return &recorder{open: map[detect.Key]string{}, resolved: map[detect.Key]string{}}
}

func (r *recorder) Evidence(_ context.Context, e *vpb.Evidence) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.evidence = append(r.evidence, e)
}

func (r *recorder) Divergence(_ context.Context, origin string, small, large detect.Side, reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := detect.Key{Origin: origin, Size: large.Size, Root: large.Root}
	r.open[k] = reason
	delete(r.resolved, k)
	r.divergences++
}

func (r *recorder) Resolved(_ context.Context, large detect.Key, how string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.open[large]; ok {
		delete(r.open, large)
		r.resolved[large] = how
	}
}

func (r *recorder) Head(k detect.Key) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.heads = append(r.heads, k)
}

// kinds counts the evidence by kind.
func (r *recorder) kinds() map[vpb.Kind]int {
	out := map[vpb.Kind]int{}
	for _, e := range r.evidence {
		out[e.Kind]++
	}
	return out
}

// verified remembers evidence that verified, by evidence.ID (a hash of
// everything the evidence says): histories built from the shared keys and
// trees find the same evidence again and again.
var verified sync.Map

// verifyAll checks every piece of evidence as `vigil verify` does.
func (r *recorder) verifyAll(ro *roster.Roster) error {
	for i, e := range r.evidence {
		id := fmt.Sprintf("%v %q %q %q %x", e.Kind, e.WitnessKey, e.CheckpointA, e.CheckpointB, e.ConsistencyProof)
		if _, ok := verified.Load(id); ok {
			continue
		}
		if _, err := evidence.Verify(e, ro); err != nil {
			return fmt.Errorf("evidence %d (%v) does not verify: %w", i, e.Kind, err)
		}
		verified.Store(id, true)
	}
	return nil
}

// clock is a test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// Test timing of the detector.
const (
	testGrace    = time.Minute
	testRetryMin = time.Second
	testRetryMax = 16 * time.Second
)

type rig struct {
	w   *world
	st  *memStore
	pr  *logProofs
	out *recorder
	clk *clock
	det *detect.Detector
}

func newRig(t testing.TB) *rig {
	w := getWorld(t)
	r := &rig{
		w:   w,
		st:  newMemStore(w),
		pr:  &logProofs{w: w, tiled: map[int]bool{}, tilesUp: map[int]bool{}, peersUp: map[int]bool{}, forks: map[int][]int{}},
		out: newRecorder(),
		clk: &clock{t: time.Unix(1_900_000_000, 0)},
	}
	det, err := detect.New(detect.Config{
		Store: r.st, Proofs: r.pr, Peers: r.pr, Out: r.out, Roster: func() *roster.Roster { return w.roster },
		Now: r.clk.now, Grace: testGrace, RetryMin: testRetryMin, RetryMax: testRetryMax,
	})
	if err != nil {
		t.Fatal(err)
	}
	r.det = det
	return r
}

// settle runs the retries until every backoff has passed several times and
// the grace period is over.
func (r *rig) settle(ctx context.Context) {
	for range 8 {
		r.clk.advance(testRetryMax + time.Second)
		r.det.Tick(ctx)
	}
	r.clk.advance(testGrace)
	r.det.Tick(ctx)
}
