package notify

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Feed event types the core reads (feed/events.go and the names shared
// with the freshness and witness components).
const (
	EventCheckpoint = "checkpoint"
	EventEvidence   = "evidence"
	EventFreshness  = "freshness"
	EventWitness    = "witness"
)

// EventTypes are the feed event types a notifier subscribes to.
var EventTypes = []string{EventCheckpoint, EventEvidence, EventFreshness, EventWitness}

// Input is one feed event.
type Input struct {
	Type string
	Data []byte
}

// Notification is the JSON body of a webhook request.
type Notification struct {
	// ID identifies the notification: the same on every retry and for
	// every receiver, and, for evidence and quorum loss, the same if the
	// node decides it again after a restart.
	ID string `json:"id"`
	// Event is the kind (KindEvidence, ...).
	Event string `json:"event"`
	// Time is when the node decided to send it.
	Time time.Time `json:"time"`
	// Summary says what happened in one sentence.
	Summary string `json:"summary"`
	// Data is the feed event that caused it (for a witness notification,
	// the witness event that started the missing period or ended it).
	Data json.RawMessage `json:"data"`
}

// Core decides what to notify when. It is pure: time comes in as an
// argument, and it keeps only its decisions in memory. It is not safe for
// concurrent use.
type Core struct {
	debounce time.Duration
	// missing are roster witnesses seen missing and not yet notified:
	// since when, and the event that said so.
	missing map[string]pending
	// alerted are witnesses whose missing notification was sent, with
	// the missing period it was sent for.
	alerted map[string]pending
	// changed names the witnesses whose debounce state changed since the
	// last WitnessChanges.
	changed map[string]bool
	// contested is, per log, the hash of the contested state last
	// notified ("" when not contested).
	contested map[string]string
	// stale are the logs notified stale.
	stale map[string]bool
	// quorumLost is, per log, the size last notified.
	quorumLost map[string]uint64
	// changedLogs names the logs whose LogState changed since the last
	// LogChanges.
	changedLogs map[string]bool
}

// LogState is what the core remembers of one log, which the notifier keeps
// in its outbox so that a restart does not forget that a log was notified
// stale (its return to fresh is notified) or repeat a contested or
// quorum-lost notification for a state already notified.
type LogState struct {
	Stale          bool   `json:"stale,omitempty"`
	Contested      string `json:"contested,omitempty"`
	QuorumLost     bool   `json:"quorum_lost,omitempty"`
	QuorumLostSize uint64 `json:"quorum_lost_size,omitempty"`
}

func (c *Core) logState(origin string) LogState {
	size, lost := c.quorumLost[origin]
	return LogState{Stale: c.stale[origin], Contested: c.contested[origin], QuorumLost: lost, QuorumLostSize: size}
}

// noteLog marks origin changed if its state differs from before.
func (c *Core) noteLog(origin string, before LogState) {
	if c.logState(origin) != before {
		c.changedLogs[origin] = true
	}
}

// RestoreLog sets the state of a log, as LogChanges returned it before a
// restart.
func (c *Core) RestoreLog(origin string, st LogState) {
	delete(c.stale, origin)
	delete(c.contested, origin)
	delete(c.quorumLost, origin)
	if st.Stale {
		c.stale[origin] = true
	}
	if st.Contested != "" {
		c.contested[origin] = st.Contested
	}
	if st.QuorumLost {
		c.quorumLost[origin] = st.QuorumLostSize
	}
}

// LogChanges returns the state of each log whose state changed since the
// last call (a zero LogState for one with nothing to remember).
func (c *Core) LogChanges() map[string]LogState {
	if len(c.changedLogs) == 0 {
		return nil
	}
	out := make(map[string]LogState, len(c.changedLogs))
	for origin := range c.changedLogs {
		out[origin] = c.logState(origin)
	}
	clear(c.changedLogs)
	return out
}

type pending struct {
	since time.Time
	data  json.RawMessage
}

// NewCore returns a core that notifies a missing witness after debounce.
func NewCore(debounce time.Duration) *Core {
	return &Core{debounce: debounce, missing: map[string]pending{}, alerted: map[string]pending{}, changed: map[string]bool{},
		contested: map[string]string{}, stale: map[string]bool{}, quorumLost: map[string]uint64{}, changedLogs: map[string]bool{}}
}

// WitnessDebounce is the debounce state of one roster witness, which the
// notifier keeps in its outbox so that a restart neither restarts the
// debounce of a witness already missing nor forgets that its missing
// notification went out (the witness timeline publishes no new witness
// event after a restart for a state it already held).
type WitnessDebounce struct {
	// Since is when the witness went missing; zero when it is not
	// missing (the state to forget).
	Since time.Time `json:"since,omitzero"`
	// Alerted is set once the missing notification was decided.
	Alerted bool `json:"alerted,omitempty"`
	// Data is the witness event that started the missing period.
	Data json.RawMessage `json:"data,omitempty"`
}

// RestoreWitness sets the debounce state of a witness, as WitnessChanges
// returned it before a restart.
func (c *Core) RestoreWitness(name string, st WitnessDebounce) {
	delete(c.missing, name)
	delete(c.alerted, name)
	switch {
	case st.Since.IsZero():
	case st.Alerted:
		c.alerted[name] = pending{since: st.Since, data: st.Data}
	default:
		c.missing[name] = pending{since: st.Since, data: st.Data}
	}
}

// WitnessChanges returns the debounce state of each witness whose state
// changed since the last call (a zero WitnessDebounce for one no longer
// missing).
func (c *Core) WitnessChanges() map[string]WitnessDebounce {
	if len(c.changed) == 0 {
		return nil
	}
	out := make(map[string]WitnessDebounce, len(c.changed))
	for name := range c.changed {
		var st WitnessDebounce
		if p, ok := c.missing[name]; ok {
			st = WitnessDebounce{Since: p.since, Data: p.data}
		} else if p, ok := c.alerted[name]; ok {
			st = WitnessDebounce{Since: p.since, Alerted: true, Data: p.data}
		}
		out[name] = st
	}
	clear(c.changed)
	return out
}

type checkpointData struct {
	Origin    string `json:"origin"`
	LogID     string `json:"log_id"`
	Size      uint64 `json:"size"`
	QuorumMet *bool  `json:"quorum_met"`
	Contested *struct {
		Sizes      []uint64 `json:"sizes"`
		Evidence   []string `json:"evidence"`
		Suspicions []string `json:"suspicions"`
	} `json:"contested"`
}

type evidenceData struct {
	ID      string `json:"id"`
	Kind    string `json:"kind"`
	Origin  string `json:"origin"`
	Summary string `json:"summary"`
}

type freshnessData struct {
	Log      string `json:"log"`
	Origin   string `json:"origin"`
	State    string `json:"state"`
	Previous string `json:"previous"`
	Age      int64  `json:"age_seconds"`
}

type witnessData struct {
	Witness  string `json:"witness"`
	State    string `json:"state"`
	Previous string `json:"previous"`
}

// Observe takes one feed event seen at now and returns what to send.
// Malformed event data is ignored (the feed is trusted; a field it lacks
// decides nothing).
func (c *Core) Observe(now time.Time, in Input) []Notification {
	note := func(id, kind, summary string) []Notification {
		return []Notification{{ID: id, Event: kind, Time: now.UTC(), Summary: summary, Data: json.RawMessage(in.Data)}}
	}
	switch in.Type {
	case EventEvidence:
		var d evidenceData
		if json.Unmarshal(in.Data, &d) != nil || d.ID == "" {
			return nil
		}
		return note("evidence/"+d.ID, KindEvidence, fmt.Sprintf("new %s evidence against %s: %s", d.Kind, d.Origin, d.Summary))
	case EventCheckpoint:
		var d checkpointData
		if json.Unmarshal(in.Data, &d) != nil || d.Origin == "" {
			return nil
		}
		defer c.noteLog(d.Origin, c.logState(d.Origin))
		var out []Notification
		if d.Contested == nil {
			delete(c.contested, d.Origin)
		} else if h := hashJSON(d.Contested); c.contested[d.Origin] != h {
			c.contested[d.Origin] = h
			out = append(out, note("contested/"+short(d.Origin)+"/"+h, KindContested,
				fmt.Sprintf("log %s is contested at sizes %s", d.Origin, joinSizes(d.Contested.Sizes)))...)
		}
		// SPEC (shared event names): a checkpoint event with quorum_met
		// false is emitted only once the wait for a quorum exceeded the
		// log's expected interval.
		if d.QuorumMet != nil && !*d.QuorumMet {
			if last, ok := c.quorumLost[d.Origin]; !ok || last != d.Size {
				c.quorumLost[d.Origin] = d.Size
				out = append(out, note(fmt.Sprintf("quorum-lost/%s/%d", short(d.Origin), d.Size), KindQuorumLost,
					fmt.Sprintf("log %s has no quorum of cosignatures at size %d past its expected interval", d.Origin, d.Size))...)
			}
		} else if d.QuorumMet != nil {
			delete(c.quorumLost, d.Origin)
		}
		return out
	case EventFreshness:
		var d freshnessData
		if json.Unmarshal(in.Data, &d) != nil || d.Origin == "" {
			return nil
		}
		defer c.noteLog(d.Origin, c.logState(d.Origin))
		switch {
		// A stale event after another with no recovery between them
		// (previous is not stale) is a new stale period whose recovery
		// the notifier did not see: the feed's first evaluation after a
		// restart records a recovery during the downtime silently.
		case d.State == "stale" && (!c.stale[d.Origin] || d.Previous != "stale"):
			c.stale[d.Origin] = true
			return note(fmt.Sprintf("stale/%s/%d", short(d.Origin), now.UnixNano()), KindStale,
				fmt.Sprintf("log %s is stale: its newest checkpoint is %s old", d.Origin, time.Duration(d.Age)*time.Second))
		case d.State != "stale" && c.stale[d.Origin]:
			delete(c.stale, d.Origin)
			return note(fmt.Sprintf("fresh/%s/%d", short(d.Origin), now.UnixNano()), KindStale,
				fmt.Sprintf("log %s is no longer stale (%s)", d.Origin, d.State))
		}
		return nil
	case EventWitness:
		var d witnessData
		if json.Unmarshal(in.Data, &d) != nil || d.Witness == "" {
			return nil
		}
		_, pend := c.missing[d.Witness]
		_, alerted := c.alerted[d.Witness]
		if d.State == "missing" {
			if !pend && !alerted {
				c.missing[d.Witness] = pending{since: now, data: json.RawMessage(in.Data)}
				c.changed[d.Witness] = true
			}
			return nil
		}
		// Alive or late: the missing period ends.
		if pend {
			delete(c.missing, d.Witness)
			c.changed[d.Witness] = true
		}
		if alerted {
			delete(c.alerted, d.Witness)
			c.changed[d.Witness] = true
			return note(fmt.Sprintf("witness/%s/back/%d", d.Witness, now.UnixNano()), KindWitness,
				fmt.Sprintf("witness %s is cosigning again (%s)", d.Witness, d.State))
		}
	}
	return nil
}

// Tick returns the notifications due at now: witnesses missing without a
// break for the debounce period.
func (c *Core) Tick(now time.Time) []Notification {
	var names []string
	for name, p := range c.missing {
		if !now.Before(p.since.Add(c.debounce)) {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	var out []Notification
	for _, name := range names {
		p := c.missing[name]
		delete(c.missing, name)
		c.alerted[name] = p
		c.changed[name] = true
		out = append(out, Notification{ID: fmt.Sprintf("witness/%s/missing/%d", name, p.since.UnixNano()), Event: KindWitness, Time: now.UTC(),
			Summary: fmt.Sprintf("witness %s has been missing since %s", name, p.since.UTC().Format(time.RFC3339)), Data: p.data})
	}
	return out
}

// NextDeadline is when Tick next has something to return, if ever.
func (c *Core) NextDeadline() (time.Time, bool) {
	var next time.Time
	for _, p := range c.missing {
		if t := p.since.Add(c.debounce); next.IsZero() || t.Before(next) {
			next = t
		}
	}
	return next, !next.IsZero()
}

func hashJSON(v any) string {
	b, _ := json.Marshal(v)
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:8])
}

// short is a fixed-length, URL-safe stand-in for an origin in IDs.
func short(origin string) string {
	h := sha256.Sum256([]byte(origin))
	return hex.EncodeToString(h[:8])
}

func joinSizes(sizes []uint64) string {
	s := make([]string, len(sizes))
	for i, n := range sizes {
		s[i] = fmt.Sprint(n)
	}
	return strings.Join(s, ", ")
}
