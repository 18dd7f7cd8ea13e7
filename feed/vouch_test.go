package feed_test

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"github.com/vigilnet/vigil/roster"
	"github.com/vigilnet/vigil/tlog"
)

// forgeLogSig replaces the signature bytes of msg's last signature line (the
// log's, for a checkpoint fresh from a scripted log) with zeros, keeping the
// key name and hash: it parses, names the log's key, and does not verify.
func forgeLogSig(t *testing.T, msg []byte) []byte {
	t.Helper()
	i := bytes.LastIndex(msg, []byte(" "))
	sig, err := base64.StdEncoding.DecodeString(string(bytes.TrimSpace(msg[i+1:])))
	if err != nil || len(sig) != 4+64 {
		t.Fatalf("not an Ed25519 signature line: %q", msg[i+1:])
	}
	clear(sig[4:])
	return fmt.Appendf(bytes.Clone(msg[:i+1]), "%s\n", base64.StdEncoding.EncodeToString(sig))
}

func rejectedNotes(t *testing.T, e *env) float64 {
	t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "vigil_feed_rejected_notes_total" {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatal("no vigil_feed_rejected_notes_total")
	return 0
}

// TestCosignedNotesAreTrusted: a note this node's witness vouched for with
// Feed.Cosigned is served without verifying its signatures again (shown
// here with a forged log signature, which only that path lets through);
// any other note is verified, and so is the vouched one once the roster
// it was vouched under is replaced.
func TestCosignedNotesAreTrusted(t *testing.T) {
	e := newEnv(t, envOptions{logs: 1, witnesses: 1})
	s := e.subscribe("")
	l := e.logs[0]
	l.AppendN(4, "a")
	e.cosign(0, 0)
	e.waitServed(s, 0, 4, 1)

	l.AppendN(1, "b")
	cp5, _ := l.Checkpoint()
	unvouched := forgeLogSig(t, cp5)
	l.AppendN(1, "c")
	cp6, _ := l.Checkpoint()
	vouched := forgeLogSig(t, cp6)
	rl, ok := e.r.Log(l.Origin())
	if !ok {
		t.Fatal("log not in roster")
	}
	e.src.addNote(t, unvouched)
	e.feed.Cosigned(rl, vouched)
	e.src.addNote(t, vouched)
	e.waitServed(s, 0, 6, 0)
	// Building the view read sizes 6, 5 and 4: only 5 was verified (and
	// dropped); 6 was trusted; 4 verified.
	if n := rejectedNotes(t, e); n != 1 {
		t.Errorf("%v notes rejected, want 1 (the unvouched forgery)", n)
	}

	// The same roster text, parsed again: new entries, so the vouch no
	// longer applies and the forged size 6 is dropped too.
	r, err := roster.ParsePolicy(fmt.Appendf(nil, "log %s\nwitness w0 %s\n", l.VerifierKey(), e.wits[0].vkey))
	if err != nil {
		t.Fatal(err)
	}
	e.src.setRoster(r)
	code, _, body := e.get("/v1/logs/" + tlog.LogID(l.Origin()) + "/checkpoint")
	if cp, got := e.openServed(0, body); code != 200 || cp.Size != 4 || fmt.Sprint(got) != "[0]" {
		t.Errorf("after the reload: %d, size %d cosigned by %v, want 200, 4, [0]", code, cp.Size, got)
	}
	if n := rejectedNotes(t, e); n != 3 {
		t.Errorf("%v notes rejected after the reload, want 3 (both forgeries, 5 again)", n)
	}
}

// TestKCosignedFarBack: the newest checkpoint with k cosignatures is found
// however many newer ones lack them (the view reads a small first page, then
// larger ones).
func TestKCosignedFarBack(t *testing.T) {
	e := newEnv(t, envOptions{logs: 1, witnesses: 2})
	s := e.subscribe("")
	l := e.logs[0]
	l.AppendN(1, "a")
	e.cosign(0, 0, 1)
	for i := range 100 {
		l.AppendN(1, fmt.Sprint(i))
		e.cosign(0, 0)
	}
	e.waitServed(s, 0, 101, 1)
	id := tlog.LogID(l.Origin())
	for _, tc := range []struct {
		k    string
		size uint64
		by   string
	}{{"0", 101, "[0]"}, {"1", 101, "[0]"}, {"2", 1, "[0 1]"}} {
		code, _, body := e.get("/v1/logs/" + id + "/checkpoint?k=" + tc.k)
		if cp, got := e.openServed(0, body); code != 200 || cp.Size != tc.size || fmt.Sprint(got) != tc.by {
			t.Errorf("k=%s: %d, size %d cosigned by %v; want 200, %d, %s", tc.k, code, cp.Size, got, tc.size, tc.by)
		}
	}
}

// countingVerifier counts the verifications that reach it.
type countingVerifier struct {
	note.Verifier
	n *atomic.Int64
}

func (v countingVerifier) Verify(msg, sig []byte) bool {
	v.n.Add(1)
	return v.Verifier.Verify(msg, sig)
}

// TestWrapVerifiers: the feed checks notes with the verifiers WrapVerifiers
// returns (a node's shared cache of verified signatures), for the logs' and
// the witnesses' keys, and a forged cosignature still costs the note.
func TestWrapVerifiers(t *testing.T) {
	var calls atomic.Int64
	var wrapped []string
	var mu sync.Mutex
	e := newEnv(t, envOptions{logs: 1, witnesses: 2, wrap: func(_ *roster.Roster, vs ...note.Verifier) []note.Verifier {
		out := make([]note.Verifier, len(vs))
		mu.Lock()
		defer mu.Unlock()
		for i, v := range vs {
			wrapped = append(wrapped, v.Name())
			out[i] = countingVerifier{v, &calls}
		}
		return out
	}})
	s := e.subscribe("")
	l := e.logs[0]
	l.AppendN(3, "a")
	e.cosign(0, 0, 1)
	e.waitServed(s, 0, 3, 2)
	if calls.Load() < 3 {
		t.Errorf("%d verifications through the wrapped verifiers, want ≥ 3 (log + 2 witnesses)", calls.Load())
	}
	mu.Lock()
	if got := fmt.Sprint(wrapped); !strings.Contains(got, l.Origin()) || !strings.Contains(got, "witness0.example") || !strings.Contains(got, "witness1.example") {
		t.Errorf("wrapped %s", got)
	}
	mu.Unlock()

	l.AppendN(1, "b")
	good, _ := l.Checkpoint()
	v, _ := tlog.NewCosignatureVerifier(e.wits[1].vkey)
	e.src.addNote(t, append(bytes.Clone(good), forgedCosig(v.Name(), v.KeyHash())...))
	e.cosign(0, 0)
	e.waitServed(s, 0, 4, 1)
	if n := rejectedNotes(t, e); n != 1 {
		t.Errorf("%v notes rejected, want 1 (the forged cosignature)", n)
	}
}
