package detect_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"golang.org/x/mod/sumdb/note"

	"github.com/vigilnet/vigil/gossip/detect"
	"github.com/vigilnet/vigil/gossip/evidence"
	vpb "github.com/vigilnet/vigil/proto"
	"github.com/vigilnet/vigil/roster"
	"github.com/vigilnet/vigil/tlog"
)

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
	// logSize is the size of each log's honest tree as its tiles serve it
	// (0: maxTreeSize).
	logSize map[int]uint64
	// tileCalls and peerCalls count the requests.
	tileCalls, peerCalls int
}

func (lp *logProofs) size(i int) uint64 {
	if s := lp.logSize[i]; s != 0 {
		return s
	}
	return maxTreeSize
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
	if n > lp.size(i) || m == 0 || m >= n {
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
