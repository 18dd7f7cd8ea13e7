package scitt_test

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/vigilnet/vigil/roster"
	"github.com/vigilnet/vigil/scitt"
)

// FuzzParseWitnessedReceipt: the decoder never panics; what it accepts
// re-encodes to a value it decodes the same, and verifying it (against
// keys that are not its own) fails cleanly.
func FuzzParseWitnessedReceipt(f *testing.F) {
	// testdata/witnessed-receipt.cbor: served by TestWitnessedReceipt-style
	// set-up (a log witnessed by a Vigil node, ?checkpoint=latest).
	seed, err := os.ReadFile(filepath.Join("testdata", "witnessed-receipt.cbor"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add([]byte{0xa3, 0x67, 'r', 'e', 'c', 'e', 'i', 'p', 't', 0x41, 0x00, 0x6a, 'c', 'h', 'e', 'c', 'k', 'p', 'o', 'i', 'n', 't', 0x41, 0x00, 0x6b, 'c', 'o', 'n', 's', 'i', 's', 't', 'e', 'n', 'c', 'y', 0x80})
	key := mustKey(f, "ts.vigil.test").Public()
	pol, err := roster.ParsePolicy(nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		w, err := scitt.ParseWitnessedReceipt(b)
		if err != nil {
			return
		}
		enc, err := w.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		w2, err := scitt.ParseWitnessedReceipt(enc)
		if err != nil {
			t.Fatalf("re-encoded witnessed receipt does not parse: %v", err)
		}
		if !slices.Equal(w.Receipt, w2.Receipt) || !slices.Equal(w.Checkpoint, w2.Checkpoint) || len(w.Consistency) != len(w2.Consistency) {
			t.Fatal("re-encoding changed the witnessed receipt")
		}
		if _, err := w.Verify([]byte("entry"), key, pol); err == nil {
			t.Fatal("verified against a key and policy that are not its own")
		}
	})
}
