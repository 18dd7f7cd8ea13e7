package feed

import (
	"container/list"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Event types on GET /v1/events.
const (
	EventCheckpoint = "checkpoint" // a log's newest checkpoint or its cosigners changed
	EventEvidence   = "evidence"   // new evidence
	EventPeers      = "peers"      // the peer list changed
	EventSuspicion  = "suspicion"  // a suspicion opened, changed or resolved
	EventFreshness  = "freshness"  // a log's freshness state changed
	// EventReset tells a resuming client that events were lost (it reconnected
	// too late, or the node restarted): reload the state from the API.
	EventReset = "reset"
)

// event is one server-sent event. IDs are "<epoch>-<seq>": seq grows by one
// per event and epoch changes when the node restarts, so a client resuming
// across a restart is told to reload rather than silently missing events.
type event struct {
	seq  uint64
	typ  string
	data []byte // one line of JSON
}

// hub keeps the last events in a ring buffer and wakes subscribers. A
// subscriber holds no queue of its own: it reads from the ring by sequence
// number, so a thousand idle subscribers cost one goroutine and one
// connection each, and a slow one cannot hold up the others.
type hub struct {
	epoch      string
	max        int
	maxPerAddr int

	mu     sync.Mutex
	ring   []event // ring[i%len] holds seq i+1 ... (oldest first when full)
	seq    uint64  // last assigned
	wake   chan struct{}
	closed bool

	subMu   sync.Mutex
	subs    list.List // of *subscriber, oldest first
	perAddr map[string]int

	subscribers atomic.Int64
	published   atomic.Uint64
	// ended counts streams the feed ended, by reason.
	ended *prometheus.CounterVec
}

// Reasons a stream is ended by the feed (label of
// vigil_feed_sse_streams_ended_total).
const (
	endedTotal    = "cap_total"    // displaced by a newer stream at MaxSubscribers
	endedPerAddr  = "cap_per_addr" // displaced by a newer stream from its address
	endedLifetime = "lifetime"     // reached StreamLifetime
)

// Retry intervals sent before the feed ends a stream: a stream that reached
// its lifetime reconnects as soon as a fresh one would; one displaced by the
// caps waits longer, since the node is busy with streams.
const (
	retryMillis        = 2000
	retryDisplacedMsec = 30000
)

func newHub(size, maxSubscribers, maxPerAddr int, now func() time.Time) *hub {
	return &hub{
		epoch:      strconv.FormatInt(now().UnixNano(), 36),
		max:        maxSubscribers,
		maxPerAddr: maxPerAddr,
		ring:       make([]event, 0, size),
		wake:       make(chan struct{}),
		perAddr:    map[string]int{},
		ended: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_feed_sse_streams_ended_total",
			Help: "Event streams the node ended, by reason: cap_total and cap_per_addr (the oldest stream displaced by a newer one), lifetime (the stream reached its maximum lifetime).",
		}, []string{"reason"}),
	}
}

// subscriber is one open event stream.
type subscriber struct {
	addr string
	elem *list.Element // nil once removed
	// displaced is closed when a newer stream took this one's place.
	displaced chan struct{}
}

// subscribe registers a stream from addr, first ending the oldest streams
// the caps require (that address's, then anyone's): a new stream is worth
// more than one held open longest, which may be a forgotten tab or a
// connection hoarder.
func (h *hub) subscribe(addr string) *subscriber {
	h.subMu.Lock()
	defer h.subMu.Unlock()
	for e := h.subs.Front(); e != nil && h.perAddr[addr] >= h.maxPerAddr; {
		next := e.Next()
		if s := e.Value.(*subscriber); s.addr == addr {
			h.displaceLocked(s, endedPerAddr)
		}
		e = next
	}
	for h.subs.Len() >= h.max {
		h.displaceLocked(h.subs.Front().Value.(*subscriber), endedTotal)
	}
	s := &subscriber{addr: addr, displaced: make(chan struct{})}
	s.elem = h.subs.PushBack(s)
	h.perAddr[addr]++
	h.subscribers.Add(1)
	return s
}

func (h *hub) unsubscribe(s *subscriber) {
	h.subMu.Lock()
	defer h.subMu.Unlock()
	h.removeLocked(s)
}

func (h *hub) displaceLocked(s *subscriber, reason string) {
	h.removeLocked(s)
	close(s.displaced)
	h.ended.WithLabelValues(reason).Inc()
}

func (h *hub) removeLocked(s *subscriber) {
	if s.elem == nil {
		return
	}
	h.subs.Remove(s.elem)
	s.elem = nil
	if h.perAddr[s.addr]--; h.perAddr[s.addr] <= 0 {
		delete(h.perAddr, s.addr)
	}
	h.subscribers.Add(-1)
}

// publish appends an event and wakes every subscriber.
func (h *hub) publish(typ string, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		return // only our own types are published; they always encode
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	h.seq++
	e := event{seq: h.seq, typ: typ, data: data}
	if len(h.ring) < cap(h.ring) {
		h.ring = append(h.ring, e)
	} else {
		h.ring[int((h.seq-1)%uint64(cap(h.ring)))] = e
	}
	close(h.wake)
	h.wake = make(chan struct{})
	h.published.Add(1)
}

// since returns the events after seq (oldest first), a channel closed at the
// next publish, and whether events after seq were already dropped from the
// ring; then base is the sequence the returned events follow. The hub is
// closed when ok is false.
func (h *hub) since(seq uint64) (evs []event, base uint64, wake <-chan struct{}, lost, ok bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, 0, nil, false, false
	}
	if seq > h.seq {
		// A sequence this epoch never reached: the client is confused;
		// restart it from now.
		return nil, h.seq, h.wake, true, true
	}
	n := len(h.ring)
	oldest := h.seq - uint64(n) + 1 // seq of the oldest event held
	if seq+1 < oldest {
		lost = true
		seq = oldest - 1
	}
	for s := seq + 1; s <= h.seq; s++ {
		evs = append(evs, h.ring[int((s-1)%uint64(cap(h.ring)))])
	}
	return evs, seq, h.wake, lost, true
}

// last returns the ID of the newest event.
func (h *hub) last() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.id(h.seq)
}

func (h *hub) id(seq uint64) string { return h.epoch + "-" + strconv.FormatUint(seq, 10) }

// parseID returns the sequence number of an event ID from this epoch.
func (h *hub) parseID(id string) (seq uint64, sameEpoch bool) {
	epoch, s, ok := strings.Cut(id, "-")
	if !ok || epoch != h.epoch {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, false
	}
	return n, true
}

func (h *hub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.closed {
		h.closed = true
		close(h.wake)
	}
}

// eventTypes parses the types query parameter: a comma-separated subset of
// checkpoint, evidence, peers and suspicion (resets are always sent). Empty
// means all.
func eventTypes(q string) (map[string]bool, error) {
	if q == "" {
		return nil, nil
	}
	want := map[string]bool{}
	for _, t := range strings.Split(q, ",") {
		switch t {
		case EventCheckpoint, EventEvidence, EventPeers, EventSuspicion, EventFreshness, EventWitness:
			want[t] = true
		default:
			return nil, fmt.Errorf("bad types: %q is not one of %s, %s, %s, %s, %s, %s", t, EventCheckpoint, EventEvidence, EventPeers, EventSuspicion, EventFreshness, EventWitness)
		}
	}
	return want, nil
}

// serveEvents streams events as text/event-stream. A client resumes with the
// Last-Event-ID header (sent by EventSource on reconnect) or the
// last_event_id query parameter; without either it gets only new events.
// A stream ends after StreamLifetime, or when the subscriber caps make a
// newer stream displace it; either way the feed first sends a retry line,
// after which EventSource reconnects and resumes from its last event ID.
func (f *Feed) serveEvents(w http.ResponseWriter, r *http.Request) {
	h := f.hub
	types, err := eventTypes(r.URL.Query().Get("types"))
	if err != nil {
		f.fail(w, r, http.StatusBadRequest, err)
		return
	}
	addr := r.RemoteAddr
	if host, _, err := net.SplitHostPort(addr); err == nil {
		addr = host
	}
	sub := h.subscribe(addr)
	defer h.unsubscribe(sub)

	// EventSource sends Last-Event-ID when it reconnects; the query
	// parameter lets a page start where its server-rendered snapshot ends.
	lastID := r.Header.Get("Last-Event-ID")
	if lastID == "" {
		lastID = r.URL.Query().Get("last_event_id")
	}
	rc := http.NewResponseController(w)
	// The stream outlives the server's read timeout; only writes are bounded.
	_ = rc.SetReadDeadline(time.Time{})

	hdr := w.Header()
	hdr.Set("Content-Type", "text/event-stream")
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)

	var seq uint64
	resetReason := ""
	if lastID != "" {
		s, same := h.parseID(lastID)
		if same {
			seq = s
		} else {
			resetReason = "unknown event ID (the node restarted?)"
		}
	}
	if lastID == "" || resetReason != "" {
		// Start from now: what the client has not seen is in the API.
		seq, _ = h.parseID(h.last())
	}
	// Tell EventSource to wait a little before reconnecting.
	buf := fmt.Appendf(nil, "retry: %d\n\n", retryMillis)
	if resetReason != "" {
		buf = appendEvent(buf, h.id(seq), EventReset, mustJSON(map[string]string{"reason": resetReason}))
		f.metrics.resumes.WithLabelValues("reset").Inc()
	}
	heartbeat := time.NewTimer(f.cfg.Heartbeat)
	defer heartbeat.Stop()
	lifetime := time.NewTimer(f.cfg.StreamLifetime)
	defer lifetime.Stop()
	// end sends the retry line that tells the client when to come back.
	end := func(ms int) {
		_ = rc.SetWriteDeadline(time.Now().Add(time.Second))
		if _, err := fmt.Fprintf(w, "retry: %d\n\n", ms); err == nil {
			_ = rc.Flush()
		}
	}
	for {
		evs, base, wake, lost, ok := h.since(seq)
		if !ok {
			return // feed stopped
		}
		seq = base
		if lost {
			buf = appendEvent(buf, h.id(seq), EventReset, mustJSON(map[string]string{"reason": "events were dropped before the client resumed"}))
			f.metrics.resumes.WithLabelValues("reset").Inc()
		} else if lastID != "" && resetReason == "" {
			f.metrics.resumes.WithLabelValues("ok").Inc()
		}
		lastID = ""
		sent := 0
		for _, e := range evs {
			if types == nil || types[e.typ] {
				buf = appendEvent(buf, h.id(e.seq), e.typ, e.data)
				sent++
			}
			seq = e.seq
		}
		if len(buf) > 0 {
			_ = rc.SetWriteDeadline(time.Now().Add(10 * time.Second))
			if _, err := w.Write(buf); err != nil {
				return
			}
			if err := rc.Flush(); err != nil {
				return
			}
			buf = buf[:0]
			f.metrics.eventsSent.Add(float64(sent))
		}
		select {
		case <-r.Context().Done():
			return
		case <-wake:
		case <-heartbeat.C:
			buf = append(buf, ": keep-alive\n\n"...)
			heartbeat.Reset(f.cfg.Heartbeat)
		case <-lifetime.C:
			h.ended.WithLabelValues(endedLifetime).Inc()
			end(retryMillis)
			return
		case <-sub.displaced:
			// Counted when it was displaced (subscribe).
			end(retryDisplacedMsec)
			return
		}
	}
}

// appendEvent formats one event; data is single-line JSON.
func appendEvent(b []byte, id, typ string, data []byte) []byte {
	b = fmt.Appendf(b, "id: %s\nevent: %s\ndata: ", id, typ)
	b = append(b, data...)
	return append(b, "\n\n"...)
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

// CheckpointEvent is the data of a checkpoint event.
type CheckpointEvent struct {
	Origin string `json:"origin"`
	LogID  string `json:"log_id"`
	CheckpointSummary
	// Contested, when set, says the log is contested (contested.go).
	Contested *Contested `json:"contested,omitempty"`
}

// EvidenceEvent is the data of an evidence event.
type EvidenceEvent = Evidence

// PeersEvent is the data of a peers event: the whole new list.
type PeersEvent struct {
	Peers []Peer `json:"peers"`
}

// publishCheckpoint announces a change of v's newest checkpoint, unless
// the checkpoint is still waiting for its quorum (freshTracker.admit).
func (f *Feed) publishCheckpoint(v *logView) {
	if f.fresh.admit(v) {
		f.emitCheckpoint(v)
	}
}

func (f *Feed) emitCheckpoint(v *logView) { f.emitCheckpointOf(v, v.latest()) }

// emitCheckpointOf publishes a checkpoint event of v about e with the
// log's contested state, and records that state as announced.
func (f *Feed) emitCheckpointOf(v *logView, e *entry) {
	c := f.contested(v.log.Origin)
	f.fresh.announcedContested(v.log.Origin, c)
	f.hub.publish(EventCheckpoint, CheckpointEvent{Origin: v.log.Origin, LogID: v.logID, CheckpointSummary: summarize(e), Contested: c})
	f.metrics.events.WithLabelValues(EventCheckpoint).Inc()
}
