package witness_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"github.com/vigilnet/vigil/store"
	"github.com/vigilnet/vigil/tlog"
	"github.com/vigilnet/vigil/witness"
)

// statusEnv is the world every status case starts from: log a cosigned at
// size 8 and grown to 12, a fork of a at 6 grown to 12, log b listed but
// never cosigned (grown to 5), and log u not in the roster.
type statusEnv struct {
	f       *fixture
	a, b, u *testLog
	forkA   *testLog
}

func newStatusEnv(t *testing.T, limits witness.RateLimits) *statusEnv {
	t.Helper()
	e := &statusEnv{
		a: newTestLog(t, "example.com/a", nil),
		b: newTestLog(t, "example.com/b", nil),
		u: newTestLog(t, "example.com/unknown", nil),
	}
	e.a.grow(6, "a")
	e.forkA = e.a.fork(t, 6)
	e.a.grow(12, "a")
	e.forkA.grow(12, "fork")
	e.b.grow(5, "b")
	e.u.grow(5, "u")
	e.f = newFixture(t, fixtureOptions{limits: limits}, e.a, e.b)
	e.f.push(e.a, 0, 8, http.StatusOK)
	return e
}

func flip(b []byte, i int) []byte {
	b = bytes.Clone(b)
	b[i] ^= 1
	return b
}

func TestAddCheckpointStatuses(t *testing.T) {
	hash := func(n int) []byte { return bytes.Repeat([]byte{7}, n) }
	b64 := base64.StdEncoding.EncodeToString
	for _, tc := range []struct {
		name   string
		limits witness.RateLimits
		method string
		body   func(t *testing.T, e *statusEnv) []byte
		code   int
		// for 200: the log and size now stored; otherwise nothing may change.
		log      func(e *statusEnv) *testLog
		size     uint64
		wantBody string // exact body, if set
		contains string // body substring, if set
	}{
		// 200
		{name: "grow", code: 200, log: func(e *statusEnv) *testLog { return e.a }, size: 12,
			body: func(t *testing.T, e *statusEnv) []byte {
				return requestBody(8, e.a.proof(t, 8, 12), e.a.checkpoint(t, 12))
			}},
		{name: "same size same root", code: 200, log: func(e *statusEnv) *testLog { return e.a }, size: 8,
			body: func(t *testing.T, e *statusEnv) []byte { return requestBody(8, nil, e.a.checkpoint(t, 8)) }},
		{name: "first checkpoint of a log", code: 200, log: func(e *statusEnv) *testLog { return e.b }, size: 5,
			body: func(t *testing.T, e *statusEnv) []byte { return requestBody(0, nil, e.b.checkpoint(t, 5)) }},
		{name: "empty tree", code: 200, log: func(e *statusEnv) *testLog { return e.b }, size: 0,
			body: func(t *testing.T, e *statusEnv) []byte { return requestBody(0, nil, e.b.checkpoint(t, 0)) }},
		{name: "unknown extra signature ignored", code: 200, log: func(e *statusEnv) *testLog { return e.a }, size: 12,
			body: func(t *testing.T, e *statusEnv) []byte {
				other := newTestLog(t, "someone.else/key", nil)
				cp := e.a.checkpoint(t, 12)
				extra := other.signText(t, "example.com/a\n12\n"+b64(hash(32))+"\n")
				sigLine := extra[bytes.LastIndex(extra, []byte("\n\n"))+2:]
				return requestBody(8, e.a.proof(t, 8, 12), append(cp, sigLine...))
			}},

		// 400
		{name: "empty body", code: 400, body: func(*testing.T, *statusEnv) []byte { return nil }},
		{name: "garbage", code: 400, body: func(*testing.T, *statusEnv) []byte { return []byte("hello, witness") }},
		{name: "no blank line", code: 400, contains: "empty line",
			body: func(*testing.T, *statusEnv) []byte { return []byte("old 8\n") }},
		{name: "no blank line before the note", code: 400,
			body: func(t *testing.T, e *statusEnv) []byte {
				return bytes.Replace(requestBody(8, e.a.proof(t, 8, 12), e.a.checkpoint(t, 12)), []byte("\n\nexample.com"), []byte("\nexample.com"), 1)
			}},
		{name: "bad old keyword", code: 400,
			body: func(t *testing.T, e *statusEnv) []byte { return append([]byte("new 8\n\n"), e.a.checkpoint(t, 8)...) }},
		{name: "old not a number", code: 400,
			body: func(t *testing.T, e *statusEnv) []byte {
				return append([]byte("old eight\n\n"), e.a.checkpoint(t, 8)...)
			}},
		{name: "old negative", code: 400,
			body: func(t *testing.T, e *statusEnv) []byte { return append([]byte("old -8\n\n"), e.a.checkpoint(t, 8)...) }},
		{name: "old leading zero", code: 400, contains: "old size",
			body: func(t *testing.T, e *statusEnv) []byte { return append([]byte("old 08\n\n"), e.a.checkpoint(t, 8)...) }},
		{name: "old plus sign", code: 400,
			body: func(t *testing.T, e *statusEnv) []byte { return append([]byte("old +8\n\n"), e.a.checkpoint(t, 8)...) }},
		{name: "old trailing space", code: 400,
			body: func(t *testing.T, e *statusEnv) []byte { return append([]byte("old 8 \n\n"), e.a.checkpoint(t, 8)...) }},
		{name: "old overflows uint64", code: 400,
			body: func(t *testing.T, e *statusEnv) []byte {
				return append([]byte("old 18446744073709551616\n\n"), e.a.checkpoint(t, 12)...)
			}},
		{name: "64 proof lines", code: 400, contains: "proof lines",
			body: func(t *testing.T, e *statusEnv) []byte {
				p := make([][]byte, 64)
				for i := range p {
					p[i] = hash(32)
				}
				return requestBody(8, p, e.a.checkpoint(t, 12))
			}},
		{name: "proof hash of 31 bytes", code: 400,
			body: func(t *testing.T, e *statusEnv) []byte {
				return requestBody(8, [][]byte{hash(31)}, e.a.checkpoint(t, 12))
			}},
		{name: "proof hash of 33 bytes", code: 400,
			body: func(t *testing.T, e *statusEnv) []byte {
				return requestBody(8, [][]byte{hash(33)}, e.a.checkpoint(t, 12))
			}},
		{name: "proof line not base64", code: 400,
			body: func(t *testing.T, e *statusEnv) []byte {
				return append([]byte("old 8\n!!not base64!!\n\n"), e.a.checkpoint(t, 12)...)
			}},
		{name: "proof line with non-zero padding bits", code: 400,
			body: func(t *testing.T, e *statusEnv) []byte {
				l := b64(hash(32))
				l = l[:42] + "D=" // 'D' sets padding bits that must be zero
				return append([]byte("old 8\n"+l+"\n\n"), e.a.checkpoint(t, 12)...)
			}},
		{name: "proof line with a carriage return", code: 400,
			body: func(t *testing.T, e *statusEnv) []byte {
				p := e.a.proof(t, 8, 12)
				body := "old 8\n" + b64(p[0]) + "\r\n"
				for _, h := range p[1:] {
					body += b64(h) + "\n"
				}
				return append([]byte(body+"\n"), e.a.checkpoint(t, 12)...)
			}},
		{name: "nothing after the blank line", code: 400,
			body: func(*testing.T, *statusEnv) []byte { return []byte("old 8\n\n") }},
		{name: "checkpoint size with leading zero", code: 400,
			body: func(t *testing.T, e *statusEnv) []byte {
				r := e.a.root(t, 12)
				return requestBody(8, nil, e.a.signText(t, "example.com/a\n012\n"+b64(r[:])+"\n"))
			}},
		{name: "checkpoint without root", code: 400,
			body: func(t *testing.T, e *statusEnv) []byte {
				return requestBody(8, nil, e.a.signText(t, "example.com/a\n12\n"))
			}},
		{name: "checkpoint root of 31 bytes", code: 400,
			body: func(t *testing.T, e *statusEnv) []byte {
				return requestBody(8, nil, e.a.signText(t, "example.com/a\n12\n"+b64(hash(31))+"\n"))
			}},
		{name: "note without signatures", code: 400,
			body: func(t *testing.T, e *statusEnv) []byte {
				r := e.a.root(t, 12)
				return requestBody(8, nil, []byte("example.com/a\n12\n"+b64(r[:])+"\n"))
			}},
		{name: "old larger than size", code: 400, contains: "larger",
			body: func(t *testing.T, e *statusEnv) []byte { return requestBody(13, nil, e.a.checkpoint(t, 12)) }},

		// 403
		{name: "wrong key", code: 403,
			body: func(t *testing.T, e *statusEnv) []byte {
				impostor := newTestLog(t, "example.com/a", nil)
				impostor.grow(12, "a")
				return requestBody(8, impostor.proof(t, 8, 12), impostor.checkpoint(t, 12))
			}},
		{name: "tampered signature from the right key", code: 403,
			body: func(t *testing.T, e *statusEnv) []byte {
				cp := e.a.checkpoint(t, 12)
				i := bytes.LastIndexByte(cp[:len(cp)-1], ' ') + 1
				sig, err := base64.StdEncoding.DecodeString(string(cp[i : len(cp)-1]))
				if err != nil {
					t.Fatal(err)
				}
				bad := append(cp[:i:i], b64(flip(sig, 10))+"\n"...)
				return requestBody(8, e.a.proof(t, 8, 12), bad)
			}},
		{name: "tampered body", code: 403,
			body: func(t *testing.T, e *statusEnv) []byte {
				cp := e.a.checkpoint(t, 12)
				bad := bytes.Replace(cp, []byte("\n12\n"), []byte("\n13\n"), 1)
				return requestBody(8, nil, bad)
			}},

		// 404
		{name: "unknown origin", code: 404, contains: "example.com/unknown",
			body: func(t *testing.T, e *statusEnv) []byte { return requestBody(0, nil, e.u.checkpoint(t, 5)) }},

		// 409
		{name: "stale old size", code: 409, wantBody: "8\n",
			body: func(t *testing.T, e *statusEnv) []byte {
				return requestBody(4, e.a.proof(t, 4, 12), e.a.checkpoint(t, 12))
			}},
		{name: "old size ahead of the witness", code: 409, wantBody: "8\n",
			body: func(t *testing.T, e *statusEnv) []byte {
				return requestBody(10, e.a.proof(t, 10, 12), e.a.checkpoint(t, 12))
			}},
		{name: "old 0 probe", code: 409, wantBody: "8\n",
			body: func(t *testing.T, e *statusEnv) []byte { return requestBody(0, nil, e.a.checkpoint(t, 12)) }},
		{name: "first request with old not 0", code: 409, wantBody: "0\n",
			body: func(t *testing.T, e *statusEnv) []byte {
				return requestBody(3, e.b.proof(t, 3, 5), e.b.checkpoint(t, 5))
			}},

		// 413
		{name: "oversized body", code: 413,
			body: func(t *testing.T, e *statusEnv) []byte {
				b := requestBody(8, e.a.proof(t, 8, 12), e.a.checkpoint(t, 12))
				return append(b, bytes.Repeat([]byte("x"), witness.MaxRequestBytes+1-len(b))...)
			}},

		// 422
		{name: "bad proof", code: 422,
			body: func(t *testing.T, e *statusEnv) []byte {
				p := e.a.proof(t, 8, 12)
				p[0] = flip(p[0], 0)
				return requestBody(8, p, e.a.checkpoint(t, 12))
			}},
		{name: "truncated proof", code: 422,
			body: func(t *testing.T, e *statusEnv) []byte {
				p := e.a.proof(t, 8, 12)
				return requestBody(8, p[:len(p)-1], e.a.checkpoint(t, 12))
			}},
		{name: "proof from a fork", code: 422,
			body: func(t *testing.T, e *statusEnv) []byte {
				return requestBody(8, e.forkA.proof(t, 8, 12), e.forkA.checkpoint(t, 12))
			}},
		{name: "same size different root", code: 422,
			body: func(t *testing.T, e *statusEnv) []byte { return requestBody(8, nil, e.forkA.checkpoint(t, 8)) }},
		{name: "same size with a proof", code: 422,
			body: func(t *testing.T, e *statusEnv) []byte {
				return requestBody(8, [][]byte{hash(32)}, e.a.checkpoint(t, 8))
			}},
		{name: "old 0 with a proof", code: 422,
			body: func(t *testing.T, e *statusEnv) []byte {
				return requestBody(0, [][]byte{hash(32)}, e.b.checkpoint(t, 5))
			}},
		{name: "size 0 with a non-empty root", code: 422,
			body: func(t *testing.T, e *statusEnv) []byte {
				return requestBody(0, nil, e.b.signText(t, "example.com/b\n0\n"+b64(hash(32))+"\n"))
			}},

		// 429: the setup push used the only token.
		{name: "rate limited", code: 429, limits: witness.RateLimits{PerLog: 0.001, Burst: 1},
			body: func(t *testing.T, e *statusEnv) []byte {
				return requestBody(8, e.a.proof(t, 8, 12), e.a.checkpoint(t, 12))
			}},

		// 405
		{name: "GET", code: 405, method: http.MethodGet,
			body: func(*testing.T, *statusEnv) []byte { return nil }},
		{name: "PUT", code: 405, method: http.MethodPut,
			body: func(t *testing.T, e *statusEnv) []byte {
				return requestBody(8, e.a.proof(t, 8, 12), e.a.checkpoint(t, 12))
			}},
	} {
		t.Run(strconv.Itoa(tc.code)+" "+tc.name, func(t *testing.T) {
			e := newStatusEnv(t, tc.limits)
			body := tc.body(t, e)
			method := tc.method
			if method == "" {
				method = http.MethodPost
			}
			before := e.f.states()
			r := e.f.do(method, body)
			if r.code != tc.code {
				t.Fatalf("status %d (%q), want %d", r.code, r.body, tc.code)
			}
			if tc.wantBody != "" && r.body != tc.wantBody {
				t.Fatalf("body %q, want %q", r.body, tc.wantBody)
			}
			if tc.contains != "" && !strings.Contains(r.body, tc.contains) {
				t.Fatalf("body %q does not mention %q", r.body, tc.contains)
			}
			if tc.code == 200 {
				l := tc.log(e)
				cp := l.checkpoint(t, tc.size)
				checkCosignature(t, e.f.vkey, l.VerifierKey(), cp, r.body)
				st := e.f.state(l.Origin())
				if st.Size != tc.size || st.Root != l.root(t, tc.size) {
					t.Fatalf("stored %d/%x, want %d", st.Size, st.Root[:4], tc.size)
				}
				if !bytes.HasSuffix(st.Checkpoint, []byte(r.body)) {
					t.Fatal("stored checkpoint does not carry the returned cosignature")
				}
				return
			}
			requireOneLine(t, r.body)
			requireSameStates(t, before, e.f.states())
			switch tc.code {
			case 409:
				if ct := r.header.Get("Content-Type"); ct != "text/x.tlog.size" {
					t.Fatalf("409 Content-Type %q, want text/x.tlog.size", ct)
				}
			case 429:
				ra, err := strconv.Atoi(r.header.Get("Retry-After"))
				if err != nil || ra < 1 {
					t.Fatalf("429 Retry-After %q", r.header.Get("Retry-After"))
				}
			case 405:
				if !strings.Contains(r.header.Get("Allow"), "POST") {
					t.Fatalf("405 Allow %q", r.header.Get("Allow"))
				}
			}
		})
	}
}

func TestRecosignRefreshesTimestamp(t *testing.T) {
	a := newTestLog(t, "example.com/a", nil)
	a.grow(10, "a")
	f := newFixture(t, fixtureOptions{}, a)
	cp := a.checkpoint(t, 10)
	r1 := f.push(a, 0, 10, 200)
	ts1 := checkCosignature(t, f.vkey, a.VerifierKey(), cp, r1.body)
	if ts1 != f.clock.unix() {
		t.Fatalf("timestamp %d, want the signer clock %d", ts1, f.clock.unix())
	}
	f.clock.advance(60)
	r2 := f.push(a, 10, 10, 200)
	ts2 := checkCosignature(t, f.vkey, a.VerifierKey(), cp, r2.body)
	if ts2 != ts1+60 {
		t.Fatalf("re-cosigned timestamp %d, want %d", ts2, ts1+60)
	}
	if st := f.state(a.Origin()); !bytes.HasSuffix(st.Checkpoint, []byte(r2.body)) || st.Size != 10 {
		t.Fatal("state does not hold the refreshed cosignature")
	}
}

func TestGrowthWithRealProofs(t *testing.T) {
	a := newTestLog(t, "example.com/a", nil)
	f := newFixture(t, fixtureOptions{}, a)
	var old uint64
	// Step sizes cross many power-of-two boundaries, including steps of 1.
	steps := []uint64{1, 1, 2, 3, 1, 8, 16, 1, 31, 33, 64, 1, 127, 129, 5, 250, 6, 1, 511, 513}
	for i, step := range steps {
		size := old + step
		a.grow(size, "a")
		r := f.push(a, old, size, 200)
		checkCosignature(t, f.vkey, a.VerifierKey(), a.checkpoint(t, size), r.body)
		if st := f.state(a.Origin()); st.Size != size || st.Root != a.root(t, size) {
			t.Fatalf("step %d: stored size %d, want %d", i, st.Size, size)
		}
		// The previous size is now stale.
		if old > 0 {
			r := f.post(requestBody(old, a.proof(t, old, size), a.checkpoint(t, size)))
			if r.code != 409 || r.body != strconv.FormatUint(size, 10)+"\n" {
				t.Fatalf("stale replay: %d %q", r.code, r.body)
			}
		}
		old = size
	}
}

func TestRestartKeepsState(t *testing.T) {
	a := newTestLog(t, "example.com/a", nil)
	a.grow(30, "a")
	fork := a.fork(t, 15)
	fork.grow(30, "fork")
	dir := t.TempDir()

	f := newFixture(t, fixtureOptions{dir: dir}, a)
	f.push(a, 0, 10, 200)
	f.push(a, 10, 20, 200)
	skey := f.skey
	f.close()

	f2 := newFixture(t, fixtureOptions{dir: dir, skey: skey}, a)
	before := f2.states()
	if st := before[a.Origin()]; st.Size != 20 || st.Root != a.root(t, 20) {
		t.Fatalf("after restart: stored %d", st.Size)
	}
	for _, tc := range []struct {
		name string
		body []byte
		code int
	}{
		{"replay of the first push", requestBody(0, nil, a.checkpoint(t, 10)), 409},
		{"stale old size", requestBody(10, a.proof(t, 10, 25), a.checkpoint(t, 25)), 409},
		{"fork at the stored size", requestBody(20, nil, fork.checkpoint(t, 20)), 422},
		{"fork beyond the stored size", requestBody(20, fork.proof(t, 20, 30), fork.checkpoint(t, 30)), 422},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := f2.post(tc.body)
			if r.code != tc.code {
				t.Fatalf("status %d (%q), want %d", r.code, r.body, tc.code)
			}
			if tc.code == 409 && r.body != "20\n" {
				t.Fatalf("409 body %q, want the stored size 20", r.body)
			}
			requireSameStates(t, before, f2.states())
		})
	}
	r := f2.push(a, 20, 30, 200)
	checkCosignature(t, f2.vkey, a.VerifierKey(), a.checkpoint(t, 30), r.body)
	f2.close()

	// And once more: the continuation survived a restart too.
	f3 := newFixture(t, fixtureOptions{dir: dir, skey: skey}, a)
	if st := f3.state(a.Origin()); st.Size != 30 || st.Root != a.root(t, 30) {
		t.Fatalf("after second restart: stored %d", st.Size)
	}
}

func TestLatest(t *testing.T) {
	a := newTestLog(t, "example.com/a", nil)
	a.grow(9, "a")
	f := newFixture(t, fixtureOptions{}, a)
	ctx := context.Background()
	if _, err := f.w.Latest(ctx, a.Origin()); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Latest before any cosignature: %v, want ErrNotFound", err)
	}
	r := f.push(a, 0, 9, 200)
	latest, err := f.w.Latest(ctx, a.Origin())
	if err != nil {
		t.Fatal(err)
	}
	// Exactly the log's signature followed by the returned cosignature.
	cp := a.checkpoint(t, 9)
	if want := string(cp) + r.body; string(latest) != want {
		t.Fatalf("Latest =\n%s\nwant\n%s", latest, want)
	}
	witV, err := tlog.NewCosignatureVerifier(f.vkey)
	if err != nil {
		t.Fatal(err)
	}
	c, n, err := tlog.VerifyCheckpoint(latest, a.Origin(), []note.Verifier{mustNoteVerifier(t, a.VerifierKey())}, witV)
	if err != nil {
		t.Fatal(err)
	}
	if c.Size != 9 || len(n.Sigs) != 2 || !tlog.SignedBy(n, witV) {
		t.Fatalf("Latest holds size %d with %d verified signatures", c.Size, len(n.Sigs))
	}
	if _, err := f.w.Latest(ctx, "example.com/never"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Latest of an unknown log: %v", err)
	}
}

func TestNewRequiresDependencies(t *testing.T) {
	if _, err := witness.New(witness.Config{}); err == nil {
		t.Fatal("New with no Signer, Logs or Store succeeded")
	}
}

// TestAfterRefuse: the hook sees exactly the log-signed checkpoints refused
// as inconsistent with the witness's state (409, 422), nothing else.
func TestAfterRefuse(t *testing.T) {
	a := newTestLog(t, "example.com/a", nil)
	u := newTestLog(t, "example.com/unknown", nil)
	a.grow(6, "a")
	fork := a.fork(t, 6)
	a.grow(12, "a")
	fork.grow(12, "fork")
	u.grow(3, "u")
	var mu sync.Mutex
	var refused [][]byte
	var errs []error
	f := newFixture(t, fixtureOptions{afterRefuse: func(cp []byte, err error) {
		mu.Lock()
		defer mu.Unlock()
		refused = append(refused, cp)
		errs = append(errs, err)
	}}, a)
	f.push(a, 0, 8, http.StatusOK)
	f.push(a, 0, 10, http.StatusConflict)                                              // stale old size
	f.push(fork, 8, 8, http.StatusUnprocessableEntity)                                 // same size, other root
	f.post(requestBody(8, a.proof(t, 8, 12), flip(a.checkpoint(t, 12), 30)))           // not the log's signature: 403
	f.push(u, 0, 3, http.StatusNotFound)                                               // unknown log
	f.post([]byte("garbage\n"))                                                        // 400
	f.post(requestBody(8, [][]byte{bytes.Repeat([]byte{1}, 32)}, a.checkpoint(t, 12))) // bogus proof: 422
	f.push(a, 8, 12, http.StatusOK)
	mu.Lock()
	defer mu.Unlock()
	want := [][]byte{a.checkpoint(t, 10), fork.checkpoint(t, 8), a.checkpoint(t, 12)}
	if len(refused) != len(want) {
		t.Fatalf("AfterRefuse called %d times (%v), want %d", len(refused), errs, len(want))
	}
	for i := range want {
		if !bytes.Equal(refused[i], want[i]) {
			t.Errorf("call %d: checkpoint\n%s\nwant\n%s", i, refused[i], want[i])
		}
	}
	if !errors.Is(errs[0], witness.ErrConflict) || !errors.Is(errs[1], witness.ErrInconsistent) || !errors.Is(errs[2], witness.ErrInconsistent) {
		t.Errorf("errors %v", errs)
	}
}

// TestTruncatedBody: a body shorter than its Content-Length is a 400 that
// names the problem, not a parse of what arrived.
func TestTruncatedBody(t *testing.T) {
	a := newTestLog(t, "example.com/a", nil)
	a.grow(4, "a")
	f := newFixture(t, fixtureOptions{}, a)
	body := requestBody(0, nil, a.checkpoint(t, 4))
	c, err := net.Dial("tcp", strings.TrimPrefix(f.srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "POST /add-checkpoint HTTP/1.1\r\nHost: w\r\nContent-Length: %d\r\n\r\n", len(body)+10)
	c.Write(body)
	c.(*net.TCPConn).CloseWrite()
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), "declared") {
		t.Fatalf("truncated body: %d %q", resp.StatusCode, b)
	}
	if st := f.states(); len(st) != 0 {
		t.Fatalf("state changed: %v", st)
	}
}
