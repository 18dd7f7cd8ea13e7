package gossip

import (
	"crypto/rand"
	"fmt"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"github.com/vigilnet/vigil/roster"
	"github.com/vigilnet/vigil/tlog"
)

// testVKeys maps the verifiers newTestKey made to their key strings.
var testVKeys = map[note.Verifier]string{}

// countingVerifier counts the signature checks that reach the real verifier.
type countingVerifier struct {
	note.Verifier
	calls *int
}

func (v countingVerifier) Verify(msg, sig []byte) bool {
	*v.calls++
	return v.Verifier.Verify(msg, sig)
}

func newTestKey(t *testing.T, name string) (note.Signer, note.Verifier) {
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, name)
	if err != nil {
		t.Fatal(err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	testVKeys[v] = vkey
	return s, v
}

func signText(t *testing.T, text string, s note.Signer) ([]byte, []byte) {
	t.Helper()
	sig, err := s.Sign([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return []byte(text), sig
}

func TestSigCache(t *testing.T) {
	s, v := newTestKey(t, "log.example")
	msgA, sigA := signText(t, "log.example\n5\nA\n", s)
	msgB, sigB := signText(t, "log.example\n5\nB\n", s)
	bad := append([]byte(nil), sigA...)
	bad[len(bad)-1] ^= 1

	r1, r2 := &roster.Roster{}, &roster.Roster{}
	type check struct {
		r         *roster.Roster
		msg, sig  []byte
		want      bool
		wantCalls int // real verifies so far, cumulative
	}
	tests := []struct {
		name   string
		max    int
		checks []check
	}{
		{"miss then hit", 8, []check{
			{r1, msgA, sigA, true, 1},
			{r1, msgA, sigA, true, 1},
		}},
		{"a cached signature is not valid for another checkpoint", 8, []check{
			{r1, msgA, sigA, true, 1},
			{r1, msgB, sigA, false, 2},
			{r1, msgB, sigA, false, 3}, // failures are never cached
			{r1, msgB, sigB, true, 4},
			{r1, msgB, sigB, true, 4},
		}},
		{"a forged signature fails every time", 8, []check{
			{r1, msgA, sigA, true, 1},
			{r1, msgA, bad, false, 2},
			{r1, msgA, bad, false, 3},
		}},
		{"eviction of the least recently used", 1, []check{
			{r1, msgA, sigA, true, 1},
			{r1, msgB, sigB, true, 2}, // evicts A
			{r1, msgB, sigB, true, 2},
			{r1, msgA, sigA, true, 3},
		}},
		{"a new roster empties the cache", 8, []check{
			{r1, msgA, sigA, true, 1},
			{r2, msgA, sigA, true, 2},
			{r2, msgA, sigA, true, 2},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newSigCache(tt.max)
			calls := 0
			for i, ck := range tt.checks {
				cv := c.wrap(ck.r, countingVerifier{v, &calls})[0]
				if got := cv.Verify(ck.msg, ck.sig); got != ck.want {
					t.Errorf("check %d: Verify = %v, want %v", i, got, ck.want)
				}
				if calls != ck.wantCalls {
					t.Errorf("check %d: %d real verifies, want %d", i, calls, ck.wantCalls)
				}
			}
		})
	}
}

func TestSigKeyFieldsDoNotRunTogether(t *testing.T) {
	a := sigKey("ab", 1, []byte("c"), []byte("d"))
	b := sigKey("a", 1, []byte("bc"), []byte("d"))
	c := sigKey("ab", 2, []byte("c"), []byte("d"))
	if a == b || a == c || b == c {
		t.Fatal("distinct inputs share a cache key")
	}
}

// TestVerifyCheckpointMatchesTlog: the cached path opens notes exactly as
// tlog.VerifyCheckpoint does: the same verified signatures, the same
// refusals, and another log's signature is not one of this log's.
func TestVerifyCheckpointMatchesTlog(t *testing.T) {
	logS, logV := newTestKey(t, "log.example")
	otherS, otherV := newTestKey(t, "other.example")
	wskey, wvkey, err := tlog.GenerateCosignerKey(rand.Reader, "witness.example")
	if err != nil {
		t.Fatal(err)
	}
	ws, err := tlog.NewCosignatureSigner(wskey, nil)
	if err != nil {
		t.Fatal(err)
	}
	policy := fmt.Sprintf("log %s\nlog %s\nwitness w %s\n", testVKeys[logV], testVKeys[otherV], wvkey)
	r, err := roster.ParsePolicy([]byte(policy))
	if err != nil {
		t.Fatal(err)
	}
	body := "log.example\n7\nWmH8K1T5z6cXdPJDIUPdQMbLKxGUf69lp9PaXLZRmcg=\n"
	sign := func(signers ...note.Signer) []byte {
		b, err := note.Sign(&note.Note{Text: body}, signers...)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	good := sign(logS, ws)
	badCosig := append([]byte(nil), good...)
	badCosig[len(badCosig)-5] ^= 'A' ^ 'B'
	lg, _ := r.Log("log.example")
	c := newSigCache(16)
	for _, tc := range []struct {
		name string
		msg  []byte
	}{
		{"log and witness", good},
		{"again, from the cache", good},
		{"forged cosignature", badCosig},
		{"another log's signature only", sign(otherS)},
		{"log and another log", sign(logS, otherS)},
		{"witness only", sign(ws)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantCP, wantN, wantErr := tlog.VerifyCheckpoint(tc.msg, "log.example", []note.Verifier{lg.Verifier}, r.WitnessVerifiers()...)
			gotCP, gotN, gotErr := c.verifyCheckpoint(r, "log.example", tc.msg)
			if (gotErr == nil) != (wantErr == nil) {
				t.Fatalf("err = %v, tlog says %v", gotErr, wantErr)
			}
			if wantErr != nil {
				return
			}
			if gotCP != wantCP || len(gotN.Sigs) != len(wantN.Sigs) {
				t.Fatalf("got %v with %d signatures, tlog says %v with %d", gotCP, len(gotN.Sigs), wantCP, len(wantN.Sigs))
			}
			for i := range gotN.Sigs {
				if gotN.Sigs[i] != wantN.Sigs[i] {
					t.Fatalf("signature %d: %+v, tlog says %+v", i, gotN.Sigs[i], wantN.Sigs[i])
				}
			}
		})
	}
}
