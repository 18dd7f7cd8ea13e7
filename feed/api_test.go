package feed_test

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"

	"github.com/vigilnet/vigil/feed"
	"github.com/vigilnet/vigil/roster"
	"github.com/vigilnet/vigil/testnet/scriptlog"
	"github.com/vigilnet/vigil/tlog"
)

// openServed verifies a served checkpoint as an independent C2SP client
// would: x/mod note with the log key and transparency-dev/formats
// cosignature/v1 verifiers for the witnesses. It returns the witnesses (by
// index) whose cosignature verified.
func (e *env) openServed(li int, body string) (tlog.Checkpoint, []int) {
	e.t.Helper()
	vs := []note.Verifier{logVerifier(e.t, e.logs[li])}
	for _, w := range e.wits {
		v, err := fnote.NewVerifierForCosignatureV1(w.vkey)
		if err != nil {
			e.t.Fatal(err)
		}
		vs = append(vs, v)
	}
	n, err := note.Open([]byte(body), note.VerifierList(vs...))
	if err != nil {
		e.t.Fatalf("served note does not verify: %v\n%s", err, body)
	}
	if len(n.UnverifiedSigs) != 0 {
		e.t.Errorf("served note carries %d unverifiable signatures", len(n.UnverifiedSigs))
	}
	cp, err := tlog.ParseCheckpoint([]byte(n.Text))
	if err != nil {
		e.t.Fatal(err)
	}
	var got []int
	for _, s := range n.Sigs {
		for i, v := range vs[1:] {
			if s.Name == v.Name() && s.Hash == v.KeyHash() {
				got = append(got, i)
			}
		}
	}
	return cp, got
}

// waitSize waits until the feed serves log li at size with k cosignatures.
func (e *env) waitServed(s *stream, li int, size uint64, cosigners int) {
	e.t.Helper()
	id := tlog.LogID(e.logs[li].Origin())
	s.waitFor(e.t, func(ev sse) bool {
		var c feed.CheckpointEvent
		if ev.typ != feed.EventCheckpoint || json.Unmarshal([]byte(ev.data), &c) != nil {
			return false
		}
		return c.LogID == id && c.Size == size && len(c.Cosigners) == cosigners
	})
}

func TestCheckpointKOfN(t *testing.T) {
	e := newEnv(t, envOptions{logs: 2, witnesses: 3, quorum: "2"})
	s := e.subscribe("")
	l := e.logs[0]
	l.AppendN(5, "a")
	e.cosign(0, 0, 1, 2)
	e.waitServed(s, 0, 5, 3)
	l.AppendN(3, "b")
	e.cosign(0, 0, 1)
	e.waitServed(s, 0, 8, 2)
	l.AppendN(2, "c")
	e.cosign(0, 0)
	// Short of its quorum, size 10 is served but not announced.
	e.waitLatest(0, 10, 1)

	id := tlog.LogID(l.Origin())
	tests := []struct {
		query     string
		size      uint64
		cosigners []int
	}{
		{"", 10, []int{0}},
		{"?k=0", 10, []int{0}},
		{"?k=1", 10, []int{0}},
		{"?k=2", 8, []int{0, 1}},
		{"?k=3", 5, []int{0, 1, 2}},
	}
	for _, tc := range tests {
		t.Run("k"+tc.query, func(t *testing.T) {
			code, h, body := e.get("/v1/logs/" + id + "/checkpoint" + tc.query)
			if code != 200 {
				t.Fatalf("status %d: %s", code, body)
			}
			if ct := h.Get("Content-Type"); ct != "text/plain; charset=utf-8" {
				t.Errorf("Content-Type %q", ct)
			}
			if h.Get("ETag") == "" || !strings.Contains(h.Get("Cache-Control"), "max-age=") {
				t.Errorf("caching headers: ETag %q, Cache-Control %q", h.Get("ETag"), h.Get("Cache-Control"))
			}
			cp, got := e.openServed(0, body)
			if cp.Size != tc.size || fmt.Sprint(got) != fmt.Sprint(tc.cosigners) {
				t.Errorf("served size %d cosigned by %v, want %d by %v", cp.Size, got, tc.size, tc.cosigners)
			}
			code, _, _ = e.get("/v1/logs/"+id+"/checkpoint"+tc.query, "If-None-Match", h.Get("ETag"))
			if code != http.StatusNotModified {
				t.Errorf("If-None-Match: status %d, want 304", code)
			}
		})
	}

	errs := []struct {
		name, path string
		code       int
		reason     string
	}{
		{"k too large", "/v1/logs/" + id + "/checkpoint?k=4", 400, "exceeds the 3 witnesses"},
		{"k negative", "/v1/logs/" + id + "/checkpoint?k=-1", 400, "bad k"},
		{"k not a number", "/v1/logs/" + id + "/checkpoint?k=two", 400, "bad k"},
		{"k leading zero", "/v1/logs/" + id + "/checkpoint?k=02", 400, "bad k"},
		{"k empty", "/v1/logs/" + id + "/checkpoint?k=", 400, "bad k"},
		{"never cosigned", "/v1/logs/" + tlog.LogID(e.logs[1].Origin()) + "/checkpoint", 404, "no checkpoint of example.com/log1"},
		{"never k", "/v1/logs/" + tlog.LogID(e.logs[1].Origin()) + "/checkpoint?k=1", 404, "at least 1 roster cosignatures"},
		{"unknown log", "/v1/logs/" + tlog.LogID("example.com/nope") + "/checkpoint", 404, "unknown log"},
		{"not an ID", "/v1/logs/xyz/checkpoint", 404, "unknown log"},
	}
	for _, tc := range errs {
		t.Run(tc.name, func(t *testing.T) {
			code, _, body := e.get(tc.path)
			if code != tc.code || !strings.Contains(body, tc.reason) {
				t.Errorf("status %d %q, want %d containing %q", code, body, tc.code, tc.reason)
			}
		})
	}

	// The log list reports the newest checkpoint and the newest one that
	// meets the quorum (2 of 3).
	code, _, body := e.get("/v1/logs")
	if code != 200 {
		t.Fatalf("/v1/logs: %d %s", code, body)
	}
	var logs feed.LogsResponse
	if err := json.Unmarshal([]byte(body), &logs); err != nil {
		t.Fatal(err)
	}
	if len(logs.Logs) != 2 || len(logs.Witnesses) != 3 || logs.Quorum != "q" {
		t.Fatalf("logs response: %+v", logs)
	}
	l0 := logs.Logs[0]
	if l0.Origin != l.Origin() || l0.LogID != id || l0.Key != l.VerifierKey() || l0.Latest == nil || l0.Latest.Size != 10 ||
		fmt.Sprint(l0.Latest.Cosigners) != "[w0]" || l0.Latest.QuorumMet || l0.Quorum == nil || l0.Quorum.Size != 8 || l0.AgeSeconds == nil {
		t.Errorf("log 0: %s", mustMarshal(l0))
	}
	if l1 := logs.Logs[1]; l1.Latest != nil || l1.Quorum != nil {
		t.Errorf("log 1 was never cosigned: %s", mustMarshal(l1))
	}
}

func mustMarshal(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestUntrustedSourceNotes: what the source returns is verified, never
// trusted: a forged cosignature drops the note, and signatures from keys
// outside the roster are not served.
func TestUntrustedSourceNotes(t *testing.T) {
	e := newEnv(t, envOptions{logs: 1, witnesses: 2})
	s := e.subscribe("")
	l := e.logs[0]
	l.AppendN(4, "a")
	e.cosign(0, 0)
	e.waitServed(s, 0, 4, 1)

	// A note at size 6 claiming w1's cosignature with a corrupted signature.
	l.AppendN(2, "b")
	good, _ := l.Checkpoint()
	forged := append([]byte(nil), good...)
	v, _ := tlog.NewCosignatureVerifier(e.wits[1].vkey)
	line := forgedCosig(v.Name(), v.KeyHash())
	forged = append(forged, line...)
	e.src.addNote(t, forged)
	// And a note at size 6 with a stranger's cosignature: served without it.
	skey, _, _ := tlog.GenerateCosignerKey(rand.Reader, "stranger.example")
	stranger, _ := tlog.NewCosignatureSigner(skey, nil)
	n, err := note.Open(good, note.VerifierList(logVerifier(t, l)))
	if err != nil {
		t.Fatal(err)
	}
	withStranger, err := note.Sign(n, stranger)
	if err != nil {
		t.Fatal(err)
	}
	e.src.addNote(t, withStranger)
	e.waitServed(s, 0, 6, 0)
	code, _, body := e.get("/v1/logs/" + tlog.LogID(l.Origin()) + "/checkpoint")
	if code != 200 {
		t.Fatalf("status %d %s", code, body)
	}
	cp, got := e.openServed(0, body)
	if cp.Size != 6 || len(got) != 0 || strings.Contains(body, "stranger.example") {
		t.Errorf("served size %d with cosigners %v:\n%s", cp.Size, got, body)
	}
	// k=1 still serves the genuinely cosigned size 4.
	_, _, body = e.get("/v1/logs/" + tlog.LogID(l.Origin()) + "/checkpoint?k=1")
	if cp, got := e.openServed(0, body); cp.Size != 4 || len(got) != 1 {
		t.Errorf("k=1 served size %d with %v", cp.Size, got)
	}
}

// forgedCosig is a cosignature line with a well-formed but wrong signature.
func forgedCosig(name string, keyID uint32) []byte {
	b := binary.BigEndian.AppendUint32(nil, keyID)
	b = binary.BigEndian.AppendUint64(b, 1700000000)
	b = append(b, make([]byte, 64)...)
	return fmt.Appendf(nil, "— %s %s\n", name, base64.StdEncoding.EncodeToString(b))
}

// TestRosterReload: a new roster takes effect at once; cosignatures of a
// witness dropped from it stop counting.
func TestRosterReload(t *testing.T) {
	e := newEnv(t, envOptions{logs: 1, witnesses: 2})
	s := e.subscribe("")
	l := e.logs[0]
	l.AppendN(3, "a")
	e.cosign(0, 0, 1)
	e.waitServed(s, 0, 3, 2)
	id := tlog.LogID(l.Origin())
	if code, _, _ := e.get("/v1/logs/" + id + "/checkpoint?k=2"); code != 200 {
		t.Fatalf("k=2 before the reload: %d", code)
	}
	other, err := scriptlog.New("example.com/new")
	if err != nil {
		t.Fatal(err)
	}
	r, err := roster.ParsePolicy(fmt.Appendf(nil, "log %s\nlog %s\nwitness w0 %s\n", l.VerifierKey(), other.VerifierKey(), e.wits[0].vkey))
	if err != nil {
		t.Fatal(err)
	}
	e.src.setRoster(r)
	code, _, body := e.get("/v1/logs/" + id + "/checkpoint?k=1")
	if cp, got := e.openServed(0, body); code != 200 || cp.Size != 3 || fmt.Sprint(got) != "[0]" {
		t.Errorf("after the reload: %d, size %d cosigned by %v", code, cp.Size, got)
	}
	if code, _, body := e.get("/v1/logs/" + id + "/checkpoint?k=2"); code != 400 || !strings.Contains(body, "exceeds the 1 witnesses") {
		t.Errorf("k=2 after the reload: %d %s", code, body)
	}
	if code, _, body := e.get("/v1/logs/" + tlog.LogID(other.Origin()) + "/checkpoint"); code != 404 || !strings.Contains(body, "held yet") {
		t.Errorf("new log: %d %s", code, body)
	}
}
