package tlogproof_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/vigilnet/vigil/roster"
	"github.com/vigilnet/vigil/tlog/tlogproof"
)

// FuzzParse: Parse never panics, and what it accepts Marshal reproduces
// byte for byte and Verify handles without panicking.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.tlog-proof"))
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("c2sp.org/tlog-proof@v1\nindex 0\n\nx\n\n— x AAAA\n"))
	pol, err := os.ReadFile(filepath.Join("testdata", "example.policy"))
	if err != nil {
		f.Fatal(err)
	}
	r, err := roster.ParsePolicy(pol)
	if err != nil {
		f.Fatal(err)
	}
	leaf := tlogproof.LeafHash([]byte("leaf 3"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := tlogproof.Parse(b)
		if err != nil {
			return
		}
		if got := p.Marshal(); !bytes.Equal(got, b) {
			t.Fatalf("round trip:\n%q\n%q", b, got)
		}
		_, _ = tlogproof.Verify(p, leaf, r)
	})
}
