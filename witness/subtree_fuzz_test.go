package witness_test

import (
	"bytes"
	"testing"

	"github.com/vigilnet/vigil/witness"
)

// FuzzParseSignSubtreeRequest: whatever the sign-subtree parser accepts is
// within the bounds and re-marshals byte for byte (the parser takes only
// canonical decimals and base64). Seeds: testdata/fuzz/FuzzParseSignSubtreeRequest.
func FuzzParseSignSubtreeRequest(f *testing.F) {
	tree := newRefTree(13)
	good := &witness.SignSubtreeRequest{Start: 8, End: 13, Hash: tree.mth(8, 13), Proof: tree.subproof(8, 13, 0, 13, true), Checkpoint: []byte("example.com/log\n13\nAAAA\n\n— example.com/log AAAA\n")}
	f.Add(good.Marshal())
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := witness.ParseSignSubtreeRequest(body)
		if err != nil {
			return
		}
		if len(req.Proof) > witness.MaxProofLines {
			t.Fatalf("accepted %d proof lines", len(req.Proof))
		}
		for _, h := range req.Proof {
			if len(h) != 32 {
				t.Fatalf("accepted a %d-byte proof hash", len(h))
			}
		}
		if len(req.Checkpoint) == 0 {
			t.Fatal("accepted an empty checkpoint")
		}
		if got := req.Marshal(); !bytes.Equal(got, body) {
			t.Fatalf("accepted request re-marshals differently:\n%q\n%q", body, got)
		}
	})
}
