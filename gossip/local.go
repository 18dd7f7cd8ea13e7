package gossip

import (
	"sync"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"golang.org/x/mod/sumdb/note"

	vpb "github.com/vigilnet/vigil/proto"
	"github.com/vigilnet/vigil/roster"
	"github.com/vigilnet/vigil/tlog"
)

// Local publications. libp2p runs topic validators on the node's own
// publishes too; PublishSighting has already checked (or, for the node's own
// cosignatures, made) everything the validator would check, so it hands its
// result to the validator instead of having the message verified again.
//
// The hand-over is keyed by the exact message bytes and consulted only for
// messages whose source is this node (from == self); anything else, or a
// local message with no hand-over, is validated in full.
type localSightings struct {
	mu sync.Mutex
	m  map[string]*sighting
}

func newLocalSightings() *localSightings { return &localSightings{m: map[string]*sighting{}} }

func (l *localSightings) put(data []byte, s *sighting) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.m[string(data)] = s
}

func (l *localSightings) take(data []byte) (*sighting, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s, ok := l.m[string(data)]
	delete(l.m, string(data))
	return s, ok
}

// checkLocal is checkSighting for a message this node is about to publish.
// A SOURCE_COSIGN note is this node's witness's output (witness.Cosigned):
// the witness verified the log's signature before cosigning, and the
// cosignature is its own, so the signatures are not verified again; the
// note is still parsed and checked strictly (origin in the roster, a log
// signature line, a well-formed body). Any other note is verified in full.
func (v *validator) checkLocal(data []byte, msg *vpb.Sighting) (*sighting, pubsub.ValidationResult, string) {
	return v.checkLocalWith(data, msg, true)
}

// checkLocalWith is checkLocal; remember as for checkSightingWith.
func (v *validator) checkLocalWith(data []byte, msg *vpb.Sighting, remember bool) (*sighting, pubsub.ValidationResult, string) {
	if msg.Source != vpb.Source_SOURCE_COSIGN {
		return v.openSighting(data, v.s.self, remember)
	}
	return v.checkSightingWith(msg, v.s.self, remember, func(r *roster.Roster, lg *roster.Log, origin string) (tlog.Checkpoint, *note.Note, error) {
		return tlog.VerifyCheckpoint(msg.Checkpoint, origin, tlog.Trusted(lg.Verifier), tlog.Trusted(r.WitnessVerifiers()...)...)
	})
}
