package tlogproof_test

import (
	"crypto/rand"
	"fmt"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	xtlog "golang.org/x/mod/sumdb/tlog"

	"github.com/vigilnet/vigil/roster"
	"github.com/vigilnet/vigil/tlog"
	"github.com/vigilnet/vigil/tlog/tlogproof"
)

// TestVerifyProperty builds trees of every size up to 40 with
// golang.org/x/mod/sumdb/tlog (an independent RFC 6962 implementation),
// signs and cosigns their checkpoints, and checks that the proof of every
// entry survives Marshal and Parse and verifies, and that it stops
// verifying when any one proof byte, the index or the entry changes.
func TestVerifyProperty(t *testing.T) {
	lskey, lvkey, err := note.GenerateKey(rand.Reader, "prop.example/log")
	if err != nil {
		t.Fatal(err)
	}
	logSigner, err := note.NewSigner(lskey)
	if err != nil {
		t.Fatal(err)
	}
	wskey, wvkey, err := tlog.GenerateCosignerKey(rand.Reader, "prop.example/w")
	if err != nil {
		t.Fatal(err)
	}
	wSigner, err := tlog.NewCosignatureSigner(wskey, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	policy, err := roster.ParsePolicy([]byte("log " + lvkey + "\nwitness w " + wvkey + "\nquorum w\n"))
	if err != nil {
		t.Fatal(err)
	}
	var stored []xtlog.Hash
	hr := xtlog.HashReaderFunc(func(idx []int64) ([]xtlog.Hash, error) {
		out := make([]xtlog.Hash, len(idx))
		for i, x := range idx {
			out[i] = stored[x]
		}
		return out, nil
	})
	for n := int64(0); n < 40; n++ {
		entry := fmt.Appendf(nil, "entry %d", n)
		hs, err := xtlog.StoredHashes(n, entry, hr)
		if err != nil {
			t.Fatal(err)
		}
		stored = append(stored, hs...)
		size := n + 1
		root, err := xtlog.TreeHash(size, hr)
		if err != nil {
			t.Fatal(err)
		}
		c := tlog.Checkpoint{Origin: "prop.example/log", Size: uint64(size), Root: root}
		cp, err := note.Sign(&note.Note{Text: string(c.Marshal())}, logSigner, wSigner)
		if err != nil {
			t.Fatal(err)
		}
		for i := int64(0); i < size; i++ {
			rp, err := xtlog.ProveRecord(size, i, hr)
			if err != nil {
				t.Fatal(err)
			}
			p := &tlogproof.Proof{Index: uint64(i), Checkpoint: cp}
			for _, h := range rp {
				p.Hashes = append(p.Hashes, h)
			}
			b := p.Marshal()
			q, err := tlogproof.Parse(b)
			if err != nil {
				t.Fatalf("size %d index %d: %v", size, i, err)
			}
			leaf := tlogproof.LeafHash(fmt.Appendf(nil, "entry %d", i))
			if _, err := tlogproof.Verify(q, leaf, policy); err != nil {
				t.Fatalf("size %d index %d: %v", size, i, err)
			}
			if _, err := tlogproof.Verify(q, tlogproof.LeafHash(fmt.Appendf(nil, "entry %d", i+1)), policy); err == nil {
				t.Fatalf("size %d index %d: another entry verified", size, i)
			}
			if size > 1 {
				moved := *q
				moved.Index = uint64((i + 1) % size)
				if _, err := tlogproof.Verify(&moved, leaf, policy); err == nil {
					t.Fatalf("size %d index %d: verified at index %d", size, i, moved.Index)
				}
			}
			for h := range q.Hashes {
				for _, bit := range []int{0, 31} {
					bad := *q
					bad.Hashes = append([][32]byte(nil), q.Hashes...)
					bad.Hashes[h][bit] ^= 0x80
					if _, err := tlogproof.Verify(&bad, leaf, policy); err == nil {
						t.Fatalf("size %d index %d: hash %d byte %d flipped and it verified", size, i, h, bit)
					}
				}
			}
		}
	}
}
