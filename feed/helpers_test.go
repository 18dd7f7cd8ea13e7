package feed_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/mod/sumdb/note"

	"github.com/vigilnet/vigil/feed"
	"github.com/vigilnet/vigil/roster"
	"github.com/vigilnet/vigil/store"
	"github.com/vigilnet/vigil/testnet/scriptlog"
	"github.com/vigilnet/vigil/tlog"
	"github.com/vigilnet/vigil/witness"
)

// deadline bounds every wait in these tests.
const deadline = 20 * time.Second

// testSource is a feed.Source over notes recorded from real witness cores
// (each with its own Badger store), plus evidence and peers set by tests.
type testSource struct {
	mu       sync.Mutex
	r        *roster.Roster
	notes    map[string]map[uint64][][]byte
	evidence []feed.Evidence // newest first
	files    map[string][]byte
	peers    []feed.Peer
	onChange func(origin string)
	calls    int
	// db holds the suspicions, written by tests with the store's API.
	db *store.DB
	// suspicionErr, if set, fails Suspicions.
	suspicionErr error
}

func newTestSource(r *roster.Roster) *testSource {
	return &testSource{r: r, notes: map[string]map[uint64][][]byte{}, files: map[string][]byte{}}
}

func (s *testSource) Roster() *roster.Roster {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.r
}

func (s *testSource) setRoster(r *roster.Roster) {
	s.mu.Lock()
	s.r = r
	s.mu.Unlock()
}

// addNote records a signed note as the store would hold it.
func (s *testSource) addNote(t testing.TB, msg []byte) {
	t.Helper()
	origin, _ := tlog.OriginOf(msg)
	i := strings.LastIndex(string(msg), "\n\n")
	cp, err := tlog.ParseCheckpoint(msg[:i+1])
	if err != nil {
		t.Fatalf("addNote: %v", err)
	}
	s.mu.Lock()
	if s.notes[origin] == nil {
		s.notes[origin] = map[uint64][][]byte{}
	}
	s.notes[origin][cp.Size] = append(s.notes[origin][cp.Size], msg)
	cb := s.onChange
	s.mu.Unlock()
	if cb != nil {
		cb(origin)
	}
}

func (s *testSource) Checkpoints(ctx context.Context, origin string, q feed.CheckpointQuery) ([][]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	var sizes []uint64
	for size := range s.notes[origin] {
		if size >= q.MinSize && size <= q.MaxSize {
			sizes = append(sizes, size)
		}
	}
	slices.Sort(sizes)
	if q.Newest {
		slices.Reverse(sizes)
	}
	var out [][]byte
	for i, size := range sizes {
		if i == q.Limit {
			break
		}
		out = append(out, s.notes[origin][size]...)
	}
	return out, nil
}

func (s *testSource) sourceCalls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

func (s *testSource) addEvidence(ev feed.Evidence, file []byte) {
	s.mu.Lock()
	s.evidence = append([]feed.Evidence{ev}, s.evidence...)
	s.files[ev.ID] = file
	s.mu.Unlock()
}

func (s *testSource) Evidence(ctx context.Context) ([]feed.Evidence, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.evidence), nil
}

func (s *testSource) EvidenceFile(ctx context.Context, id string) (feed.Evidence, []byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.evidence {
		if e.ID == id {
			return e, s.files[id], nil
		}
	}
	return feed.Evidence{}, nil, fmt.Errorf("evidence %s: %w", id, feed.ErrNotFound)
}

func (s *testSource) setPeers(p []feed.Peer) {
	s.mu.Lock()
	s.peers = p
	s.mu.Unlock()
}

// Suspicions reads the suspicions from the real store the tests write them
// to, converted as the node's feed source converts them.
func (s *testSource) Suspicions(ctx context.Context) ([]feed.Suspicion, error) {
	s.mu.Lock()
	db, fail := s.db, s.suspicionErr
	s.mu.Unlock()
	if fail != nil {
		return nil, fail
	}
	if db == nil {
		return nil, nil
	}
	var out []feed.Suspicion
	err := db.Suspicions(ctx, func(su store.Suspicion) error {
		fs := feed.Suspicion{
			Origin: su.Origin, Size: su.Size, Root: base64.StdEncoding.EncodeToString(su.Root[:]),
			Cosigners: su.Cosigners, Reason: su.Reason, FirstSeen: su.First, LastSeen: su.Last, Count: su.Count, Resolved: su.Resolved,
		}
		if o := su.Other; o != nil {
			fs.Other = &feed.SuspicionSide{Size: o.Size, Root: base64.StdEncoding.EncodeToString(o.Root[:]), Cosigners: o.Cosigners}
		}
		if !su.Open() {
			t := su.ResolvedAt
			fs.ResolvedAt = &t
		}
		out = append(out, fs)
		return nil
	})
	return out, err
}

func (s *testSource) Peers(ctx context.Context) ([]feed.Peer, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.peers), nil
}

// testWitness is a real witness core with its own Badger store.
type testWitness struct {
	name string
	vkey string
	w    *witness.Witness
	db   *store.DB
	// last is the size this witness last cosigned, per origin.
	last map[string]uint64
}

type envOptions struct {
	logs, witnesses int
	// quorum is a tlog-policy group threshold over all witnesses ("" = none).
	quorum      string
	tokens      []string
	cors        []string
	eventBuffer int
	// rebuildInterval is the feed's RebuildInterval.
	rebuildInterval time.Duration
	noRun           bool
	// wrap is the feed's WrapVerifiers.
	wrap func(*roster.Roster, ...note.Verifier) []note.Verifier
	// The feed's stream caps and lifetime (0: its defaults).
	maxSubscribers, maxSubscribersPerAddr int
	streamLifetime                        time.Duration
	// now is the clock of the feed and of the witnesses' cosignatures
	// (nil: time.Now); freshness is the feed's Freshness.
	now       func() time.Time
	freshness feed.FreshnessConfig
	// witnessInterval is every log's expected interval for the witness
	// timeline (0: the default), ticked at a tenth of it.
	witnessInterval time.Duration
}

type env struct {
	t     testing.TB
	src   *testSource
	logs  []*scriptlog.Log
	wits  []*testWitness
	r     *roster.Roster
	feed  *feed.Feed
	url   string
	reg   *prometheus.Registry
	token string
}

func newEnv(t testing.TB, o envOptions) *env {
	t.Helper()
	e := &env{t: t}
	var policy strings.Builder
	for i := range o.logs {
		l, err := scriptlog.New(fmt.Sprintf("example.com/log%d", i))
		if err != nil {
			t.Fatal(err)
		}
		e.logs = append(e.logs, l)
		fmt.Fprintf(&policy, "log %s\n", l.VerifierKey())
	}
	skeys := make([]string, o.witnesses)
	var names []string
	for i := range o.witnesses {
		name := fmt.Sprintf("w%d", i)
		skey, vkey, err := tlog.GenerateCosignerKey(rand.Reader, fmt.Sprintf("witness%d.example", i))
		if err != nil {
			t.Fatal(err)
		}
		skeys[i] = skey
		e.wits = append(e.wits, &testWitness{name: name, vkey: vkey, last: map[string]uint64{}})
		fmt.Fprintf(&policy, "witness %s %s\n", name, vkey)
		names = append(names, name)
	}
	if o.quorum != "" {
		fmt.Fprintf(&policy, "group q %s %s\nquorum q\n", o.quorum, strings.Join(names, " "))
	}
	r, err := roster.ParsePolicy([]byte(policy.String()))
	if err != nil {
		t.Fatalf("roster: %v\n%s", err, policy.String())
	}
	e.r = r
	e.src = newTestSource(r)
	sdb, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sdb.Close() })
	e.src.db = sdb
	for i, tw := range e.wits {
		signer, err := tlog.NewCosignatureSigner(skeys[i], o.now)
		if err != nil {
			t.Fatal(err)
		}
		db, err := store.Open(t.TempDir(), store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		tw.db = db
		tw.w, err = witness.New(witness.Config{
			Signer: signer, Logs: r, Store: db,
			AfterCosign: func(c witness.Cosigned) {
				e.src.addNote(t, c.Note)
				if e.feed != nil {
					e.feed.CosignaturesSeen(c.Log.Origin, nil, c.Note)
				}
			},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	fc := feed.Config{
		Source: e.src, Tokens: o.tokens, CORSOrigins: o.cors, EventBuffer: o.eventBuffer,
		Heartbeat: time.Second, Logger: testLogger(t), WrapVerifiers: o.wrap, RebuildInterval: o.rebuildInterval,
		MaxSubscribers: o.maxSubscribers, MaxSubscribersPerAddr: o.maxSubscribersPerAddr, StreamLifetime: o.streamLifetime,
		Now: o.now, Freshness: o.freshness,
	}
	if iv := o.witnessInterval; iv > 0 {
		fc.ExpectedInterval = func(string) time.Duration { return iv }
		fc.WitnessTick = iv / 10
	}
	f, err := feed.New(fc)
	if err != nil {
		t.Fatal(err)
	}
	e.feed = f
	e.src.onChange = f.CheckpointUpdated
	e.reg = prometheus.NewRegistry()
	e.reg.MustRegister(f.Metrics()...)
	if len(o.tokens) > 0 {
		e.token = o.tokens[0]
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(f.Handler())
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	e.url = srv.URL
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	if !o.noRun {
		go func() { defer close(done); f.Run(ctx) }()
	} else {
		close(done)
	}
	t.Cleanup(func() {
		cancel()
		<-done
		srv.Close()
	})
	return e
}

// cosign makes each listed witness cosign log li's current checkpoint.
func (e *env) cosign(li int, wits ...int) {
	e.t.Helper()
	l := e.logs[li]
	size := l.Size()
	cp, err := l.Checkpoint()
	if err != nil {
		e.t.Fatal(err)
	}
	for _, wi := range wits {
		tw := e.wits[wi]
		old := tw.last[l.Origin()]
		p, err := l.ConsistencyProof(old, size)
		if err != nil {
			e.t.Fatal(err)
		}
		if _, err := tw.w.AddCheckpoint(context.Background(), &witness.AddCheckpointRequest{OldSize: old, Proof: p, Checkpoint: cp}); err != nil {
			e.t.Fatalf("%s cosigning %s at %d: %v", tw.name, l.Origin(), size, err)
		}
		tw.last[l.Origin()] = size
	}
}

// get performs a GET with the env's token (if any) and returns status,
// headers and body.
func (e *env) get(path string, hdr ...string) (int, http.Header, string) {
	e.t.Helper()
	return httpGet(e.t, e.url+path, e.token, hdr...)
}

// httpGet performs a GET of url with token as a bearer token (if any) and
// hdr as header name, value pairs, and returns status, headers and body.
func httpGet(t testing.TB, url, token string, hdr ...string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

// sse is a parsed server-sent event.
type sse struct {
	id, typ, data string
}

// stream is an open GET /v1/events.
type stream struct {
	events chan sse
	cancel func()
}

// subscribe opens an event stream and returns once the server has
// registered it (the retry line arrived).
func (e *env) subscribe(lastID string) *stream {
	e.t.Helper()
	return e.subscribeQuery("", lastID)
}

// subscribeQuery is subscribe with a query string (without the "?").
func (e *env) subscribeQuery(query, lastID string) *stream {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	u := e.url + "/v1/events"
	if query != "" {
		u += "?" + query
	}
	req, _ := http.NewRequestWithContext(ctx, "GET", u, nil)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	if e.token != "" {
		req.Header.Set("Authorization", "Bearer "+e.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		e.t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		cancel()
		e.t.Fatalf("events: status %d, type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	s := &stream{events: make(chan sse, 1024), cancel: cancel}
	br := bufio.NewReader(resp.Body)
	first, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(first, "retry: ") {
		cancel()
		e.t.Fatalf("events: first line %q, %v", first, err)
	}
	go func() {
		defer resp.Body.Close()
		defer close(s.events)
		feed.ReadEvents(br, func(ev feed.StreamEvent) bool {
			s.events <- sse{id: ev.ID, typ: ev.Type, data: ev.Data}
			return true
		})
	}()
	e.t.Cleanup(cancel)
	return s
}

// next returns the next event, failing the test at the deadline.
func (s *stream) next(t testing.TB) sse {
	t.Helper()
	select {
	case ev, ok := <-s.events:
		if !ok {
			t.Fatal("event stream closed")
		}
		return ev
	case <-time.After(deadline):
		t.Fatal("no event before the deadline")
	}
	return sse{}
}

// waitFor reads events until one satisfies ok.
func (s *stream) waitFor(t testing.TB, ok func(sse) bool) sse {
	t.Helper()
	for range 10000 {
		if ev := s.next(t); ok(ev) {
			return ev
		}
	}
	t.Fatal("too many events")
	return sse{}
}

// verifiers returns x/mod note verifiers for a log and witnesses, built with
// a third-party cosignature implementation (transparency-dev/formats).
func logVerifier(t testing.TB, l *scriptlog.Log) note.Verifier {
	t.Helper()
	v, err := note.NewVerifier(l.VerifierKey())
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Logf("%s", strings.TrimSpace(string(p)))
	return len(p), nil
}
