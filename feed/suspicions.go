package feed

import (
	"bytes"
	"cmp"
	"context"
	"encoding/base64"
	"encoding/hex"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vigilnet/vigil/tlog"
)

// Kinds of suspicion.
const (
	// SuspicionDivergence is an unproven divergence: two validly signed
	// checkpoints of one log, of different sizes, that nobody has yet
	// shown to be consistent (a push-only log, unreachable tiles).
	SuspicionDivergence = "divergence"
	// SuspicionUnverifiable is a checkpoint the log did not let the node
	// check (no consistency proof, tiles that do not reproduce the root).
	SuspicionUnverifiable = "unverifiable"
)

// How a suspicion ended (Suspicion.Resolved).
const (
	// ResolvedConsistent: a proof showed the checkpoints consistent.
	ResolvedConsistent = "consistent"
	// ResolvedEvidence: a proof showed a split view; evidence holds it.
	ResolvedEvidence = "evidence"
)

// Log states (LogInfo.State), from the most to the least serious.
const (
	// StateEvidence: the node holds evidence of a split view against the log.
	StateEvidence = "evidence"
	// StateDivergent: an unproven divergence of the log is open.
	StateDivergent = "divergent"
	// StateSuspect: a checkpoint of the log could not be checked.
	StateSuspect = "suspect"
	// StateOK: none of the above.
	StateOK = "ok"
)

// MaxLogSuspicions bounds the open suspicions listed in one log's row of
// GET /v1/logs (the newest seen first); the row's count covers them all.
const MaxLogSuspicions = 20

// Suspicion is a check of a log that the node could not make: either a
// checkpoint it could not check (Kind unverifiable) or an unproven
// divergence between two checkpoints (Kind divergence, Other set). It is
// never evidence; it stays open until a proof settles it (Resolved).
type Suspicion struct {
	// ID is "<log_id>-<size>-<hex root>", filled in by the feed.
	ID string `json:"id"`
	// Kind is divergence or unverifiable, filled in by the feed.
	Kind   string `json:"kind"`
	Origin string `json:"origin"`
	// LogID is filled in by the feed.
	LogID string `json:"log_id"`
	// Size and Root are the checkpoint suspected: for a divergence, the
	// larger of the two.
	Size uint64 `json:"size"`
	// Root is the standard base64 root hash, as in the checkpoint.
	Root string `json:"root"`
	// Cosigners are the roster witnesses known to have cosigned (Size, Root).
	Cosigners []string `json:"cosigners"`
	// Other is the smaller checkpoint of a divergence.
	Other *SuspicionSide `json:"other,omitempty"`
	// Reason is the latest reason the node gave.
	Reason    string    `json:"reason"`
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
	// Count is how many times the node recorded it.
	Count uint64 `json:"count"`
	// Open is true until Resolved is set (filled in by the feed).
	Open bool `json:"open"`
	// Resolved is how it ended (consistent or evidence), empty while open.
	Resolved   string     `json:"resolved,omitempty"`
	ResolvedAt *time.Time `json:"resolved_at,omitempty"`
}

// SuspicionSide is the other checkpoint of a divergence.
type SuspicionSide struct {
	Size      uint64   `json:"size"`
	Root      string   `json:"root"`
	Cosigners []string `json:"cosigners"`
}

// SuspicionEvent is the data of a suspicion event.
type SuspicionEvent = Suspicion

// normalize fills in the fields the feed derives.
func (s *Suspicion) normalize() {
	s.LogID = tlog.LogID(s.Origin)
	s.ID = suspicionID(s.LogID, s.Size, s.Root)
	s.Kind = SuspicionUnverifiable
	if s.Other != nil {
		s.Kind = SuspicionDivergence
		if s.Other.Cosigners == nil {
			s.Other.Cosigners = []string{}
		}
	}
	s.Open = s.Resolved == ""
	s.FirstSeen, s.LastSeen = s.FirstSeen.UTC(), s.LastSeen.UTC()
	if s.ResolvedAt != nil {
		t := s.ResolvedAt.UTC()
		s.ResolvedAt = &t
	}
	if s.Cosigners == nil {
		s.Cosigners = []string{}
	}
}

func suspicionID(logID string, size uint64, root string) string {
	r := root
	if b, err := base64.StdEncoding.DecodeString(root); err == nil {
		r = hex.EncodeToString(b)
	}
	return logID + "-" + strconv.FormatUint(size, 10) + "-" + r
}

// suspicionKey orders suspicions by log ID, then size, then root.
type suspicionKey struct {
	logID string
	size  uint64
	root  string
}

func keyOf(s Suspicion) suspicionKey {
	_, r, _ := strings.Cut(strings.TrimPrefix(s.ID, s.LogID+"-"), "-")
	return suspicionKey{s.LogID, s.Size, r}
}

func (a suspicionKey) compare(b suspicionKey) int {
	return cmp.Or(strings.Compare(a.logID, b.logID), cmp.Compare(a.size, b.size), strings.Compare(a.root, b.root))
}

// parseSuspicionID parses an ID made by suspicionID.
func parseSuspicionID(id string) (suspicionKey, bool) {
	parts := strings.Split(id, "-")
	if len(parts) != 3 || !isHex(parts[0], 64) || !isHex(parts[2], 64) {
		return suspicionKey{}, false
	}
	n, err := strconv.ParseUint(parts[1], 10, 64)
	if err != nil || strconv.FormatUint(n, 10) != parts[1] {
		return suspicionKey{}, false
	}
	return suspicionKey{parts[0], n, parts[2]}, true
}

func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for _, c := range []byte(s) {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// SuspicionUpdated tells the feed that the source recorded or resolved a
// suspicion. It never blocks; Run publishes the events.
func (f *Feed) SuspicionUpdated() { f.markDirty(dirtySuspicions) }

// readSuspicions returns every suspicion the source holds, normalized and
// in key order.
func (f *Feed) readSuspicions(ctx context.Context) ([]Suspicion, error) {
	list, err := f.src.Suspicions(ctx)
	if err != nil {
		return nil, err
	}
	for i := range list {
		list[i].normalize()
	}
	slices.SortFunc(list, func(a, b Suspicion) int { return keyOf(a).compare(keyOf(b)) })
	return list, nil
}

// suspicionList is readSuspicions falling back to the last list read if
// the source fails.
func (f *Feed) suspicionList(ctx context.Context) []Suspicion {
	list, err := f.readSuspicions(ctx)
	f.stateMu.Lock()
	defer f.stateMu.Unlock()
	if err != nil {
		f.log.Warn("feed: listing suspicions", "err", err)
		return f.suspicionsRead
	}
	f.suspicionsRead = list
	return list
}

// refreshSuspicions re-reads the suspicions and, if publish is set,
// publishes a suspicion event for each one that opened, changed or
// resolved since the last read, in key order.
func (f *Feed) refreshSuspicions(ctx context.Context, publish bool) {
	list, err := f.readSuspicions(ctx)
	if err != nil {
		f.log.Warn("feed: listing suspicions", "err", err)
		return
	}
	f.stateMu.Lock()
	prev := make(map[string][]byte, len(f.suspicions))
	for _, s := range f.suspicions {
		prev[s.ID] = mustJSON(s)
	}
	f.suspicions, f.suspicionsRead = list, list
	f.stateMu.Unlock()
	if !publish {
		return
	}
	for _, s := range list {
		if old, ok := prev[s.ID]; ok && bytes.Equal(old, mustJSON(s)) {
			continue
		}
		f.hub.publish(EventSuspicion, s)
		f.metrics.events.WithLabelValues(EventSuspicion).Inc()
	}
}

// Divergences returns the open unproven divergences among l.Suspicions.
func (l LogInfo) Divergences() []Suspicion {
	var out []Suspicion
	for _, s := range l.Suspicions {
		if s.Other != nil && s.Open {
			out = append(out, s)
		}
	}
	return out
}

// openByOrigin groups the open suspicions by origin, newest seen first.
func openByOrigin(list []Suspicion) map[string][]Suspicion {
	out := map[string][]Suspicion{}
	for _, s := range list {
		if s.Open {
			out[s.Origin] = append(out[s.Origin], s)
		}
	}
	for _, ss := range out {
		slices.SortStableFunc(ss, func(a, b Suspicion) int { return b.LastSeen.Compare(a.LastSeen) })
	}
	return out
}

// logState is a log's State given its evidence count and open suspicions.
func logState(evidence int, open []Suspicion) string {
	switch {
	case evidence > 0:
		return StateEvidence
	case slices.ContainsFunc(open, func(s Suspicion) bool { return s.Other != nil }):
		return StateDivergent
	case len(open) > 0:
		return StateSuspect
	}
	return StateOK
}
