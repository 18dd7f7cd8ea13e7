package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"
)

// Options are the notifier's dependencies; zero values mean defaults.
type Options struct {
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Client sends the requests; nil means a client with Config.Timeout.
	Client *http.Client
	Logger *slog.Logger
}

// Notifier turns feed events into webhook deliveries and delivers them.
type Notifier struct {
	cfg     Config
	ob      Outbox
	now     func() time.Time
	client  *http.Client
	log     *slog.Logger
	core    *Core
	backoff Backoff
	metrics *Metrics
	in      chan Input

	mu    sync.Mutex
	queue map[string]*delivery
	seq   uint64
	wake  chan struct{}
}

// New returns a notifier for cfg over the outbox ob. Call Run.
func New(cfg Config, ob Outbox, o Options) (*Notifier, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.WithDefaults()
	n := &Notifier{cfg: cfg, ob: ob, now: o.Now, client: o.Client, log: o.Logger, core: NewCore(cfg.WitnessMissingAfter),
		backoff: Backoff{Base: cfg.RetryBase, Max: cfg.RetryMax, MaxAge: cfg.MaxAge}, metrics: newMetrics(),
		in: make(chan Input), queue: map[string]*delivery{}, wake: make(chan struct{}, 1)}
	if n.now == nil {
		n.now = time.Now
	}
	if n.client == nil {
		n.client = &http.Client{Timeout: cfg.Timeout}
	}
	if n.log == nil {
		n.log = slog.New(slog.DiscardHandler)
	}
	return n, nil
}

// Metrics returns the notifier's collectors for the caller to register.
func (n *Notifier) Metrics() []prometheus.Collector { return n.metrics.collectors() }

// Observe hands one feed event to the notifier, waiting until it is taken
// (its notifications are in the outbox soon after) or ctx ends.
func (n *Notifier) Observe(ctx context.Context, in Input) error {
	select {
	case n.in <- in:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Run loads the outbox, then decides and delivers until ctx ends.
func (n *Notifier) Run(ctx context.Context) error {
	if err := n.load(ctx); err != nil {
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return n.decide(gctx) })
	g.Go(func() error { return n.send(gctx) })
	err := g.Wait()
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// load reads the deliveries a previous run left in the outbox.
func (n *Notifier) load(ctx context.Context) error {
	var drop []string
	err := n.ob.OutboxScan(ctx, func(key string, v []byte) error {
		if strings.HasPrefix(key, witnessKeyPrefix) {
			name, st, err := decodeWitness(key, v)
			if err != nil || st.Since.IsZero() {
				// Undecodable, or the record of a witness no longer
				// missing: nothing to restore.
				drop = append(drop, key)
				return nil
			}
			n.core.RestoreWitness(name, st)
			return nil
		}
		if strings.HasPrefix(key, logKeyPrefix) {
			origin, st, err := decodeLog(key, v)
			if err != nil || st == (LogState{}) {
				drop = append(drop, key)
				return nil
			}
			n.core.RestoreLog(origin, st)
			return nil
		}
		d, err := decodeDelivery(key, v)
		if err != nil {
			n.log.Error("notify: dropping an outbox item that does not decode", "key", key, "err", err)
			drop = append(drop, key)
			return nil
		}
		if n.webhook(d.URL) == nil {
			n.log.Warn("notify: dropping a delivery to a webhook no longer configured", "url", d.URL, "id", d.ID)
			drop = append(drop, key)
			n.metrics.deliveries.WithLabelValues("dropped").Inc()
			return nil
		}
		n.queue[key] = d
		return nil
	})
	if err != nil {
		return fmt.Errorf("notify: reading the outbox: %w", err)
	}
	for _, k := range drop {
		if err := n.ob.OutboxDelete(ctx, k); err != nil {
			return fmt.Errorf("notify: dropping outbox item %s: %w", k, err)
		}
	}
	n.metrics.pending.Set(float64(len(n.queue)))
	if len(n.queue) > 0 {
		n.log.Info("notify: resuming deliveries from the outbox", "deliveries", len(n.queue))
	}
	return nil
}

func (n *Notifier) webhook(url string) *Webhook {
	for i := range n.cfg.Webhooks {
		if n.cfg.Webhooks[i].URL == url {
			return &n.cfg.Webhooks[i]
		}
	}
	return nil
}

// decide feeds events and the debounce clock to the core and queues what
// it decides.
func (n *Notifier) decide(ctx context.Context) error {
	for {
		var timer <-chan time.Time
		var tm *time.Timer
		if t, ok := n.core.NextDeadline(); ok {
			tm = time.NewTimer(max(t.Sub(n.now()), 0))
			timer = tm.C
		}
		var notes []Notification
		select {
		case in := <-n.in:
			notes = n.core.Observe(n.now(), in)
		case <-timer:
			notes = n.core.Tick(n.now())
		case <-ctx.Done():
			return nil
		}
		if tm != nil {
			tm.Stop()
		}
		n.enqueue(ctx, notes, n.core.WitnessChanges(), n.core.LogChanges())
	}
}

// outboxWriteTimeout bounds a write of decided notifications and states,
// which goes on when the notifier is asked to stop.
const outboxWriteTimeout = 5 * time.Second

// enqueue writes one delivery per notification and interested webhook to
// the outbox, with the witness and log states that changed, durably and
// in one transaction, then wakes the sender. If the store refuses the
// write (disk pressure) the deliveries are still tried from memory.
func (n *Notifier) enqueue(ctx context.Context, notes []Notification, witnesses map[string]WitnessDebounce, logs map[string]LogState) {
	if len(notes) == 0 && len(witnesses) == 0 && len(logs) == 0 {
		return
	}
	now := n.now().UTC()
	items := map[string][]byte{}
	// A state with nothing to remember is written as a zero state, not
	// deleted, so that the change and the notification it decided are
	// stored together; load drops such records.
	for name, st := range witnesses {
		items[witnessKeyPrefix+name] = encodeWitness(st)
	}
	for origin, st := range logs {
		items[logKeyPrefix+origin] = encodeLog(st)
	}
	var ds []*delivery
	n.mu.Lock()
	for _, note := range notes {
		n.metrics.notifications.WithLabelValues(note.Event).Inc()
		body, err := json.Marshal(note)
		if err != nil {
			continue
		}
		for _, w := range n.cfg.Webhooks {
			if !w.wants(note.Event) {
				continue
			}
			n.seq++
			d := &delivery{key: deliveryKey(now, n.seq), URL: w.URL, ID: note.ID, Event: note.Event, Body: body, Created: now, Next: now}
			items[d.key] = d.encode()
			ds = append(ds, d)
		}
	}
	n.mu.Unlock()
	// The core has decided: what it decided is written even when the node
	// is stopping (ctx canceled), or a state it remembers only in memory
	// would be lost with the restart.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), outboxWriteTimeout)
	defer cancel()
	if err := n.ob.OutboxPut(wctx, items); err != nil {
		n.log.Error("notify: writing the outbox failed; delivering from memory only", "deliveries", len(ds), "err", err)
	}
	n.mu.Lock()
	for _, d := range ds {
		n.queue[d.key] = d
	}
	n.metrics.pending.Set(float64(len(n.queue)))
	n.mu.Unlock()
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

// send delivers due deliveries, oldest first, and sleeps until the next
// one is due or new ones arrive.
func (n *Notifier) send(ctx context.Context) error {
	for {
		now := n.now()
		due, next := n.due(now)
		for _, d := range due {
			if ctx.Err() != nil {
				return nil
			}
			n.attempt(ctx, d)
		}
		if len(due) > 0 {
			continue
		}
		var timer <-chan time.Time
		var tm *time.Timer
		if !next.IsZero() {
			tm = time.NewTimer(max(next.Sub(now), 0))
			timer = tm.C
		}
		select {
		case <-n.wake:
		case <-timer:
		case <-ctx.Done():
			return nil
		}
		if tm != nil {
			tm.Stop()
		}
	}
}

// due returns the deliveries due at now in key order, and when the next
// one not yet due is.
func (n *Notifier) due(now time.Time) ([]*delivery, time.Time) {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []*delivery
	var next time.Time
	for _, d := range n.queue {
		if !d.Next.After(now) {
			out = append(out, d)
		} else if next.IsZero() || d.Next.Before(next) {
			next = d.Next
		}
	}
	slices.SortFunc(out, func(a, b *delivery) int {
		switch {
		case a.key < b.key:
			return -1
		case a.key > b.key:
			return 1
		}
		return 0
	})
	return out, next
}

// attempt POSTs one delivery and records the outcome.
func (n *Notifier) attempt(ctx context.Context, d *delivery) {
	w := n.webhook(d.URL)
	err := errors.New("webhook no longer configured")
	if w != nil {
		err = n.post(ctx, w, d)
	}
	if err == nil {
		n.metrics.deliveries.WithLabelValues("ok").Inc()
		// Accepted: remove it even if the notifier is stopping, so that
		// a restart does not send it again.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), n.cfg.Timeout)
		n.finish(fctx, d)
		cancel()
		return
	}
	if ctx.Err() != nil {
		return
	}
	now := n.now().UTC()
	d.Attempts++
	d.LastError = err.Error()
	next, ok := n.backoff.Next(d.Created, now, d.Attempts)
	if !ok || w == nil {
		n.metrics.deliveries.WithLabelValues("dropped").Inc()
		n.log.Error("notify: giving up a delivery", "url", d.URL, "id", d.ID, "attempts", d.Attempts, "err", err)
		n.finish(ctx, d)
		return
	}
	n.metrics.deliveries.WithLabelValues("retry").Inc()
	n.log.Warn("notify: delivery failed; retrying", "url", d.URL, "id", d.ID, "attempts", d.Attempts, "next", next, "err", err)
	n.mu.Lock()
	d.Next = next
	n.mu.Unlock()
	if err := n.ob.OutboxPut(ctx, map[string][]byte{d.key: d.encode()}); err != nil {
		n.log.Error("notify: recording a retry in the outbox failed", "id", d.ID, "err", err)
	}
}

// finish removes a delivery from the outbox and the queue.
func (n *Notifier) finish(ctx context.Context, d *delivery) {
	if err := n.ob.OutboxDelete(ctx, d.key); err != nil {
		// It stays queued in the store and is sent again after a
		// restart: receivers de-duplicate on the delivery ID.
		n.log.Error("notify: removing a delivery from the outbox failed", "id", d.ID, "err", err)
	}
	n.mu.Lock()
	delete(n.queue, d.key)
	n.metrics.pending.Set(float64(len(n.queue)))
	n.mu.Unlock()
}

// post sends d to w; any answer but 2xx is an error.
func (n *Notifier) post(ctx context.Context, w *Webhook, d *delivery) error {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(d.Body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "vigil-notify")
	req.Header.Set(SignatureHeader, Sign(w.Secret, d.Body))
	req.Header.Set(EventHeader, d.Event)
	req.Header.Set(DeliveryHeader, d.ID)
	resp, err := n.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("receiver answered %s", resp.Status)
	}
	return nil
}
