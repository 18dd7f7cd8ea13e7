package gossip

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"sort"

	pubsub_pb "github.com/libp2p/go-libp2p-pubsub/pb"

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
func sightingMsgID(m *pubsub_pb.Message) string {
	s, err := vpb.UnmarshalSighting(m.Data)
	if err != nil {
		return rawMsgID(m.Data)
	}
	body, sigs, ok := bytes.Cut(s.Checkpoint, []byte("\n\n"))
	if !ok {
		return rawMsgID(m.Data)
	}
	lines := bytes.Split(bytes.TrimSuffix(sigs, []byte("\n")), []byte("\n"))
	sort.Slice(lines, func(i, j int) bool { return bytes.Compare(lines[i], lines[j]) < 0 })
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
