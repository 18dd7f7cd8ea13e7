package witness_test

import (
	"bytes"
	"crypto/mldsa"
	"encoding/base64"
	"encoding/binary"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"

	"github.com/vigilnet/vigil/store"
	"github.com/vigilnet/vigil/tlog"
	"github.com/vigilnet/vigil/witness"
)

// refTree is an in-memory RFC 6962 tree over leaf hashes: the test's own
// reference for subtree hashes and subtree consistency proofs
// (draft-ietf-plants-merkle-tree-certs-03 §4.3, §4.4), built from the
// definitions and independent of witness.VerifySubtreeConsistency.
type refTree [][]byte

func newRefTree(n int) refTree {
	t := make(refTree, n)
	for i := range t {
		t[i] = rfc6962.DefaultHasher.HashLeaf([]byte{byte(i), byte(i >> 8), 'x'})
	}
	return t
}

func (t refTree) mth(lo, hi uint64) [32]byte {
	var h [32]byte
	switch {
	case hi-lo == 1:
		copy(h[:], t[lo])
	default:
		k := uint64(1)
		for k*2 < hi-lo {
			k *= 2
		}
		l, r := t.mth(lo, lo+k), t.mth(lo+k, hi)
		copy(h[:], rfc6962.DefaultHasher.HashChildren(l[:], r[:]))
	}
	return h
}

// subproof is SUBTREE_SUBPROOF: the proof that [start, end) is part of the
// tree [lo, hi); known means the verifier holds the subtree's hash.
func (t refTree) subproof(start, end, lo, hi uint64, known bool) [][]byte {
	if start == lo && end == hi {
		if known {
			return nil
		}
		h := t.mth(lo, hi)
		return [][]byte{h[:]}
	}
	k := uint64(1)
	for k*2 < hi-lo {
		k *= 2
	}
	mid := lo + k
	switch {
	case end <= mid:
		r := t.mth(mid, hi)
		return append(t.subproof(start, end, lo, mid, known), r[:])
	case start >= mid:
		l := t.mth(lo, mid)
		return append(t.subproof(start, end, mid, hi, known), l[:])
	default: // the subtree covers [lo, mid) and part of [mid, hi)
		l := t.mth(lo, mid)
		return append(t.subproof(mid, end, mid, hi, false), l[:])
	}
}

func TestValidSubtree(t *testing.T) {
	for _, tc := range []struct {
		start, end uint64
		ok         bool
	}{
		{0, 1, true}, {5, 6, true}, {0, 7, true}, {8, 13, true}, {8, 16, true},
		{4, 8, true}, {0, 1 << 63, true},
		{3, 5, false}, {4, 9, false}, {2, 5, false}, {6, 10, false},
		{5, 5, false}, {6, 5, false}, {1 << 62, 1<<63 + 1<<62, false},
	} {
		if got := witness.ValidSubtree(tc.start, tc.end); got != tc.ok {
			t.Errorf("ValidSubtree(%d, %d) = %v, want %v", tc.start, tc.end, got, tc.ok)
		}
	}
}

// TestVerifySubtreeConsistency: every valid subtree of every tree up to 33
// leaves verifies with the reference proof, and no proof with a hash
// changed, dropped or added does. For start 0 the proof is an RFC 6962
// consistency proof, which transparency-dev/merkle checks independently.
func TestVerifySubtreeConsistency(t *testing.T) {
	tree := newRefTree(33)
	checked := 0
	for n := uint64(1); n <= 33; n++ {
		root := tree.mth(0, n)
		for end := uint64(1); end <= n; end++ {
			for start := uint64(0); start < end; start++ {
				if !witness.ValidSubtree(start, end) {
					continue
				}
				node := tree.mth(start, end)
				p := tree.subproof(start, end, 0, n, true)
				if err := witness.VerifySubtreeConsistency(start, end, n, node, root, p); err != nil {
					t.Fatalf("[%d, %d) in %d: %v", start, end, n, err)
				}
				if start == 0 && end < n {
					if err := proof.VerifyConsistency(rfc6962.DefaultHasher, end, n, p, node[:], root[:]); err != nil {
						t.Fatalf("[0, %d) in %d: transparency-dev/merkle rejects the proof: %v", end, n, err)
					}
				}
				for i := range p {
					bad := cloneProof(p)
					bad[i][3] ^= 1
					if witness.VerifySubtreeConsistency(start, end, n, node, root, bad) == nil {
						t.Fatalf("[%d, %d) in %d: hash %d flipped, accepted", start, end, n, i)
					}
				}
				if len(p) > 0 && witness.VerifySubtreeConsistency(start, end, n, node, root, p[:len(p)-1]) == nil {
					t.Fatalf("[%d, %d) in %d: truncated proof accepted", start, end, n)
				}
				if witness.VerifySubtreeConsistency(start, end, n, node, root, append(cloneProof(p), root[:])) == nil {
					t.Fatalf("[%d, %d) in %d: extended proof accepted", start, end, n)
				}
				other := node
				other[0] ^= 1
				if witness.VerifySubtreeConsistency(start, end, n, other, root, p) == nil {
					t.Fatalf("[%d, %d) in %d: wrong subtree hash accepted", start, end, n)
				}
				checked++
			}
		}
	}
	if checked < 500 {
		t.Fatalf("only %d cases checked", checked)
	}
}

func cloneProof(p [][]byte) [][]byte {
	out := make([][]byte, len(p))
	for i, h := range p {
		out[i] = bytes.Clone(h)
	}
	return out
}

// subtreeFixture is a witness with an Ed25519 and an ML-DSA-44 key on a
// real Badger store behind real HTTP.
type subtreeFixture struct {
	db     *store.DB
	srv    *httptest.Server
	mldsa  *tlog.MLDSASigner
	ed     *tlog.CosignatureSigner
	l      *testLog
	refCP  []byte // the log's checkpoint at 13 with this witness's cosignatures
	tree   refTree
	before map[string]store.WitnessState
}

func newSubtreeFixture(t testing.TB, withMLDSA bool) *subtreeFixture {
	t.Helper()
	f := &subtreeFixture{l: newTestLog(t, "example.com/subtree", nil)}
	eskey, _, err := tlog.GenerateCosignerKey(nil, witnessName)
	if err != nil {
		t.Fatal(err)
	}
	if f.ed, err = tlog.NewCosignatureSigner(eskey, nil); err != nil {
		t.Fatal(err)
	}
	mskey, _, err := tlog.GenerateMLDSACosignerKey(witnessName)
	if err != nil {
		t.Fatal(err)
	}
	if f.mldsa, err = tlog.NewMLDSASigner(mskey, nil); err != nil {
		t.Fatal(err)
	}
	if f.db, err = store.Open(t.TempDir(), store.Options{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.db.Close() })
	logger := slog.New(slog.DiscardHandler)
	if _, fuzzing := t.(*testing.F); !fuzzing {
		// A fuzz target must not log through the F.
		logger = testLogger(t)
	}
	cfg := witness.Config{Signer: f.ed, Logs: policyFor(t, f.l), Store: f.db, Logger: logger}
	if withMLDSA {
		cfg.Signers = []note.Signer{f.mldsa}
	}
	w, err := witness.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.srv = httptest.NewServer(w.Handler())
	t.Cleanup(f.srv.Close)

	// Cosign the log at 13 through add-checkpoint: the reference.
	f.l.grow(13, "e")
	cp := f.l.checkpoint(t, 13)
	resp := doRequest(t, f.srv.Client(), http.MethodPost, f.srv.URL+"/add-checkpoint", requestBody(0, nil, cp))
	if resp.code != http.StatusOK {
		t.Fatalf("add-checkpoint: %d %s", resp.code, resp.body)
	}
	if want := 1 + btoi(withMLDSA); strings.Count(resp.body, "\n") != want {
		t.Fatalf("add-checkpoint returned %d lines, want %d", strings.Count(resp.body, "\n"), want)
	}
	f.refCP = append(bytes.Clone(cp), resp.body...)
	for i := uint64(0); i < 13; i++ {
		e, err := f.l.Leaf(i)
		if err != nil {
			t.Fatal(err)
		}
		f.tree = append(f.tree, rfc6962.DefaultHasher.HashLeaf(e))
	}
	if f.tree.mth(0, 13) != f.l.root(t, 13) {
		t.Fatal("reference tree disagrees with the log")
	}
	f.before = snapshot(t, f.db)
	return f
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (f *subtreeFixture) post(t testing.TB, body []byte) response {
	t.Helper()
	return doRequest(t, f.srv.Client(), http.MethodPost, f.srv.URL+"/sign-subtree", body)
}

// body encodes a sign-subtree request by hand.
func subtreeBody(start, end uint64, hash [32]byte, p [][]byte, cp []byte) []byte {
	var b bytes.Buffer
	b.WriteString("subtree ")
	b.WriteString(strconv.FormatUint(start, 10) + " " + strconv.FormatUint(end, 10) + "\n")
	b.WriteString(base64.StdEncoding.EncodeToString(hash[:]) + "\n")
	for _, h := range p {
		b.WriteString(base64.StdEncoding.EncodeToString(h) + "\n")
	}
	b.WriteString("\n")
	b.Write(cp)
	return b.Bytes()
}

// TestSignSubtree: a valid request gets one ML-DSA-44 subtree cosignature
// line with timestamp zero that crypto/mldsa verifies over the subtree/v1
// message; the witness's state does not change.
func TestSignSubtree(t *testing.T) {
	f := newSubtreeFixture(t, true)
	for _, r := range []struct{ start, end uint64 }{{8, 13}, {0, 8}, {12, 13}, {0, 13}, {8, 12}} {
		h := f.tree.mth(r.start, r.end)
		resp := f.post(t, subtreeBody(r.start, r.end, h, f.tree.subproof(r.start, r.end, 0, 13, true), f.refCP))
		if resp.code != http.StatusOK {
			t.Fatalf("[%d, %d): %d %s", r.start, r.end, resp.code, resp.body)
		}
		if strings.Count(resp.body, "\n") != 1 {
			t.Fatalf("%d lines, want one (the Ed25519 key cannot sign subtrees)", strings.Count(resp.body, "\n"))
		}
		b64, ok := strings.CutPrefix(strings.TrimSuffix(resp.body, "\n"), "— "+witnessName+" ")
		if !ok {
			t.Fatalf("not a signature line by %s: %q", witnessName, resp.body[:40])
		}
		raw, err := base64.StdEncoding.DecodeString(b64)
		if err != nil || len(raw) != 4+8+mldsa.MLDSA44SignatureSize {
			t.Fatalf("line is %d bytes (%v), want 2432", len(raw), err)
		}
		if binary.BigEndian.Uint32(raw) != f.mldsa.KeyHash() {
			t.Fatalf("key ID %x", raw[:4])
		}
		// SPEC: subtree cosignatures have timestamp zero.
		if ts := binary.BigEndian.Uint64(raw[4:]); ts != 0 {
			t.Fatalf("timestamp %d, want 0", ts)
		}
		msg, err := tlog.SubtreeMessage(witnessName, 0, "example.com/subtree", r.start, r.end, h)
		if err != nil {
			t.Fatal(err)
		}
		pkb, _ := base64.StdEncoding.DecodeString(strings.SplitN(f.mldsa.VerifierKey(), "+", 3)[2])
		pk, err := mldsa.NewPublicKey(mldsa.MLDSA44(), pkb[1:])
		if err != nil {
			t.Fatal(err)
		}
		if err := mldsa.Verify(pk, msg, raw[12:], nil); err != nil {
			t.Fatalf("crypto/mldsa rejects the subtree cosignature: %v", err)
		}
	}
	requireSameStates(t, f.before, snapshot(t, f.db))
}

// TestSignSubtreeErrors: each refusal of c2sp.org/tlog-witness sign-subtree
// with its status, and the witness's state unchanged after every one.
func TestSignSubtreeErrors(t *testing.T) {
	f := newSubtreeFixture(t, true)
	h := f.tree.mth(8, 13)
	good := f.tree.subproof(8, 13, 0, 13, true)
	logOnly := f.l.checkpoint(t, 13)
	// The same checkpoint cosigned by another witness key of the same name.
	otherSkey, _, err := tlog.GenerateMLDSACosignerKey(witnessName)
	if err != nil {
		t.Fatal(err)
	}
	other, err := tlog.NewMLDSASigner(otherSkey, nil)
	if err != nil {
		t.Fatal(err)
	}
	otherCosigned := cosignWith(t, f.l, logOnly, other)
	// This witness's own cosignature, corrupted.
	corrupt := bytes.Clone(f.refCP)
	i := bytes.LastIndex(corrupt, []byte("— "+witnessName+" "))
	// A different base64 letter: still base64, another signature.
	if pos := i + len("— "+witnessName+" ") + 40; corrupt[pos] == 'A' {
		corrupt[pos] = 'B'
	} else {
		corrupt[pos] = 'A'
	}
	unknown := newTestLog(t, "example.com/unknown", nil)
	unknown.grow(13, "u")
	wrongHash := h
	wrongHash[0] ^= 1
	badProof := cloneProof(good)
	badProof[0][0] ^= 1
	tooMany := make([][]byte, 64)
	for i := range tooMany {
		tooMany[i] = make([]byte, 32)
	}
	for _, tc := range []struct {
		name string
		body []byte
		want int
	}{
		{"no empty line", []byte("subtree 8 13\n" + b64(h) + "\n"), 400},
		{"not a subtree line", []byte("old 8\n" + b64(h) + "\n\n" + string(f.refCP)), 400},
		{"leading zero", []byte("subtree 08 13\n" + b64(h) + "\n\n" + string(f.refCP)), 400},
		{"missing end", []byte("subtree 8\n" + b64(h) + "\n\n" + string(f.refCP)), 400},
		{"hash not base64", []byte("subtree 8 13\nnot-a-hash\n\n" + string(f.refCP)), 400},
		{"64 proof lines", subtreeBody(8, 13, h, tooMany, f.refCP), 400},
		{"not a valid subtree", subtreeBody(4, 9, h, good, f.refCP), 400},
		{"empty subtree", subtreeBody(8, 8, h, good, f.refCP), 400},
		{"end past the checkpoint", subtreeBody(8, 14, h, good, f.refCP), 400},
		{"unknown origin", subtreeBody(8, 13, h, good, append(unknown.checkpoint(t, 13), f.refCP[bytes.Index(f.refCP, []byte("\n\n"))+2:]...)), 404},
		{"log signature only", subtreeBody(8, 13, h, good, logOnly), 403},
		{"another witness key's cosignature", subtreeBody(8, 13, h, good, otherCosigned), 403},
		{"own cosignature corrupted", subtreeBody(8, 13, h, good, corrupt), 403},
		{"wrong subtree hash", subtreeBody(8, 13, wrongHash, good, f.refCP), 422},
		{"bad proof", subtreeBody(8, 13, h, badProof, f.refCP), 422},
		{"proof too short", subtreeBody(8, 13, h, good[:len(good)-1], f.refCP), 422},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := f.post(t, tc.body)
			if resp.code != tc.want {
				t.Fatalf("status %d (%s), want %d", resp.code, resp.body, tc.want)
			}
			if strings.Contains(resp.body, "— ") {
				t.Fatalf("refusal carries a signature line: %q", resp.body)
			}
		})
	}
	requireSameStates(t, f.before, snapshot(t, f.db))
}

// TestSignSubtreeNeedsMLDSA: without a subtree-capable key the endpoint is
// not routed (404), as transparency-dev/witness does.
func TestSignSubtreeNeedsMLDSA(t *testing.T) {
	f := newSubtreeFixture(t, false)
	h := f.tree.mth(8, 13)
	resp := f.post(t, subtreeBody(8, 13, h, f.tree.subproof(8, 13, 0, 13, true), f.refCP))
	if resp.code != http.StatusNotFound {
		t.Fatalf("status %d, want 404", resp.code)
	}
}

// TestSignSubtreeEd25519Reference: a reference checkpoint carrying only
// this witness's Ed25519 cosignature is accepted: either own key counts.
func TestSignSubtreeEd25519Reference(t *testing.T) {
	f := newSubtreeFixture(t, true)
	logOnly := f.l.checkpoint(t, 13)
	ref := cosignWith(t, f.l, logOnly, f.ed)
	h := f.tree.mth(0, 8)
	resp := f.post(t, subtreeBody(0, 8, h, f.tree.subproof(0, 8, 0, 13, true), ref))
	if resp.code != http.StatusOK {
		t.Fatalf("status %d %s", resp.code, resp.body)
	}
}

func cosignWith(t *testing.T, l *testLog, cp []byte, s note.Signer) []byte {
	t.Helper()
	v, err := tlog.NewNoteVerifier(l.VerifierKey())
	if err != nil {
		t.Fatal(err)
	}
	n, err := note.Open(cp, note.VerifierList(v))
	if err != nil {
		t.Fatal(err)
	}
	out, err := note.Sign(n, s)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func b64(h [32]byte) string { return base64.StdEncoding.EncodeToString(h[:]) }

// TestSignSubtreeRequestRoundTrip: Marshal and the parser agree.
func TestSignSubtreeRequestRoundTrip(t *testing.T) {
	tree := newRefTree(13)
	req := &witness.SignSubtreeRequest{Start: 8, End: 13, Hash: tree.mth(8, 13), Proof: tree.subproof(8, 13, 0, 13, true), Checkpoint: []byte("cp\n\n— x y\n")}
	got, err := witness.ParseSignSubtreeRequest(req.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	if got.Start != 8 || got.End != 13 || got.Hash != req.Hash || len(got.Proof) != len(req.Proof) || !bytes.Equal(got.Checkpoint, req.Checkpoint) {
		t.Fatalf("round trip: %+v", got)
	}
}
