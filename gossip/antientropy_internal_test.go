package gossip

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"
)

func digestFrame(origin string, d [32]byte) []byte {
	b := binary.AppendUvarint(nil, uint64(len(origin)))
	return append(append(b, origin...), d[:]...)
}

func TestParseDigestFrame(t *testing.T) {
	d := [32]byte{1, 2, 3}
	for _, tc := range []struct {
		name string
		typ  byte
		b    []byte
		ok   bool
	}{
		{"valid", frameDigest, digestFrame("example.com/log", d), true},
		{"wrong type", frameSighting, digestFrame("example.com/log", d), false},
		{"empty origin", frameDigest, digestFrame("", d), false},
		{"short digest", frameDigest, digestFrame("example.com/log", d)[:20], false},
		{"trailing bytes", frameDigest, append(digestFrame("example.com/log", d), 0), false},
		{"origin too long", frameDigest, digestFrame(string(bytes.Repeat([]byte("a"), maxOriginLen+1)), d), false},
		{"bad length", frameDigest, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			origin, got, ok := parseDigestFrame(tc.typ, tc.b)
			if ok != tc.ok {
				t.Fatalf("ok = %v, want %v", ok, tc.ok)
			}
			if ok && (origin != "example.com/log" || got != d) {
				t.Errorf("parsed %q %x", origin, got)
			}
		})
	}
}

// FuzzDigestFrame: a digest frame parses or is refused, never panics, and
// what parses re-encodes to the same bytes.
func FuzzDigestFrame(f *testing.F) {
	f.Add(digestFrame("example.com/log", [32]byte{9}))
	f.Add([]byte{})
	f.Add([]byte{0x80})
	f.Fuzz(func(t *testing.T, b []byte) {
		origin, d, ok := parseDigestFrame(frameDigest, b)
		if ok && !bytes.Equal(digestFrame(origin, d), b) {
			t.Errorf("%x parsed as %q %x, which encodes differently", b, origin, d)
		}
	})
}

// TestHotLog: a log whose stored checkpoints changed within the last half
// anti-entropy interval is left out of the exchange, and only that log.
func TestHotLog(t *testing.T) {
	for _, tc := range []struct {
		name     string
		interval time.Duration
		after    time.Duration
		hot      bool
	}{
		{"just changed", 10 * time.Second, 0, true},
		{"within half the interval", 10 * time.Second, 4900 * time.Millisecond, true},
		{"settled", 10 * time.Second, 5 * time.Second, false},
		{"exchange off", -1, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &Service{cfg: Config{AntiEntropyInterval: tc.interval}, changed: newLRU[string, time.Time](16)}
			s.logChanged("a")
			at, _ := s.changed.get("a")
			if got := s.hotLog("a", at.Add(tc.after)); got != tc.hot {
				t.Errorf("hotLog after %s = %v, want %v", tc.after, got, tc.hot)
			}
			if s.hotLog("b", at) {
				t.Error("a log that never changed is hot")
			}
		})
	}
}
