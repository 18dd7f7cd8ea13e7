package gossip

import (
	"bytes"
	"fmt"
	"slices"
	"testing"

	pubsub_pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"google.golang.org/protobuf/encoding/protowire"

	vpb "github.com/vigilnet/vigil/proto"
)

// decodedSightingMsgID is sightingMsgID as it was before sightingNote: it
// decodes the whole message, then hashes the note alike. The two must agree
// on every input, or nodes of either kind would see one sighting as two
// messages (or two as one).
func decodedSightingMsgID(m *pubsub_pb.Message) string {
	s, err := vpb.UnmarshalSighting(m.Data)
	if err != nil {
		return rawMsgID(m.Data)
	}
	return noteMsgID(s.Checkpoint, m.Data)
}

// sigLinesNote is a signed note with n signature lines (not valid signatures:
// the message ID does not verify them).
func sigLinesNote(n int) []byte {
	var b bytes.Buffer
	b.WriteString("example.com/log\n42\nqINS1GRFhWHwdkUeqLEoP4yEMkTBBzxBkGwGQlVlVcs=\n\n")
	for i := range n {
		fmt.Fprintf(&b, "— witness-%02d AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==\n", n-i)
	}
	return b.Bytes()
}

func sightingBytes(t testing.TB, note []byte) []byte {
	t.Helper()
	b, err := vpb.MarshalSighting(&vpb.Sighting{Checkpoint: note, Observer: "witness-1", SeenUnixMs: 1_700_000_000_000, Source: vpb.Source_SOURCE_COSIGN})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sightingMsgIDCases are encodings on both sides of sightingNote's fast
// path; they are also FuzzSightingMsgID's seeds.
func sightingMsgIDCases(t testing.TB) map[string][]byte {
	note := sigLinesNote(3)
	enc := sightingBytes(t, note)
	field := func(b []byte, num protowire.Number, typ protowire.Type, v []byte) []byte {
		b = protowire.AppendTag(b, num, typ)
		if typ == protowire.BytesType {
			return protowire.AppendBytes(b, v)
		}
		return protowire.AppendVarint(b, uint64(len(v)))
	}
	return map[string][]byte{
		"ours":                 enc,
		"note only":            field(nil, 1, protowire.BytesType, note),
		"note twice, last one": field(field(nil, 1, protowire.BytesType, []byte("other\n\n— x y\n")), 1, protowire.BytesType, note),
		"unknown field":        field(enc, 9, protowire.BytesType, []byte("extra")),
		"note as varint":       field(nil, 1, protowire.VarintType, note),
		"observer not UTF-8":   field(field(nil, 1, protowire.BytesType, note), 2, protowire.BytesType, []byte{0xff, 0xfe}),
		"unknown source":       protowire.AppendVarint(protowire.AppendTag(field(nil, 1, protowire.BytesType, note), 4, protowire.VarintType), 9),
		"negative source":      protowire.AppendVarint(protowire.AppendTag(field(nil, 1, protowire.BytesType, note), 4, protowire.VarintType), ^uint64(0)),
		// An enum is the low 32 bits of its varint.
		"source 2^63 is 0": protowire.AppendVarint(protowire.AppendTag(field(nil, 1, protowire.BytesType, note), 4, protowire.VarintType), 1<<63),
		"empty note":       field(nil, 1, protowire.BytesType, nil),
		"no blank line":    field(nil, 1, protowire.BytesType, []byte("example.com/log\n42\n")),
		"truncated":        enc[:len(enc)-5],
		"empty":            {},
		"note too large":   field(nil, 1, protowire.BytesType, bytes.Repeat([]byte("a"), vpb.MaxNoteSize+1)),
	}
}

func TestSightingMsgIDMatchesDecoding(t *testing.T) {
	// The encodings read in place; every other one is left to decoding.
	inPlace := map[string]bool{"ours": true, "note only": true, "note twice, last one": true, "no blank line": true, "source 2^63 is 0": true}
	for name, data := range sightingMsgIDCases(t) {
		t.Run(name, func(t *testing.T) {
			m := &pubsub_pb.Message{Data: data}
			if got, want := sightingMsgID(m), decodedSightingMsgID(m); got != want {
				t.Errorf("sightingMsgID = %s, decoding gives %s", got, want)
			}
			if _, ok := sightingNote(data); ok != inPlace[name] {
				t.Errorf("read in place: %v, want %v", ok, inPlace[name])
			}
		})
	}
	// The same note with its signatures in another order is one message;
	// one more signature makes another.
	a := sightingMsgID(&pubsub_pb.Message{Data: sightingBytes(t, sigLinesNote(3))})
	rev := sigLinesNote(3)
	body, sigs, _ := bytes.Cut(rev, []byte("\n\n"))
	lines := bytes.Split(bytes.TrimSuffix(sigs, []byte("\n")), []byte("\n"))
	slices.Reverse(lines)
	rev = append(append(append([]byte{}, body...), "\n\n"...), append(bytes.Join(lines, []byte("\n")), '\n')...)
	if b := sightingMsgID(&pubsub_pb.Message{Data: sightingBytes(t, rev)}); a != b {
		t.Errorf("reordered signatures: %s, want %s", b, a)
	}
	if c := sightingMsgID(&pubsub_pb.Message{Data: sightingBytes(t, sigLinesNote(4))}); c == a {
		t.Error("a note with one more signature has the same ID")
	}
}

func FuzzSightingMsgID(f *testing.F) {
	for _, data := range sightingMsgIDCases(f) {
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m := &pubsub_pb.Message{Data: data}
		if got, want := sightingMsgID(m), decodedSightingMsgID(m); got != want {
			t.Fatalf("sightingMsgID = %s, decoding gives %s", got, want)
		}
	})
}

// BenchmarkSightingMsgID is the event loop's cost per received copy of a
// sighting with 20 cosignatures: in place (the ID pubsub uses) against
// decoding first, both hashing alike.
func BenchmarkSightingMsgID(b *testing.B) {
	m := &pubsub_pb.Message{Data: sightingBytes(b, sigLinesNote(21))}
	for _, c := range []struct {
		name string
		id   func(*pubsub_pb.Message) string
	}{{"in-place", sightingMsgID}, {"decoded", decodedSightingMsgID}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				c.id(m)
			}
		})
	}
}
