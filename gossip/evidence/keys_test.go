package evidence_test

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"sync"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"github.com/vigilnet/vigil/gossip/evidence"
	vpb "github.com/vigilnet/vigil/proto"
)

// memoKeys is an evidence.Keys that remembers the signatures that verified
// (as a node's signature cache does) and counts the checks that reached
// the real keys.
type memoKeys struct {
	mu    sync.Mutex
	ok    map[string]bool
	calls int
}

type memoVerifier struct {
	note.Verifier
	m *memoKeys
}

func (v memoVerifier) Verify(msg, sig []byte) bool {
	k := fmt.Sprintf("%s %08x %q %q", v.Name(), v.KeyHash(), msg, sig)
	v.m.mu.Lock()
	defer v.m.mu.Unlock()
	if v.m.ok[k] {
		return true
	}
	v.m.calls++
	if !v.Verifier.Verify(msg, sig) {
		return false
	}
	v.m.ok[k] = true
	return true
}

func (m *memoKeys) keys(vs ...note.Verifier) []note.Verifier {
	out := make([]note.Verifier, len(vs))
	for i, v := range vs {
		out[i] = memoVerifier{v, m}
	}
	return out
}

// TestVerifyWithKeys: evidence checked through keys that remember verified
// signatures is judged exactly as by Verify, a second check of the same
// evidence verifies no signature again, and a signature line changed after
// the first check still makes the evidence invalid.
func TestVerifyWithKeys(t *testing.T) {
	fx := newFixture(t)
	w := fx.witness
	valid := []*vpb.Evidence{
		{Kind: vpb.Kind_KIND_LOG_EQUIVOCATION_SAME_SIZE, CheckpointA: checkpoint(t, fx.log, 12, w), CheckpointB: checkpoint(t, fx.fork, 12)},
		{Kind: vpb.Kind_KIND_LOG_EQUIVOCATION_DIFFERENT_SIZES, CheckpointA: checkpoint(t, fx.fork, 7), CheckpointB: checkpoint(t, fx.log, 12, w), ConsistencyProof: consistency(t, fx.log, 7, 12)},
		{Kind: vpb.Kind_KIND_WITNESS_EQUIVOCATION, WitnessKey: fx.wvkey, CheckpointA: checkpoint(t, fx.log, 12, w), CheckpointB: checkpoint(t, fx.fork, 12, w)},
	}
	for _, e := range valid {
		t.Run(vpb.KindName(e.Kind), func(t *testing.T) {
			m := &memoKeys{ok: map[string]bool{}}
			want, err := evidence.Verify(e, fx.roster)
			if err != nil {
				t.Fatal(err)
			}
			for i := range 2 {
				before := m.calls
				got, err := evidence.VerifyWith(e, fx.roster, m.keys)
				if err != nil {
					t.Fatalf("check %d: %v", i+1, err)
				}
				if got.Statement() != want.Statement() {
					t.Fatalf("check %d: %q, want %q", i+1, got.Statement(), want.Statement())
				}
				if i == 1 && m.calls != before {
					t.Errorf("the second check verified %d signatures again", m.calls-before)
				}
			}
			// Each signature line in turn, corrupted: invalid, although the
			// genuine line is remembered.
			for _, side := range []*[]byte{&e.CheckpointA, &e.CheckpointB} {
				orig := *side
				for i := range bytes.Count(orig[bytes.Index(orig, []byte("\n\n"))+2:], []byte("\n")) {
					*side = corruptLine(t, orig, i)
					if _, err := evidence.VerifyWith(e, fx.roster, m.keys); err == nil {
						t.Errorf("signature line %d corrupted: evidence still valid", i+1)
					}
				}
				*side = orig
			}
		})
	}
}

// corruptLine flips a bit of the i-th signature line of a signed note.
func corruptLine(t *testing.T, n []byte, i int) []byte {
	t.Helper()
	at := bytes.Index(n, []byte("\n\n")) + 2
	lines := bytes.SplitAfter(n[at:], []byte("\n"))
	name, b64, _ := bytes.Cut(bytes.TrimSuffix(bytes.TrimPrefix(lines[i], []byte("— ")), []byte("\n")), []byte(" "))
	raw, err := base64.StdEncoding.DecodeString(string(b64))
	if err != nil {
		t.Fatal(err)
	}
	raw[len(raw)-1] ^= 1
	out := append([]byte(nil), n[:at]...)
	for j, l := range lines {
		if j == i {
			l = fmt.Appendf(nil, "— %s %s\n", name, base64.StdEncoding.EncodeToString(raw))
		}
		out = append(out, l...)
	}
	return out
}
