// Package scriptlog is a scripted transparency log for tests, the demo and
// the testnet: a real RFC 6962 Merkle tree that signs C2SP checkpoints,
// produces consistency proofs and can fork to equivocate on purpose.
package scriptlog

import (
	"crypto/rand"
	"fmt"
	"sync"

	"golang.org/x/mod/sumdb/note"
	xtlog "golang.org/x/mod/sumdb/tlog"

	"github.com/vigilnet/vigil/tlog"
)

// Log is a scripted log. It is safe for concurrent use.
type Log struct {
	origin string
	signer note.Signer
	vkey   string

	mu     sync.RWMutex
	hashes []xtlog.Hash // stored hashes in x/mod/sumdb/tlog order
	size   int64
	leaves [][]byte
}

// New returns an empty log with a fresh Ed25519 key named origin.
func New(origin string) (*Log, error) {
	skey, vkey, err := note.GenerateKey(rand.Reader, origin)
	if err != nil {
		return nil, fmt.Errorf("generating log key: %w", err)
	}
	return NewWithKey(skey, vkey)
}

// NewWithKey returns an empty log signing with the given note key.
func NewWithKey(skey, vkey string) (*Log, error) {
	s, err := note.NewSigner(skey)
	if err != nil {
		return nil, fmt.Errorf("log key: %w", err)
	}
	return &Log{origin: s.Name(), signer: s, vkey: vkey}, nil
}

// Origin returns the log's origin line.
func (l *Log) Origin() string { return l.origin }

// VerifierKey returns the log's note verifier key (type 0x01).
func (l *Log) VerifierKey() string { return l.vkey }

// Size returns the current tree size.
func (l *Log) Size() uint64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return uint64(l.size)
}

// Append adds entries to the log.
func (l *Log) Append(entries ...[]byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range entries {
		l.appendLocked(e)
	}
}

func (l *Log) appendLocked(e []byte) {
	hs, err := xtlog.StoredHashes(l.size, e, l.reader())
	if err != nil {
		panic(fmt.Sprintf("scriptlog: %v", err)) // only on internal inconsistency
	}
	l.hashes = append(l.hashes, hs...)
	l.leaves = append(l.leaves, append([]byte(nil), e...))
	l.size++
}

// AppendN adds n generated entries tagged with tag, so forks that use
// different tags diverge.
func (l *Log) AppendN(n int, tag string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.growLocked(l.size+int64(n), tag)
}

// GrowTo appends generated entries tagged with tag until the log has at
// least size entries; concurrent callers never overshoot each other.
func (l *Log) GrowTo(size uint64, tag string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.growLocked(int64(size), tag)
}

func (l *Log) growLocked(size int64, tag string) {
	for l.size < size {
		l.appendLocked(fmt.Appendf(nil, "%s entry %d", tag, l.size))
	}
}

func (l *Log) reader() xtlog.HashReader {
	return xtlog.HashReaderFunc(func(idx []int64) ([]xtlog.Hash, error) {
		out := make([]xtlog.Hash, len(idx))
		for i, x := range idx {
			if x >= int64(len(l.hashes)) {
				return nil, fmt.Errorf("hash index %d not stored", x)
			}
			out[i] = l.hashes[x]
		}
		return out, nil
	})
}

// Root returns the root hash at size n.
func (l *Log) Root(n uint64) ([32]byte, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if int64(n) > l.size {
		return [32]byte{}, fmt.Errorf("size %d beyond log size %d", n, l.size)
	}
	h, err := xtlog.TreeHash(int64(n), l.reader())
	return h, err
}

// CheckpointAt returns the signed checkpoint note at size n.
func (l *Log) CheckpointAt(n uint64) ([]byte, error) {
	root, err := l.Root(n)
	if err != nil {
		return nil, err
	}
	body := tlog.Checkpoint{Origin: l.origin, Size: n, Root: root}.Marshal()
	return note.Sign(&note.Note{Text: string(body)}, l.signer)
}

// Checkpoint returns the signed checkpoint at the current size.
func (l *Log) Checkpoint() ([]byte, error) { return l.CheckpointAt(l.Size()) }

// ConsistencyProof proves that the tree at size n extends the tree at size m.
func (l *Log) ConsistencyProof(m, n uint64) ([][]byte, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if m > n || int64(n) > l.size {
		return nil, fmt.Errorf("no proof from %d to %d in a log of size %d", m, n, l.size)
	}
	if m == 0 || m == n {
		return nil, nil
	}
	p, err := xtlog.ProveTree(int64(n), int64(m), l.reader())
	if err != nil {
		return nil, err
	}
	out := make([][]byte, len(p))
	for i, h := range p {
		out[i] = append([]byte(nil), h[:]...)
	}
	return out, nil
}

// Leaf returns entry i.
func (l *Log) Leaf(i uint64) ([]byte, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if int64(i) >= l.size {
		return nil, fmt.Errorf("entry %d beyond log size %d", i, l.size)
	}
	return l.leaves[i], nil
}

// Fork returns an independent copy of the log's first n entries signed by the
// same key: appending different entries to the fork and the original makes
// the log equivocate.
func (l *Log) Fork(n uint64) (*Log, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if int64(n) > l.size {
		return nil, fmt.Errorf("fork at %d beyond log size %d", n, l.size)
	}
	f := &Log{origin: l.origin, signer: l.signer, vkey: l.vkey}
	f.hashes = append([]xtlog.Hash(nil), l.hashes[:xtlog.StoredHashCount(int64(n))]...)
	f.leaves = append([][]byte(nil), l.leaves[:n]...)
	f.size = int64(n)
	return f, nil
}
