package feed_test

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/vigilnet/vigil/feed"
	"github.com/vigilnet/vigil/roster"
	"github.com/vigilnet/vigil/store"
	"github.com/vigilnet/vigil/testnet/scriptlog"
	"github.com/vigilnet/vigil/tlog"
	"github.com/vigilnet/vigil/witness"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// timedSource is a testSource that also answers queries by time: each
// note is first seen at the clock's time when a witness cosigned it.
type timedSource struct {
	*testSource
	mu    sync.Mutex
	now   time.Time
	timed map[string][]feed.TimedNote
}

// record keeps one note per checkpoint, as the store does: a cosignature
// of a checkpoint already held is merged into its note.
func (s *timedSource) record(origin string, msg []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	text, sigs, _ := strings.Cut(string(msg), "\n\n")
	for i, n := range s.timed[origin] {
		t, old, _ := strings.Cut(string(n.Note), "\n\n")
		if t != text {
			continue
		}
		for line := range strings.Lines(sigs) {
			if !strings.Contains(old, line) {
				old += line
			}
		}
		s.timed[origin][i].Note = []byte(t + "\n\n" + old)
		return
	}
	s.timed[origin] = append(s.timed[origin], feed.TimedNote{Note: msg, FirstSeen: s.now})
}

func (s *timedSource) CheckpointsByTime(ctx context.Context, origin string, q feed.TimeQuery) (feed.TimePage, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	start := 0
	if q.Cursor != "" {
		n, err := strconv.Atoi(q.Cursor)
		if err != nil {
			return feed.TimePage{}, fmt.Errorf("%w: %q", feed.ErrBadCursor, q.Cursor)
		}
		start = n
	}
	var page feed.TimePage
	all := s.timed[origin]
	for i := start; i < len(all); i++ {
		n := all[i]
		if n.FirstSeen.Before(q.Since) || (!q.Until.IsZero() && !n.FirstSeen.Before(q.Until)) {
			continue
		}
		if len(page.Notes) == q.Limit {
			page.Next = strconv.Itoa(i)
			break
		}
		page.Notes = append(page.Notes, n)
	}
	return page, nil
}

// exportEnv is one log and three real witness cores whose keys come from a
// fixed seed and whose clock the test sets, so that notes and signatures
// (Ed25519 is deterministic) are the same on every run.
type exportEnv struct {
	t       testing.TB
	handler http.Handler
	src     *timedSource
	log     *scriptlog.Log
	wits    []*witness.Witness
	names   []string
	last    []uint64
	url     string
}

var t0 = time.Date(2026, 6, 30, 12, 0, 0, 0, time.UTC)

func newExportEnv(t testing.TB) *exportEnv {
	t.Helper()
	seed := rand.NewChaCha8([32]byte{'v', 'i', 'g', 'i', 'l'})
	skey, vkey, err := note.GenerateKey(seed, "example.com/quarterly")
	if err != nil {
		t.Fatal(err)
	}
	l, err := scriptlog.NewWithKey(skey, vkey)
	if err != nil {
		t.Fatal(err)
	}
	e := &exportEnv{t: t, log: l}
	policy := fmt.Sprintf("log %s\n", vkey)
	var skeys []string
	for i := range 3 {
		name := fmt.Sprintf("w%d", i)
		sk, vk, err := tlog.GenerateCosignerKey(seed, fmt.Sprintf("witness%d.example", i))
		if err != nil {
			t.Fatal(err)
		}
		skeys = append(skeys, sk)
		e.names = append(e.names, name)
		policy += fmt.Sprintf("witness %s %s\n", name, vk)
	}
	policy += "group q 2 w0 w1 w2\nquorum q\n"
	r, err := roster.ParsePolicy([]byte(policy))
	if err != nil {
		t.Fatal(err)
	}
	e.src = &timedSource{testSource: newTestSource(r), now: t0, timed: map[string][]feed.TimedNote{}}
	clock := func() time.Time {
		e.src.mu.Lock()
		defer e.src.mu.Unlock()
		return e.src.now
	}
	for _, sk := range skeys {
		signer, err := tlog.NewCosignatureSigner(sk, clock)
		if err != nil {
			t.Fatal(err)
		}
		db, err := store.Open(t.TempDir(), store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		w, err := witness.New(witness.Config{Signer: signer, Logs: r, Store: db, AfterCosign: func(c witness.Cosigned) {
			e.src.record(l.Origin(), c.Note)
			e.src.addNote(t, c.Note)
		}})
		if err != nil {
			t.Fatal(err)
		}
		e.wits = append(e.wits, w)
		e.last = append(e.last, 0)
	}
	f, err := feed.New(feed.Config{Source: e.src, Logger: testLogger(t), Now: func() time.Time { return t0.Add(90 * 24 * time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	e.handler = f.Handler()
	srv := httptest.NewServer(e.handler)
	t.Cleanup(srv.Close)
	e.url = srv.URL
	return e
}

// grow appends n entries at time at and has the listed witnesses cosign.
func (e *exportEnv) grow(n int, at time.Time, wits ...int) {
	e.t.Helper()
	e.src.mu.Lock()
	e.src.now = at
	e.src.mu.Unlock()
	e.log.AppendN(n, at.Format(time.RFC3339))
	cp, err := e.log.Checkpoint()
	if err != nil {
		e.t.Fatal(err)
	}
	for _, wi := range wits {
		p, err := e.log.ConsistencyProof(e.last[wi], e.log.Size())
		if err != nil {
			e.t.Fatal(err)
		}
		if _, err := e.wits[wi].AddCheckpoint(context.Background(), &witness.AddCheckpointRequest{OldSize: e.last[wi], Proof: p, Checkpoint: cp}); err != nil {
			e.t.Fatal(err)
		}
		e.last[wi] = e.log.Size()
	}
}

func (e *exportEnv) get(path string) (int, http.Header, string) {
	e.t.Helper()
	return httpGet(e.t, e.url+path, "")
}

// quarter fills a quarter: the log grows daily-ish; w2 stops cosigning
// half-way; one piece of evidence names w1.
func quarter(t testing.TB) *exportEnv {
	e := newExportEnv(t)
	e.grow(3, t0.Add(-time.Hour), 0, 1, 2) // before the period
	for i := range 6 {
		wits := []int{0, 1, 2}
		if i >= 3 {
			wits = []int{0, 1}
		}
		e.grow(2, t0.Add(time.Duration(i)*15*24*time.Hour), wits...)
	}
	e.src.addEvidence(feed.Evidence{ID: "ev1", Kind: "witness-equivocation", Origin: e.log.Origin(), Witnesses: []string{"w1"}, Sizes: []uint64{7, 7},
		Detected: t0.Add(40 * 24 * time.Hour), Stored: t0.Add(40*24*time.Hour + time.Second), Summary: "w1 cosigned two roots at size 7"}, []byte("file"))
	e.src.addEvidence(feed.Evidence{ID: "ev0", Kind: "log-equivocation", Origin: e.log.Origin(), Sizes: []uint64{2, 2},
		Detected: t0.Add(-48 * time.Hour), Stored: t0.Add(-48 * time.Hour), Summary: "before the period"}, []byte("file"))
	return e
}

func TestExportGolden(t *testing.T) {
	e := quarter(t)
	period := "since=2026-06-30T12:00:00Z&until=2026-09-28T12:00:00Z"
	for _, format := range []string{"jsonl", "csv"} {
		t.Run(format, func(t *testing.T) {
			code, hdr, body := e.get("/v1/export?" + period + "&format=" + format)
			if code != 200 {
				t.Fatalf("status %d: %s", code, body)
			}
			if want := `attachment; filename="vigil-export-20260630T120000Z-20260928T120000Z.` + format + `"`; hdr.Get("Content-Disposition") != want {
				t.Errorf("Content-Disposition %q, want %q", hdr.Get("Content-Disposition"), want)
			}
			golden := filepath.Join("testdata", "export."+format)
			if *update {
				if err := os.WriteFile(golden, []byte(body), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if body != string(want) {
				t.Errorf("export differs from %s (go test -run TestExportGolden -update rewrites it):\n%s", golden, body)
			}
		})
	}
}

func TestExportContents(t *testing.T) {
	e := quarter(t)
	_, _, body := e.get("/v1/export?since=2026-06-30T12:00:00Z&until=2026-09-28T12:00:00Z")
	var cps, evs int
	avail := map[string]feed.ExportAvailability{}
	var end *feed.ExportEnd
	for line := range strings.Lines(body) {
		var rec struct{ Type string }
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		switch rec.Type {
		case feed.ExportTypeCheckpoint:
			var c feed.ExportCheckpoint
			json.Unmarshal([]byte(line), &c)
			cp, _, err := tlog.VerifyCheckpoint([]byte(c.Note), e.log.Origin(), []note.Verifier{logVerifier(t, e.log)})
			if err != nil || cp.Size != c.Size {
				t.Errorf("checkpoint %d: note does not verify (%v)", c.Size, err)
			}
			if c.FirstSeen.Before(t0) || len(c.Cosigners) < 2 || !c.QuorumMet {
				t.Errorf("checkpoint %+v: want first seen in the period with a quorum", c)
			}
			cps++
		case feed.ExportTypeEvidence:
			evs++
		case feed.ExportTypeAvailability:
			var a feed.ExportAvailability
			json.Unmarshal([]byte(line), &a)
			avail[a.Witness] = a
		case feed.ExportTypeEnd:
			end = new(feed.ExportEnd)
			json.Unmarshal([]byte(line), end)
		}
	}
	if cps != 6 || evs != 1 || end == nil || end.Checkpoints != 6 || end.Evidence != 1 {
		t.Fatalf("%d checkpoints, %d evidence, end %+v; want 6, 1 and an end record saying so", cps, evs, end)
	}
	if a := avail["w2"]; a.Cosigned != 3 || a.Total != 6 || a.Share != 0.5 || !a.LastCosigned.Equal(t0.Add(30*24*time.Hour)) {
		t.Errorf("w2 availability %+v, want 3 of 6, last on day 30", a)
	}
	if a := avail["w0"]; a.Cosigned != 6 || a.Share != 1 || !a.FirstCosigned.Equal(t0) {
		t.Errorf("w0 availability %+v, want 6 of 6 from t0", a)
	}
}

func TestExportBadRequests(t *testing.T) {
	e := newExportEnv(t)
	for _, tc := range []struct{ query, reason string }{
		{"?format=xml", "bad format"},
		{"?since=yesterday", "bad since"},
		{"?until=2026-13-01T00:00:00Z", "bad until"},
		{"?since=2026-07-01T00:00:00Z&until=2026-06-01T00:00:00Z", "bad period"},
		{"?from=3", `unknown query parameter "from"`},
		{"?format=csv&format=jsonl", `query parameter "format" given 2 times`},
	} {
		code, hdr, body := e.get("/v1/export" + tc.query)
		var ae struct{ Error string }
		json.Unmarshal([]byte(body), &ae)
		if code != 400 || !strings.HasPrefix(ae.Error, tc.reason) || hdr.Get("Content-Type") != "application/json" {
			t.Errorf("%s: status %d %q, want 400 starting %q", tc.query, code, body, tc.reason)
		}
	}
}
