package proto_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	vpb "github.com/vigilnet/vigil/proto"
)

func TestSightingRoundTrip(t *testing.T) {
	s := &vpb.Sighting{Checkpoint: []byte("o\n1\nAAAA\n\n— o x\n"), Observer: "w1", SeenUnixMs: 1700000000000, Source: vpb.Source_SOURCE_PULL}
	b, err := vpb.MarshalSighting(s)
	if err != nil {
		t.Fatal(err)
	}
	got, err := vpb.UnmarshalSighting(b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Checkpoint, s.Checkpoint) || got.Observer != s.Observer || got.SeenUnixMs != s.SeenUnixMs || got.Source != s.Source {
		t.Fatalf("round trip: got %v, want %v", got, s)
	}
}

func TestSightingBounds(t *testing.T) {
	tests := []struct {
		name string
		s    *vpb.Sighting
	}{
		{"no checkpoint", &vpb.Sighting{Observer: "x"}},
		{"oversized checkpoint", &vpb.Sighting{Checkpoint: bytes.Repeat([]byte("a"), vpb.MaxNoteSize+1)}},
		{"long observer", &vpb.Sighting{Checkpoint: []byte("a"), Observer: strings.Repeat("o", vpb.MaxObserverLen+1)}},
		{"unknown source", &vpb.Sighting{Checkpoint: []byte("a"), Source: 99}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := vpb.MarshalSighting(tt.s); !errors.Is(err, vpb.ErrMalformed) {
				t.Fatalf("marshal: got %v, want ErrMalformed", err)
			}
		})
	}
	if _, err := vpb.UnmarshalSighting(make([]byte, vpb.MaxSightingSize+1)); !errors.Is(err, vpb.ErrMalformed) {
		t.Fatalf("oversized input: got %v", err)
	}
	if _, err := vpb.UnmarshalSighting([]byte{0xff, 0xff, 0xff}); !errors.Is(err, vpb.ErrMalformed) {
		t.Fatalf("garbage: got %v", err)
	}
}

func TestEvidenceBounds(t *testing.T) {
	h := make([]byte, 32)
	ok := func() *vpb.Evidence {
		return &vpb.Evidence{Kind: vpb.Kind_KIND_LOG_EQUIVOCATION_DIFFERENT_SIZES, CheckpointA: []byte("a"), CheckpointB: []byte("b"), ConsistencyProof: [][]byte{h}}
	}
	if _, err := vpb.MarshalEvidence(ok()); err != nil {
		t.Fatalf("valid evidence: %v", err)
	}
	tests := []struct {
		name   string
		mutate func(e *vpb.Evidence)
	}{
		{"no kind", func(e *vpb.Evidence) { e.Kind = 0 }},
		{"unknown kind", func(e *vpb.Evidence) { e.Kind = 7 }},
		{"missing b", func(e *vpb.Evidence) { e.CheckpointB = nil }},
		{"short hash", func(e *vpb.Evidence) { e.ConsistencyProof = [][]byte{{1}} }},
		{"long proof", func(e *vpb.Evidence) {
			e.ConsistencyProof = make([][]byte, vpb.MaxProofHashes+1)
			for i := range e.ConsistencyProof {
				e.ConsistencyProof[i] = h
			}
		}},
		{"different sizes without proof", func(e *vpb.Evidence) { e.ConsistencyProof = nil }},
		{"same size with proof", func(e *vpb.Evidence) { e.Kind = vpb.Kind_KIND_LOG_EQUIVOCATION_SAME_SIZE }},
		{"witness key on log evidence", func(e *vpb.Evidence) { e.WitnessKey = "w+00000000+AA==" }},
		{"witness evidence without key", func(e *vpb.Evidence) { e.Kind = vpb.Kind_KIND_WITNESS_EQUIVOCATION }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := ok()
			tt.mutate(e)
			if _, err := vpb.MarshalEvidence(e); !errors.Is(err, vpb.ErrMalformed) {
				t.Fatalf("got %v, want ErrMalformed", err)
			}
		})
	}
}

func TestKindNames(t *testing.T) {
	for _, k := range []vpb.Kind{vpb.Kind_KIND_LOG_EQUIVOCATION_SAME_SIZE, vpb.Kind_KIND_LOG_EQUIVOCATION_DIFFERENT_SIZES, vpb.Kind_KIND_WITNESS_EQUIVOCATION} {
		got, ok := vpb.ParseKindName(vpb.KindName(k))
		if !ok || got != k {
			t.Errorf("kind %v does not round-trip through %q", k, vpb.KindName(k))
		}
	}
	if _, ok := vpb.ParseKindName("unknown"); ok {
		t.Error("parsed \"unknown\"")
	}
}

func FuzzUnmarshalSighting(f *testing.F) {
	b, _ := vpb.MarshalSighting(&vpb.Sighting{Checkpoint: []byte("o\n1\nAAAA\n"), Observer: "w", Source: vpb.Source_SOURCE_GOSSIP})
	f.Add(b)
	f.Fuzz(func(t *testing.T, in []byte) {
		s, err := vpb.UnmarshalSighting(in)
		if err != nil {
			return
		}
		out, err := vpb.MarshalSighting(s)
		if err != nil {
			t.Fatalf("decoded sighting does not re-encode: %v", err)
		}
		if _, err := vpb.UnmarshalSighting(out); err != nil {
			t.Fatalf("re-encoded sighting does not decode: %v", err)
		}
	})
}

func FuzzUnmarshalEvidence(f *testing.F) {
	b, _ := vpb.MarshalEvidence(&vpb.Evidence{Kind: vpb.Kind_KIND_WITNESS_EQUIVOCATION, CheckpointA: []byte("a"), CheckpointB: []byte("b"), WitnessKey: "w"})
	f.Add(b)
	f.Fuzz(func(t *testing.T, in []byte) {
		e, err := vpb.UnmarshalEvidence(in)
		if err != nil {
			return
		}
		out, err := vpb.MarshalEvidence(e)
		if err != nil {
			t.Fatalf("decoded evidence does not re-encode: %v", err)
		}
		if _, err := vpb.UnmarshalEvidence(out); err != nil {
			t.Fatalf("re-encoded evidence does not decode: %v", err)
		}
	})
}
