package witness_test

import (
	"encoding/base64"
	"net/http"
	"strings"
	"testing"

	"github.com/vigilnet/vigil/tlog"
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
		checkAccepted(t, body, req.Proof, req.Checkpoint, req.Marshal())
	})
}

// FuzzSignSubtreeHandler drives POST /sign-subtree on a real store with
// arbitrary bodies: never a 5xx, the witness's state never changes, and
// every 200 is exactly one ML-DSA-44 subtree cosignature, timestamp zero,
// that verifies for the request's origin, range and hash.
func FuzzSignSubtreeHandler(f *testing.F) {
	fx := newSubtreeFixture(f, true)
	v, err := tlog.NewMLDSAVerifier(fx.mldsa.VerifierKey())
	if err != nil {
		f.Fatal(err)
	}
	h := fx.tree.mth(8, 13)
	f.Add(subtreeBody(8, 13, h, fx.tree.subproof(8, 13, 0, 13, true), fx.refCP))
	f.Add(subtreeBody(0, 13, fx.tree.mth(0, 13), nil, fx.refCP))
	f.Add(subtreeBody(8, 14, h, nil, fx.refCP))
	f.Fuzz(func(t *testing.T, body []byte) {
		resp := fx.post(t, body)
		if resp.code >= 500 {
			t.Fatalf("status %d: %s", resp.code, resp.body)
		}
		requireSameStates(t, fx.before, snapshot(t, fx.db))
		if resp.code != http.StatusOK {
			return
		}
		req, err := witness.ParseSignSubtreeRequest(body)
		if err != nil {
			t.Fatalf("200 for a body that does not parse: %v", err)
		}
		origin, _ := tlog.OriginOf(req.Checkpoint)
		b64, ok := strings.CutPrefix(resp.body, "— "+witnessName+" ")
		if !ok || strings.Count(resp.body, "\n") != 1 {
			t.Fatalf("200 body is not one signature line: %q", resp.body)
		}
		raw, err := base64.StdEncoding.DecodeString(strings.TrimSuffix(b64, "\n"))
		if err != nil || len(raw) < 4 || !v.VerifySubtree(origin, req.Start, req.End, req.Hash, raw[4:]) {
			t.Fatalf("200 carries no valid subtree cosignature for [%d, %d)", req.Start, req.End)
		}
	})
}
