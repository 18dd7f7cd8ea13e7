package evidence_test

import (
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"

	"github.com/vigilnet/vigil/gossip/evidence"
	vpb "github.com/vigilnet/vigil/proto"
	"github.com/vigilnet/vigil/roster"
	"github.com/vigilnet/vigil/testnet/scriptlog"
	"github.com/vigilnet/vigil/tlog"
)

type fixture struct {
	log      *scriptlog.Log
	fork     *scriptlog.Log
	roster   *roster.Roster
	witness  *tlog.CosignatureSigner
	wvkey    string
	stranger *tlog.CosignatureSigner
}

// newFixture returns a log of 12 entries and a fork that shares the first 5
// and then diverges, with a roster listing the log and one witness.
func newFixture(t testing.TB) *fixture {
	t.Helper()
	l, err := scriptlog.New("example.com/log")
	if err != nil {
		t.Fatal(err)
	}
	l.AppendN(5, "common")
	f, err := l.Fork(5)
	if err != nil {
		t.Fatal(err)
	}
	l.AppendN(7, "view-a")
	f.AppendN(7, "view-b")
	skey, vkey, err := tlog.GenerateCosignerKey(rand.Reader, "witness.example/w1")
	if err != nil {
		t.Fatal(err)
	}
	w, err := tlog.NewCosignatureSigner(skey, func() time.Time { return time.Unix(1700000000, 0) })
	if err != nil {
		t.Fatal(err)
	}
	skey2, _, _ := tlog.GenerateCosignerKey(rand.Reader, "witness.example/w1")
	stranger, _ := tlog.NewCosignatureSigner(skey2, nil)
	r, err := roster.ParsePolicy(fmt.Appendf(nil, "log %s\nwitness w1 %s\nquorum w1\n", l.VerifierKey(), vkey))
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{log: l, fork: f, roster: r, witness: w, wvkey: vkey, stranger: stranger}
}

func checkpoint(t testing.TB, l *scriptlog.Log, size uint64, cosigners ...note.Signer) []byte {
	t.Helper()
	cp, err := l.CheckpointAt(size)
	if err != nil {
		t.Fatal(err)
	}
	if len(cosigners) == 0 {
		return cp
	}
	n, err := note.Open(cp, note.VerifierList(mustVerifier(t, l.VerifierKey())))
	if err != nil {
		t.Fatal(err)
	}
	out, err := note.Sign(n, cosigners...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func mustVerifier(t testing.TB, vkey string) note.Verifier {
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func consistency(t testing.TB, l *scriptlog.Log, m, n uint64) [][]byte {
	t.Helper()
	p, err := l.ConsistencyProof(m, n)
	if err != nil {
		t.Fatal(err)
	}
	root, err := l.Root(m)
	if err != nil {
		t.Fatal(err)
	}
	return evidence.EvidenceProof(m, root[:], p)
}

func TestVerify(t *testing.T) {
	fx := newFixture(t)
	w, s := fx.witness, fx.stranger
	tests := []struct {
		name    string
		e       *vpb.Evidence
		wantErr bool
		want    string // substring of the statement
	}{
		{"same size", &vpb.Evidence{Kind: vpb.Kind_KIND_LOG_EQUIVOCATION_SAME_SIZE,
			CheckpointA: checkpoint(t, fx.log, 12), CheckpointB: checkpoint(t, fx.fork, 12)}, false, "two different roots for tree size 12"},
		{"different sizes", &vpb.Evidence{Kind: vpb.Kind_KIND_LOG_EQUIVOCATION_DIFFERENT_SIZES,
			CheckpointA: checkpoint(t, fx.fork, 7), CheckpointB: checkpoint(t, fx.log, 12), ConsistencyProof: consistency(t, fx.log, 7, 12)}, false, "inconsistent"},
		{"different sizes, power of two", &vpb.Evidence{Kind: vpb.Kind_KIND_LOG_EQUIVOCATION_DIFFERENT_SIZES,
			CheckpointA: checkpoint(t, fx.fork, 8), CheckpointB: checkpoint(t, fx.log, 11), ConsistencyProof: consistency(t, fx.log, 8, 11)}, false, "inconsistent"},
		{"witness, same size", &vpb.Evidence{Kind: vpb.Kind_KIND_WITNESS_EQUIVOCATION, WitnessKey: fx.wvkey,
			CheckpointA: checkpoint(t, fx.log, 12, w), CheckpointB: checkpoint(t, fx.fork, 12, w)}, false, `witness "w1"`},
		{"witness, different sizes", &vpb.Evidence{Kind: vpb.Kind_KIND_WITNESS_EQUIVOCATION, WitnessKey: fx.wvkey,
			CheckpointA: checkpoint(t, fx.fork, 6, w), CheckpointB: checkpoint(t, fx.log, 9, w), ConsistencyProof: consistency(t, fx.log, 6, 9)}, false, `witness "w1"`},

		{"consistent checkpoints", &vpb.Evidence{Kind: vpb.Kind_KIND_LOG_EQUIVOCATION_DIFFERENT_SIZES,
			CheckpointA: checkpoint(t, fx.log, 7), CheckpointB: checkpoint(t, fx.log, 12), ConsistencyProof: consistency(t, fx.log, 7, 12)}, true, ""},
		{"same checkpoint twice", &vpb.Evidence{Kind: vpb.Kind_KIND_LOG_EQUIVOCATION_SAME_SIZE,
			CheckpointA: checkpoint(t, fx.log, 12), CheckpointB: checkpoint(t, fx.log, 12)}, true, ""},
		{"proof not bound to B", &vpb.Evidence{Kind: vpb.Kind_KIND_LOG_EQUIVOCATION_DIFFERENT_SIZES,
			CheckpointA: checkpoint(t, fx.fork, 7), CheckpointB: checkpoint(t, fx.log, 12), ConsistencyProof: consistency(t, fx.fork, 7, 12)}, true, ""},
		{"A larger than B", &vpb.Evidence{Kind: vpb.Kind_KIND_LOG_EQUIVOCATION_DIFFERENT_SIZES,
			CheckpointA: checkpoint(t, fx.log, 12), CheckpointB: checkpoint(t, fx.fork, 7), ConsistencyProof: consistency(t, fx.log, 7, 12)}, true, ""},
		{"kind says same size", &vpb.Evidence{Kind: vpb.Kind_KIND_LOG_EQUIVOCATION_SAME_SIZE,
			CheckpointA: checkpoint(t, fx.fork, 7), CheckpointB: checkpoint(t, fx.log, 12)}, true, ""},
		{"unsigned by the log", &vpb.Evidence{Kind: vpb.Kind_KIND_LOG_EQUIVOCATION_SAME_SIZE,
			CheckpointA: checkpoint(t, fx.log, 12), CheckpointB: []byte(strings.SplitAfter(string(checkpoint(t, fx.fork, 12)), "\n\n")[0] + "— example.com/log AAAAAAAA\n")}, true, ""},
		{"witness cosigned one", &vpb.Evidence{Kind: vpb.Kind_KIND_WITNESS_EQUIVOCATION, WitnessKey: fx.wvkey,
			CheckpointA: checkpoint(t, fx.log, 12, w), CheckpointB: checkpoint(t, fx.fork, 12, s)}, true, ""},
		{"witness not in roster", &vpb.Evidence{Kind: vpb.Kind_KIND_WITNESS_EQUIVOCATION, WitnessKey: s.VerifierKey(),
			CheckpointA: checkpoint(t, fx.log, 12, s), CheckpointB: checkpoint(t, fx.fork, 12, s)}, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := evidence.Verify(tt.e, fx.roster)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("verified invalid evidence: %s", f.Statement())
				}
				if !errors.Is(err, evidence.ErrInvalid) && !errors.Is(err, vpb.ErrMalformed) {
					t.Fatalf("error %v is neither ErrInvalid nor ErrMalformed", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(f.Statement(), tt.want) {
				t.Fatalf("statement %q does not contain %q", f.Statement(), tt.want)
			}
			// Every valid evidence survives the file format.
			b, err := evidence.MarshalFile(tt.e)
			if err != nil {
				t.Fatal(err)
			}
			e2, err := evidence.ParseFile(b)
			if err != nil {
				t.Fatal(err)
			}
			if evidence.ID(e2) != evidence.ID(tt.e) {
				t.Fatal("file round trip changed the ID")
			}
			if _, err := evidence.Verify(e2, fx.roster); err != nil {
				t.Fatalf("parsed file: %v", err)
			}
		})
	}
}

func TestIDIsOrderIndependentForSameSize(t *testing.T) {
	fx := newFixture(t)
	a, b := checkpoint(t, fx.log, 12), checkpoint(t, fx.fork, 12, fx.witness)
	e1 := &vpb.Evidence{Kind: vpb.Kind_KIND_LOG_EQUIVOCATION_SAME_SIZE, CheckpointA: a, CheckpointB: b}
	e2 := &vpb.Evidence{Kind: vpb.Kind_KIND_LOG_EQUIVOCATION_SAME_SIZE, CheckpointA: checkpoint(t, fx.fork, 12), CheckpointB: a, Observer: "x"}
	if evidence.ID(e1) != evidence.ID(e2) {
		t.Fatal("the same split view got two IDs")
	}
	e3 := &vpb.Evidence{Kind: vpb.Kind_KIND_LOG_EQUIVOCATION_SAME_SIZE, CheckpointA: checkpoint(t, fx.log, 11), CheckpointB: checkpoint(t, fx.fork, 11)}
	if evidence.ID(e1) == evidence.ID(e3) {
		t.Fatal("different split views share an ID")
	}
}

// TestRootsFromConsistency cross-checks against transparency-dev/merkle for
// every pair of sizes up to 70: for honest proofs both roots come back.
func TestRootsFromConsistency(t *testing.T) {
	l, err := scriptlog.New("example.com/log")
	if err != nil {
		t.Fatal(err)
	}
	l.AppendN(70, "x")
	for n := uint64(2); n <= 70; n++ {
		rn, _ := l.Root(n)
		for m := uint64(1); m < n; m++ {
			rm, _ := l.Root(m)
			p, err := l.ConsistencyProof(m, n)
			if err != nil {
				t.Fatal(err)
			}
			if err := proof.VerifyConsistency(rfc6962.DefaultHasher, m, n, p, rm[:], rn[:]); err != nil {
				t.Fatalf("%d→%d: reference verifier rejects the proof: %v", m, n, err)
			}
			gm, gn, err := evidence.RootsFromConsistency(m, n, evidence.EvidenceProof(m, rm[:], p))
			if err != nil {
				t.Fatalf("%d→%d: %v", m, n, err)
			}
			if gm != rm || gn != rn {
				t.Fatalf("%d→%d: roots do not match", m, n)
			}
			if _, _, err := evidence.RootsFromConsistency(m, n, append(evidence.EvidenceProof(m, rm[:], p), rm[:])); err == nil {
				t.Fatalf("%d→%d: accepted a proof with an extra hash", m, n)
			}
		}
	}
}

// TestGoldenFiles keeps testdata/*.evidence valid: each file must verify
// against testdata/roster.policy with the statement in the matching .txt.
func TestGoldenFiles(t *testing.T) {
	fx := newFixture(t)
	dir := t.TempDir()
	e := &vpb.Evidence{Kind: vpb.Kind_KIND_LOG_EQUIVOCATION_DIFFERENT_SIZES,
		CheckpointA: checkpoint(t, fx.fork, 7), CheckpointB: checkpoint(t, fx.log, 12), ConsistencyProof: consistency(t, fx.log, 7, 12), Observer: "node-1", DetectedUnixMs: 1700000000000}
	b, err := evidence.MarshalFile(e)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "x.evidence")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(p)
	if !strings.HasPrefix(string(data), "vigil-evidence/v1\nkind log-equivocation-different-sizes\nobserver node-1\ndetected 1700000000000\nproof ") {
		t.Fatalf("unexpected file layout:\n%s", data)
	}
	got, err := evidence.ParseFile(data)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := evidence.Verify(got, fx.roster); err != nil {
		t.Fatal(err)
	}
}

func TestParseFileRejects(t *testing.T) {
	fx := newFixture(t)
	good, err := evidence.MarshalFile(&vpb.Evidence{Kind: vpb.Kind_KIND_LOG_EQUIVOCATION_SAME_SIZE,
		CheckpointA: checkpoint(t, fx.log, 12), CheckpointB: checkpoint(t, fx.fork, 12), Observer: "n"})
	if err != nil {
		t.Fatal(err)
	}
	s := string(good)
	tests := map[string]string{
		"empty":          "",
		"bad header":     strings.Replace(s, "vigil-evidence/v1", "vigil-evidence/v2", 1),
		"unknown kind":   strings.Replace(s, "log-equivocation-same-size", "nope", 1),
		"trailing bytes": s + "x",
		"truncated":      s[:len(s)-3],
		"field order":    strings.Replace(s, "observer n\n", "", 1) + "observer n\n",
		"bad length":     strings.Replace(s, "checkpoint ", "checkpoint 0", 1),
		"oversized":      s + strings.Repeat("x", evidence.MaxFileSize),
	}
	for name, in := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := evidence.ParseFile([]byte(in)); !errors.Is(err, vpb.ErrMalformed) {
				t.Fatalf("got %v, want ErrMalformed", err)
			}
		})
	}
}
