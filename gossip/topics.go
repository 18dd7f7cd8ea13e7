package gossip

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"unicode/utf8"

	pubsub_pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/vigilnet/vigil/gossip/evidence"
	vpb "github.com/vigilnet/vigil/proto"
)

// CheckpointsTopic is the topic sightings are published on.
func CheckpointsTopic(network string) string { return "/vigil/1/" + network + "/checkpoints" }

// EvidenceTopic is the topic evidence is published on.
func EvidenceTopic(network string) string { return "/vigil/1/" + network + "/evidence" }

// sightingMsgID identifies a sighting by its signed note alone (body and the
// set of signature lines, in any order), not by who relayed it or when: the
// same checkpoint with the same signatures is one message network-wide, so
// pubsub delivers and forwards it once. Signature bytes are included, so a
// copy with a forged signature line cannot shadow the genuine one.
//
// pubsub computes it in its event loop, one goroutine per node, for every
// copy of every message from every neighbour, so it reads the note out of
// the encoding in place (sightingNote) instead of decoding the message.
func sightingMsgID(m *pubsub_pb.Message) string {
	n, ok := sightingNote(m.Data)
	if !ok {
		s, err := vpb.UnmarshalSighting(m.Data)
		if err != nil {
			return rawMsgID(m.Data)
		}
		n = s.Checkpoint
	}
	return noteMsgID(n, m.Data)
}

// noteMsgID is sightingMsgID of a sighting whose encoding is data and whose
// note is n.
func noteMsgID(n, data []byte) string {
	body, sigs, ok := bytes.Cut(n, []byte("\n\n"))
	if !ok {
		return rawMsgID(data)
	}
	lines := bytes.Split(bytes.TrimSuffix(sigs, []byte("\n")), []byte("\n"))
	slices.SortFunc(lines, bytes.Compare)
	h := sha256.New()
	h.Write([]byte("sighting\n"))
	h.Write(body)
	h.Write([]byte("\n\n"))
	for _, l := range lines {
		h.Write(l)
		h.Write([]byte("\n"))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// sightingNote returns the checkpoint note of an encoded Sighting without
// decoding it, for the encodings Vigil's nodes produce: each field of the
// schema, with its own wire type, and nothing else. It reports false for
// anything else, and for what vpb.UnmarshalSighting would refuse, so that the
// caller decides those the slow way and the ID stays what decoding gives
// (FuzzSightingMsgID compares the two).
func sightingNote(b []byte) ([]byte, bool) {
	if len(b) > vpb.MaxSightingSize {
		return nil, false
	}
	var note, observer []byte
	var source int32
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, false
		}
		b = b[n:]
		switch {
		case (num == 1 || num == 2) && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return nil, false
			}
			// A field given twice: the last one counts, as in decoding.
			if num == 1 {
				note = v
			} else {
				observer = v
			}
			b = b[n:]
		case (num == 3 || num == 4) && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return nil, false
			}
			if num == 4 {
				source = int32(v)
			}
			b = b[n:]
		default:
			return nil, false
		}
	}
	// vpb.CheckSighting's bounds, and proto3's rule that a string is UTF-8.
	if len(note) == 0 || len(note) > vpb.MaxNoteSize || len(observer) > vpb.MaxObserverLen || !utf8.Valid(observer) ||
		source < int32(vpb.Source_SOURCE_UNSPECIFIED) || source > int32(vpb.Source_SOURCE_COSIGN) {
		return nil, false
	}
	return note, true
}

// evidenceMsgID is the evidence's stable ID (gossip/evidence.ID).
func evidenceMsgID(m *pubsub_pb.Message) string {
	e, err := vpb.UnmarshalEvidence(m.Data)
	if err != nil {
		return rawMsgID(m.Data)
	}
	return "evidence:" + evidence.ID(e)
}

func rawMsgID(b []byte) string {
	h := sha256.Sum256(b)
	return "raw:" + hex.EncodeToString(h[:])
}
