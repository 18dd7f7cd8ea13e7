package witness_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"
	"github.com/transparency-dev/tessera/api/layout"
	"golang.org/x/mod/sumdb/note"

	"github.com/vigilnet/vigil/testnet/tesseralog"
	"github.com/vigilnet/vigil/witness"
)

// TestTileClientTesseraSizes builds proofs from a real Tessera POSIX log
// that integrated 3 entries, then 12 in one batch: it holds partial tiles
// for sizes 3 and 15 only (no tile/0/000.p/8). Every proof to size 15 and
// every subtree root must come from the tiles of size 15.
func TestTileClientTesseraSizes(t *testing.T) {
	ctx := context.Background()
	skey, _, err := note.GenerateKey(rand.Reader, "example.com/tessera-tiles")
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
	appendN := func(from, to int) {
		t.Helper()
		var entries [][]byte
		for i := from; i < to; i++ {
			e := fmt.Appendf(nil, "entry %d", i)
			entries = append(entries, e)
			ref.AppendData(e)
		}
		if _, err := lg.Append(ctx, entries...); err != nil {
			t.Fatal(err)
		}
	}
	appendN(0, 3)
	appendN(3, 15)
	if lg.HasTile(0, 0, 8) || !lg.HasTile(0, 0, 15) {
		t.Fatal("Tessera did not integrate 12 entries as one batch: the log should hold tile/0/000.p/15 and no .p/8")
	}
	c, err := witness.NewTileClient(lg.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	const n = 15
	for _, m := range []uint64{1, 2, 3, 4, 7, 8, 9, 14} {
		got, err := c.ConsistencyProof(ctx, m, n)
		if err != nil {
			t.Fatalf("consistency proof %d→%d: %v", m, n, err)
		}
		want, err := ref.ConsistencyProof(m, n)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("consistency proof %d→%d: %d hashes, want %d", m, n, len(got), len(want))
		}
		for i := range got {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("consistency proof %d→%d: hash %d differs", m, n, i)
			}
		}
	}
	for _, m := range []uint64{1, 2, 4, 8} {
		got, err := c.SubtreeRoot(ctx, m, n)
		if err != nil {
			t.Fatalf("subtree root %d at size %d: %v", m, n, err)
		}
		if want := ref.HashAt(m); !bytes.Equal(got, want) {
			t.Fatalf("subtree root %d: %x, want %x", m, got, want)
		}
	}
	// Every hash tile read was read with the width it has at size n.
	for _, path := range lg.Requests() {
		rest, ok := strings.CutPrefix(path, "/tile/")
		if !ok || strings.HasPrefix(rest, "entries/") {
			continue
		}
		level, index, p, err := parseTilePath(rest)
		if err != nil {
			t.Fatalf("request %s: %v", path, err)
		}
		if want := layout.PartialTileSize(level, index, n); p != want {
			t.Errorf("read %s: width %d, but at size %d the tile has width %d", path, p, n, want)
		}
	}
}

func parseTilePath(s string) (level, index uint64, p uint8, err error) {
	l, rest, ok := strings.Cut(s, "/")
	if !ok {
		return 0, 0, 0, fmt.Errorf("no tile index in %q", s)
	}
	if level, err = strconv.ParseUint(l, 10, 64); err != nil {
		return 0, 0, 0, err
	}
	index, p, err = layout.ParseTileIndexPartial(rest)
	return level, index, p, err
}
