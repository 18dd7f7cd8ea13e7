package detect_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"
	"golang.org/x/mod/sumdb/note"

	"github.com/vigilnet/vigil/gossip/detect"
	"github.com/vigilnet/vigil/gossip/evidence"
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
	if t != nil {
		t.Helper()
	}
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
		pr:  &logProofs{w: w, tiled: map[int]bool{}, tilesUp: map[int]bool{}, peersUp: map[int]bool{}, forks: map[int][]int{}, logSize: map[int]uint64{}},
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
