package witness_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"

	"github.com/vigilnet/vigil/roster"
	"github.com/vigilnet/vigil/store"
	"github.com/vigilnet/vigil/testnet/scriptlog"
	"github.com/vigilnet/vigil/tlog"
	"github.com/vigilnet/vigil/witness"
)

const witnessName = "witness.test/w1"

// testLog is a scripted log together with its signer, so tests can sign
// arbitrary (also malformed) checkpoint bodies with the log's real key.
type testLog struct {
	*scriptlog.Log
	signer note.Signer
}

// newTestLog returns an empty log with a fresh key, or with a deterministic
// key when seed is non-nil (for reproducible fuzz corpora).
func newTestLog(t testing.TB, origin string, seed []byte) *testLog {
	t.Helper()
	var r io.Reader = rand.Reader
	if seed != nil {
		r = bytes.NewReader(seed)
	}
	skey, vkey, err := note.GenerateKey(r, origin)
	if err != nil {
		t.Fatal(err)
	}
	l, err := scriptlog.NewWithKey(skey, vkey)
	if err != nil {
		t.Fatal(err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	return &testLog{Log: l, signer: s}
}

// fork returns a fork of l at n signed with the same key.
func (l *testLog) fork(t testing.TB, n uint64) *testLog {
	t.Helper()
	f, err := l.Fork(n)
	if err != nil {
		t.Fatal(err)
	}
	return &testLog{Log: f, signer: l.signer}
}

// grow appends entries until the log has size n.
func (l *testLog) grow(n uint64, tag string) {
	if s := l.Size(); s < n {
		l.AppendN(int(n-s), tag)
	}
}

func (l *testLog) checkpoint(t testing.TB, n uint64) []byte {
	t.Helper()
	cp, err := l.CheckpointAt(n)
	if err != nil {
		t.Fatal(err)
	}
	return cp
}

func (l *testLog) proof(t testing.TB, m, n uint64) [][]byte {
	t.Helper()
	p, err := l.ConsistencyProof(m, n)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func (l *testLog) root(t testing.TB, n uint64) [32]byte {
	t.Helper()
	r, err := l.Root(n)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// signText signs an arbitrary note text with the log's key.
func (l *testLog) signText(t testing.TB, text string) []byte {
	t.Helper()
	msg, err := note.Sign(&note.Note{Text: text}, l.signer)
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

// requestBody encodes an add-checkpoint body by hand (independently of
// witness.AddCheckpointRequest.Marshal).
func requestBody(old uint64, proof [][]byte, cp []byte) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "old %d\n", old)
	for _, h := range proof {
		b.WriteString(base64.StdEncoding.EncodeToString(h))
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	b.Write(cp)
	return b.Bytes()
}

// policyFor returns a tlog-policy roster listing the logs.
func policyFor(t testing.TB, logs ...*testLog) *roster.Roster {
	t.Helper()
	var b strings.Builder
	for _, l := range logs {
		fmt.Fprintf(&b, "log %s\n", l.VerifierKey())
	}
	r, err := roster.ParsePolicy([]byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// clock is a settable time source for the cosigner.
type clock struct{ sec atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.sec.Store(1_700_000_000)
	return c
}

func (c *clock) now() time.Time  { return time.Unix(c.sec.Load(), 0) }
func (c *clock) advance(d int64) { c.sec.Add(d) }
func (c *clock) unix() uint64    { return uint64(c.sec.Load()) }

// fixtureOptions tune newFixture.
type fixtureOptions struct {
	// dir is the store directory; empty means a fresh t.TempDir().
	dir string
	// skey is the witness key; empty means a fresh one.
	skey   string
	limits witness.RateLimits
	// wrap wraps the store given to the witness (test hooks).
	wrap   func(witness.StateStore) witness.StateStore
	logger *slog.Logger
	// afterRefuse is the witness's AfterRefuse hook.
	afterRefuse func([]byte, error)
}

// fixture is a witness on a real Badger store behind a real HTTP server on
// 127.0.0.1.
type fixture struct {
	t      testing.TB
	dir    string
	db     *store.DB
	w      *witness.Witness
	srv    *httptest.Server
	skey   string
	vkey   string
	clock  *clock
	roster *roster.Roster
}

func newFixture(t testing.TB, opts fixtureOptions, logs ...*testLog) *fixture {
	t.Helper()
	f := &fixture{t: t, dir: opts.dir, skey: opts.skey, clock: newClock(), roster: policyFor(t, logs...)}
	if f.dir == "" {
		f.dir = t.TempDir()
	}
	if f.skey == "" {
		var err error
		if f.skey, _, err = tlog.GenerateCosignerKey(rand.Reader, witnessName); err != nil {
			t.Fatal(err)
		}
	}
	signer, err := tlog.NewCosignatureSigner(f.skey, f.clock.now)
	if err != nil {
		t.Fatal(err)
	}
	f.vkey = signer.VerifierKey()
	if f.db, err = store.Open(f.dir, store.Options{}); err != nil {
		t.Fatal(err)
	}
	var st witness.StateStore = f.db
	if opts.wrap != nil {
		st = opts.wrap(st)
	}
	logger := opts.logger
	if logger == nil {
		logger = testLogger(t)
	}
	f.w, err = witness.New(witness.Config{Signer: signer, Logs: f.roster, Store: st, Limits: opts.limits, Logger: logger, AfterRefuse: opts.afterRefuse})
	if err != nil {
		t.Fatal(err)
	}
	f.srv = httptest.NewServer(f.w.Handler())
	t.Cleanup(f.close)
	return f
}

// close stops the server and closes the store; it may be called twice.
func (f *fixture) close() {
	if f.srv != nil {
		f.srv.Close()
		f.srv = nil
	}
	if f.db != nil {
		if err := f.db.Close(); err != nil {
			f.t.Errorf("closing store: %v", err)
		}
		f.db = nil
	}
}

type response struct {
	code   int
	header http.Header
	body   string
}

// do sends a request to the witness's add-checkpoint endpoint.
func (f *fixture) do(method string, body []byte) response {
	f.t.Helper()
	return doRequest(f.t, f.srv.Client(), method, f.srv.URL+"/add-checkpoint", body)
}

func (f *fixture) post(body []byte) response {
	f.t.Helper()
	return f.do(http.MethodPost, body)
}

func doRequest(t testing.TB, c *http.Client, method, url string, body []byte) response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{code: resp.StatusCode, header: resp.Header, body: string(b)}
}

// push sends l's checkpoint at size n with a proof from old, and requires want.
func (f *fixture) push(l *testLog, old, n uint64, want int) response {
	f.t.Helper()
	r := f.post(requestBody(old, l.proof(f.t, old, n), l.checkpoint(f.t, n)))
	if r.code != want {
		f.t.Fatalf("push %s old %d size %d: status %d (%q), want %d", l.Origin(), old, n, r.code, r.body, want)
	}
	return r
}

// states snapshots every stored witness state.
func (f *fixture) states() map[string]store.WitnessState {
	f.t.Helper()
	return snapshot(f.t, f.db)
}

func snapshot(t testing.TB, db *store.DB) map[string]store.WitnessState {
	t.Helper()
	out := map[string]store.WitnessState{}
	err := db.WitnessStates(context.Background(), func(origin string, st store.WitnessState) error {
		out[origin] = st
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (f *fixture) state(origin string) store.WitnessState {
	f.t.Helper()
	st, err := f.db.WitnessState(context.Background(), origin)
	if err != nil {
		f.t.Fatalf("state of %s: %v", origin, err)
	}
	return st
}

func requireSameStates(t testing.TB, before, after map[string]store.WitnessState) {
	t.Helper()
	if !reflect.DeepEqual(before, after) {
		t.Fatalf("store changed:\nbefore %v\nafter  %v", summarize(before), summarize(after))
	}
}

func summarize(m map[string]store.WitnessState) string {
	var b strings.Builder
	for o, st := range m {
		fmt.Fprintf(&b, "%s@%d/%x ", o, st.Size, st.Root[:4])
	}
	return b.String()
}

// checkCosignature checks a 200 body for checkpoint cp byte for byte against
// the c2sp.org/tlog-cosignature layout, and with third-party verifiers, and
// returns the cosignature timestamp.
func checkCosignature(t testing.TB, vkey string, logVKey string, cp []byte, body string) uint64 {
	t.Helper()
	n, err := note.Open(cp, note.VerifierList(mustNoteVerifier(t, logVKey)))
	if err != nil {
		t.Fatalf("opening the submitted checkpoint: %v", err)
	}
	text := n.Text

	// Key material straight from the vkey string: name+hex(id)+base64(0x04||pk).
	parts := strings.SplitN(vkey, "+", 3)
	if len(parts) != 3 {
		t.Fatalf("bad vkey %q", vkey)
	}
	name := parts[0]
	keyBytes, err := base64.StdEncoding.DecodeString(parts[2])
	if err != nil || len(keyBytes) != 33 || keyBytes[0] != 0x04 {
		t.Fatalf("vkey %q is not an Ed25519 cosignature/v1 key", vkey)
	}
	pub := ed25519.PublicKey(keyBytes[1:])
	h := sha256.Sum256(append([]byte(name+"\n"), keyBytes...))
	wantID := binary.BigEndian.Uint32(h[:4])

	if !strings.HasSuffix(body, "\n") || strings.Count(body, "\n") != 1 {
		t.Fatalf("200 body is not exactly one line: %q", body)
	}
	line, ok := strings.CutPrefix(strings.TrimSuffix(body, "\n"), "— "+name+" ")
	if !ok {
		t.Fatalf("200 body %q is not a signature line by %s", body, name)
	}
	raw, err := base64.StdEncoding.DecodeString(line)
	if err != nil {
		t.Fatalf("signature is not base64: %v", err)
	}
	// SPEC: keyID(4) || uint64 BE timestamp || 64-byte Ed25519 signature.
	if len(raw) != 4+8+64 {
		t.Fatalf("cosignature is %d bytes, want 76", len(raw))
	}
	if id := binary.BigEndian.Uint32(raw[:4]); id != wantID {
		t.Fatalf("key ID %08x, want %08x", id, wantID)
	}
	ts := binary.BigEndian.Uint64(raw[4:12])
	if ts == 0 || ts > 1<<63-1 {
		t.Fatalf("timestamp %d out of range", ts)
	}
	msg := fmt.Sprintf("cosignature/v1\ntime %d\n%s", ts, text)
	if !ed25519.Verify(pub, []byte(msg), raw[12:]) {
		t.Fatal("Ed25519 signature does not verify over the cosignature/v1 message")
	}

	// Third party: transparency-dev/formats' verifier via x/mod note.Open, on
	// the checkpoint with the cosignature appended, as a client would.
	theirs, err := fnote.NewVerifierForCosignatureV1(vkey)
	if err != nil {
		t.Fatal(err)
	}
	cosigned := append(append([]byte(nil), cp...), body...)
	n2, err := note.Open(cosigned, note.VerifierList(mustNoteVerifier(t, logVKey), theirs))
	if err != nil {
		t.Fatalf("third-party verification: %v", err)
	}
	if len(n2.Sigs) != 2 || n2.Text != text {
		t.Fatalf("third-party verification found %d signatures", len(n2.Sigs))
	}
	return ts
}

func mustNoteVerifier(t testing.TB, vkey string) note.Verifier {
	t.Helper()
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// requireOneLine checks a rejection body: a non-empty one-line reason.
func requireOneLine(t testing.TB, body string) {
	t.Helper()
	if len(body) < 2 || !strings.HasSuffix(body, "\n") || strings.Count(body, "\n") != 1 {
		t.Fatalf("body is not a one-line reason: %q", body)
	}
}

// testLogger routes slog to t.Logf.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Logf("%s", bytes.TrimRight(p, "\n"))
	return len(p), nil
}
