package gossip

import (
	"bufio"
	"bytes"
	"context"
	"slices"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
)

// TestCollectedNote: collected signatures are merged one per key, the
// first kept, in arrival order, and written as a signed note that
// note.Open reads back.
func TestCollectedNote(t *testing.T) {
	text := []byte("example.com/log\n5\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n")
	sig := func(name string, hash uint32, b64 string) note.Signature {
		return note.Signature{Name: name, Hash: hash, Base64: b64}
	}
	c := &collected{body: text}
	c.add([]note.Signature{sig("log", 1, "bG9nc2ln"), sig("w1", 2, "Zmlyc3Q=")})
	c.add([]note.Signature{sig("log", 1, "bG9nc2ln"), sig("w1", 2, "c2Vjb25k"), sig("w2", 3, "dzI=")})
	c.add([]note.Signature{sig("w1", 9, "b3RoZXJrZXk=")}) // same name, another key
	want := "example.com/log\n5\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n" +
		"— log bG9nc2ln\n— w1 Zmlyc3Q=\n— w2 dzI=\n— w1 b3RoZXJrZXk=\n"
	if got := string(c.note()); got != want {
		t.Fatalf("note:\n%s\nwant:\n%s", got, want)
	}
	if got := noteText(c.note()); !bytes.Equal(got, text) {
		t.Errorf("noteText = %q, want %q", got, text)
	}
}

// TestLater: functions run in time order, ties in the order scheduled,
// none before its time; what waits when ctx ends is dropped; at refuses
// beyond maxLater.
func TestLater(t *testing.T) {
	l := newLater()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); l.run(ctx) }()
	ran := make(chan int, 8)
	start := time.Now()
	times := []time.Duration{30 * time.Millisecond, 10 * time.Millisecond, 10 * time.Millisecond, 0}
	var early []int
	for i, d := range times {
		if !l.at(start.Add(d), func() {
			if time.Since(start) < d {
				early = append(early, i)
			}
			ran <- i
		}) {
			t.Fatal("at refused with room left")
		}
	}
	var order []int
	for range times {
		order = append(order, <-ran)
	}
	if want := []int{3, 1, 2, 0}; !slices.Equal(order, want) {
		t.Errorf("ran in order %v, want %v", order, want)
	}
	if len(early) > 0 {
		t.Errorf("%v ran before their time", early)
	}
	l.at(time.Now().Add(time.Hour), func() { ran <- -1 })
	cancel()
	<-done
	if l.len() != 1 {
		t.Errorf("%d waiting after ctx ended, want the one not due", l.len())
	}
	select {
	case i := <-ran:
		t.Errorf("%d ran after ctx ended", i)
	default:
	}
	full := newLater()
	for range maxLater {
		full.at(time.Now(), func() {})
	}
	if full.at(time.Now(), func() {}) {
		t.Error("at accepted beyond maxLater")
	}
}

// FuzzReadFrame: the sync and cosign streams' frame reader never panics
// and never returns a frame longer than its input, and what it returns
// survives writeFrame and readFrame unchanged.
func FuzzReadFrame(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		typ, b, err := readFrame(bufio.NewReader(bytes.NewReader(data)))
		if err != nil {
			return
		}
		if len(b) > len(data) {
			t.Fatalf("frame of %d bytes from %d bytes of input", len(b), len(data))
		}
		var out bytes.Buffer
		w := bufio.NewWriter(&out)
		if err := writeFrame(w, typ, b); err != nil {
			t.Fatal(err)
		}
		w.Flush()
		typ2, b2, err := readFrame(bufio.NewReader(&out))
		if err != nil || typ2 != typ || !bytes.Equal(b2, b) {
			t.Fatalf("frame %d/%q written and read back as %d/%q, %v", typ, b, typ2, b2, err)
		}
	})
}
