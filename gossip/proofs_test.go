package gossip_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"testing"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"
	"golang.org/x/mod/sumdb/note"

	"github.com/vigilnet/vigil/gossip"
	"github.com/vigilnet/vigil/roster"
	"github.com/vigilnet/vigil/testnet/tesseralog"
)

// TestTileProofsTessera reads a power-of-two subtree root and a proof to
// it from a real Tessera POSIX log of size 15 that never published size 8
// (so it holds no tile/0/000.p/8): the node comes from the tiles that exist.
func TestTileProofsTessera(t *testing.T) {
	ctx := context.Background()
	const origin = "example.com/tile-proofs"
	skey, vkey, err := note.GenerateKey(rand.Reader, origin)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	lg, err := tesseralog.Start(ctx, t.TempDir(), signer)
	if err != nil {
		t.Fatal(err)
	}
	defer lg.Close()
	ref := testonly.New(rfc6962.DefaultHasher)
	var entries [][]byte
	for i := range 15 {
		entries = append(entries, fmt.Appendf(nil, "entry %d", i))
		ref.AppendData(entries[i])
	}
	if _, err := lg.Append(ctx, entries...); err != nil {
		t.Fatal(err)
	}
	if lg.HasTile(0, 0, 8) {
		t.Fatal("Tessera wrote tile/0/000.p/8: it did not integrate the 15 entries as one batch")
	}
	r, err := roster.ParsePolicy(fmt.Appendf(nil, "log %s %s\n", vkey, lg.URL))
	if err != nil {
		t.Fatal(err)
	}
	tp := &gossip.TileProofs{Roster: func() *roster.Roster { return r }}
	for _, m := range []uint64{1, 2, 4, 8} {
		for name, read := range map[string]func() ([]byte, error){
			"SubtreeRoot": func() ([]byte, error) { return tp.SubtreeRoot(ctx, origin, m, 15) },
		} {
			got, err := read()
			if err != nil {
				t.Fatalf("%s(%d): %v", name, m, err)
			}
			if !bytes.Equal(got, ref.HashAt(m)) {
				t.Fatalf("%s(%d) = %x, want %x", name, m, got, ref.HashAt(m))
			}
		}
		p, err := tp.ConsistencyProof(ctx, origin, m, 15)
		if err != nil {
			t.Fatalf("ConsistencyProof(%d, 15): %v", m, err)
		}
		if err := proof.VerifyConsistency(rfc6962.DefaultHasher, m, 15, p, ref.HashAt(m), ref.HashAt(15)); err != nil {
			t.Fatalf("ConsistencyProof(%d, 15): %v", m, err)
		}
	}
}
