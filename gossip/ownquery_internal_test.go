package gossip

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"testing"
)

// FuzzOwnFrames reads own-history frames (the query and its answers) from
// arbitrary bytes: no frame exceeds its bound or the input, and every frame
// read is written back identically.
func FuzzOwnFrames(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bufio.NewReader(bytes.NewReader(data))
		for i := 0; i < 100; i++ {
			typ, b, err := readBoundedFrame(r, maxOwnQuery)
			if errors.Is(err, io.EOF) {
				return
			}
			if err != nil {
				return
			}
			if len(b) > maxOwnQuery || len(b) > len(data) {
				t.Fatalf("frame of %d bytes from %d bytes of input", len(b), len(data))
			}
			var out bytes.Buffer
			w := bufio.NewWriter(&out)
			if err := writeFrame(w, typ, b); err != nil {
				t.Fatal(err)
			}
			w.Flush()
			typ2, b2, err := readBoundedFrame(bufio.NewReader(&out), maxOwnQuery)
			if err != nil || typ2 != typ || !bytes.Equal(b2, b) {
				t.Fatalf("frame %d/%q read back as %d/%q, %v", typ, b, typ2, b2, err)
			}
		}
	})
}

// TestReadBoundedFrameEOF: only an end of input between frames is a clean
// end; one inside a frame is an error.
func TestReadBoundedFrameEOF(t *testing.T) {
	for _, tt := range []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, io.EOF},
		{"type only", []byte{2}, io.ErrUnexpectedEOF},
		{"short payload", []byte{2, 5, 'a'}, io.ErrUnexpectedEOF},
		{"no payload", []byte{2, 3}, io.ErrUnexpectedEOF},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := readBoundedFrame(bufio.NewReader(bytes.NewReader(tt.in)), maxOwnQuery)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err %v, want %v", err, tt.want)
			}
		})
	}
	if _, _, err := readBoundedFrame(bufio.NewReader(bytes.NewReader([]byte{1, 0x80, 0x08})), maxOwnQuery); err == nil {
		t.Fatal("a 1024-byte frame passed a 512-byte bound")
	}
}
