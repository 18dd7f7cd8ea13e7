package witness_test

import (
	"bytes"
	"encoding/base64"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"github.com/vigilnet/vigil/tlog"
	"github.com/vigilnet/vigil/witness"
)

var updateCorpus = flag.Bool("update-corpus", false, "rewrite the fuzz seed corpora in testdata/fuzz")

// Fuzz targets whose seed corpora corpusBodies generates.
var corpusTargets = []string{"FuzzParseAddCheckpointRequest", "FuzzAddCheckpointHandler"}

// seedBytes returns 32 bytes from, from+1, ...: deterministic keys make the
// checked-in corpus carry valid signatures.
func seedBytes(from byte) []byte {
	s := make([]byte, 32)
	for i := range s {
		s[i] = from + byte(i)
	}
	return s
}

// fuzzLog is the log the handler fuzzer trusts, with a fixed key.
func fuzzLog(t testing.TB) *testLog {
	t.Helper()
	l := newTestLog(t, "example.com/fuzz", seedBytes(0x00))
	l.grow(40, "fuzz")
	return l
}

// corpusBodies are the seed inputs shared by both fuzzers: valid requests
// that build on each other in name order, and invalid ones of every kind.
func corpusBodies(t testing.TB) map[string][]byte {
	t.Helper()
	l := fuzzLog(t)
	fork := l.fork(t, 4)
	fork.grow(40, "fork")
	impostor := newTestLog(t, "example.com/fuzz", seedBytes(0x40))
	impostor.grow(8, "fuzz")
	b64 := base64.StdEncoding.EncodeToString
	h32 := bytes.Repeat([]byte{1}, 32)
	cp8 := l.checkpoint(t, 8)
	p8to20 := l.proof(t, 8, 20)
	badProof := l.proof(t, 8, 20)
	badProof[0] = flip(badProof[0], 3)
	long := make([][]byte, witness.MaxProofLines+1)
	for i := range long {
		long[i] = h32
	}
	r8 := l.root(t, 8)
	return map[string][]byte{
		"valid-1-old0-size8":        requestBody(0, nil, cp8),
		"valid-2-same-size":         requestBody(8, nil, cp8),
		"valid-3-old8-size20":       requestBody(8, p8to20, l.checkpoint(t, 20)),
		"valid-4-old20-size40":      requestBody(20, l.proof(t, 20, 40), l.checkpoint(t, 40)),
		"63-proof-lines":            requestBody(8, long[:63], cp8),
		"empty":                     nil,
		"garbage":                   []byte("hello, witness"),
		"no-blank-line":             []byte("old 0\n"),
		"nothing-after-blank":       []byte("old 0\n\n"),
		"old-leading-zero":          append([]byte("old 08\n\n"), cp8...),
		"old-overflow":              append([]byte("old 18446744073709551616\n\n"), cp8...),
		"64-proof-lines":            requestBody(8, long, cp8),
		"short-proof-hash":          requestBody(8, [][]byte{h32[:31]}, cp8),
		"proof-line-cr":             append([]byte("old 8\n"+b64(h32)+"\r\n\n"), cp8...),
		"bad-checkpoint-size":       requestBody(0, nil, l.signText(t, "example.com/fuzz\n08\n"+b64(r8[:])+"\n")),
		"checkpoint-unsigned":       requestBody(0, nil, []byte("example.com/fuzz\n8\n"+b64(r8[:])+"\n")),
		"checkpoint-wrong-key":      requestBody(0, nil, impostor.checkpoint(t, 8)),
		"checkpoint-unknown-origin": requestBody(0, nil, newTestLog(t, "example.com/other", seedBytes(0x60)).checkpoint(t, 0)),
		"old-larger-than-size":      requestBody(9, nil, cp8),
		"stale-old":                 requestBody(4, l.proof(t, 4, 20), l.checkpoint(t, 20)),
		"bad-proof":                 requestBody(8, badProof, l.checkpoint(t, 20)),
		"fork-same-size":            requestBody(8, nil, fork.checkpoint(t, 8)),
		"fork-proof":                requestBody(8, fork.proof(t, 8, 20), fork.checkpoint(t, 20)),
		"old0-with-proof":           requestBody(0, [][]byte{h32}, cp8),
		"size0-nonempty-root":       requestBody(0, nil, l.signText(t, "example.com/fuzz\n0\n"+b64(h32)+"\n")),
	}
}

func corpusFile(body []byte) []byte {
	return fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n", body)
}

// TestFuzzCorpus keeps testdata/fuzz in sync with corpusBodies; run with
// -update-corpus to rewrite it.
func TestFuzzCorpus(t *testing.T) {
	bodies := corpusBodies(t)
	for _, target := range corpusTargets {
		dir := filepath.Join("testdata", "fuzz", target)
		if *updateCorpus {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		for name, body := range bodies {
			path := filepath.Join(dir, name)
			want := corpusFile(body)
			if *updateCorpus {
				if err := os.WriteFile(path, want, 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -run TestFuzzCorpus -update-corpus)", err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("%s is stale (run go test -run TestFuzzCorpus -update-corpus)", path)
			}
		}
	}
}

// TestCorpusValidSeeds checks that the valid seeds are cosigned in order, so
// the handler fuzzer starts from inputs that reach the state update.
func TestCorpusValidSeeds(t *testing.T) {
	bodies := corpusBodies(t)
	var names []string
	for name := range bodies {
		if strings.HasPrefix(name, "valid-") {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	f := newFixture(t, fixtureOptions{}, fuzzLog(t))
	for _, name := range names {
		if r := f.post(bodies[name]); r.code != http.StatusOK {
			t.Fatalf("%s: status %d %q", name, r.code, r.body)
		}
	}
	if len(names) != 4 {
		t.Fatalf("%d valid seeds", len(names))
	}
}

func FuzzParseAddCheckpointRequest(f *testing.F) {
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := witness.ParseAddCheckpointRequest(body)
		if err != nil {
			return
		}
		checkAccepted(t, body, req.Proof, req.Checkpoint, req.Marshal())
	})
}

// checkAccepted checks what holds for every request body a parser accepts:
// at most MaxProofLines proof hashes of 32 bytes, a checkpoint, and a
// canonical encoding (the request re-marshals to body byte for byte).
func checkAccepted(t *testing.T, body []byte, proof [][]byte, checkpoint, marshaled []byte) {
	t.Helper()
	if len(proof) > witness.MaxProofLines {
		t.Fatalf("accepted %d proof lines", len(proof))
	}
	for _, h := range proof {
		if len(h) != 32 {
			t.Fatalf("accepted a %d-byte proof hash", len(h))
		}
	}
	if len(checkpoint) == 0 {
		t.Fatal("accepted an empty checkpoint")
	}
	if !bytes.Equal(marshaled, body) {
		t.Fatalf("accepted request re-marshals differently:\n%q\n%q", body, marshaled)
	}
}

// FuzzAddCheckpointHandler drives the whole HTTP handler, on a real store,
// with arbitrary bodies: no panic, never 5xx, no state change unless 200,
// and every 200 is a valid cosignature of a checkpoint at least as large as
// anything stored before.
func FuzzAddCheckpointHandler(f *testing.F) {
	l := fuzzLog(f)
	skey, _, err := tlog.GenerateCosignerKey(bytes.NewReader(seedBytes(0x20)), witnessName)
	if err != nil {
		f.Fatal(err)
	}
	fx := newFixture(f, fixtureOptions{skey: skey, logger: slog.New(slog.DiscardHandler)}, l)
	h := fx.w.Handler()
	witV, err := tlog.NewCosignatureVerifier(fx.vkey)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		before := snapshot(t, fx.db)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/add-checkpoint", bytes.NewReader(body)))
		after := snapshot(t, fx.db)
		if rec.Code >= 500 {
			t.Fatalf("status %d for %q", rec.Code, body)
		}
		if rec.Code != http.StatusOK {
			if !reflect.DeepEqual(before, after) {
				t.Fatalf("status %d changed the store", rec.Code)
			}
			if b := rec.Body.String(); !strings.HasSuffix(b, "\n") || strings.Count(b, "\n") != 1 {
				t.Fatalf("status %d body is not one line: %q", rec.Code, b)
			}
			return
		}
		req, err := witness.ParseAddCheckpointRequest(body)
		if err != nil {
			t.Fatalf("200 for an unparseable request: %v", err)
		}
		cp, _, err := tlog.VerifyCheckpoint(append(bytes.Clone(req.Checkpoint), rec.Body.Bytes()...), l.Origin(), []note.Verifier{mustNoteVerifier(t, l.VerifierKey())}, witV)
		if err != nil {
			t.Fatalf("200 body does not verify: %v", err)
		}
		st := after[l.Origin()]
		if st.Size != cp.Size || st.Root != cp.Root {
			t.Fatalf("stored %d, cosigned %d", st.Size, cp.Size)
		}
		if prev, ok := before[l.Origin()]; ok && prev.Size > st.Size {
			t.Fatalf("stored size went back from %d to %d", prev.Size, st.Size)
		}
	})
}
