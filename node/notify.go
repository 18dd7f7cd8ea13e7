package node

import (
	"context"

	"golang.org/x/sync/errgroup"

	"github.com/vigilnet/vigil/feed"
	"github.com/vigilnet/vigil/notify"
)

// startNotify builds the webhook notifier when vigil.yaml lists webhooks
// (alerts.webhooks); its outbox is the node's store.
func (n *Node) startNotify() error {
	if len(n.cfg.Alerts.Webhooks) == 0 {
		return nil
	}
	nt, err := notify.New(n.cfg.Alerts, n.store, notify.Options{Logger: n.log.With("component", "notify")})
	if err != nil {
		return err
	}
	n.notifier = nt
	n.reg.MustRegister(nt.Metrics()...)
	return nil
}

// runNotify follows the feed's events for the notifier and delivers its
// notifications until ctx ends.
func (n *Node) runNotify(ctx context.Context) error {
	if n.notifier == nil || n.feed == nil {
		return nil
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		// Notifications must never take the node down: a notifier that
		// cannot run (an unreadable outbox) is logged and left stopped.
		if err := n.notifier.Run(gctx); err != nil {
			n.log.Error("notify: the notifier stopped; no webhooks will be sent", "err", err)
		}
		<-gctx.Done()
		return nil
	})
	g.Go(func() error {
		// From the feed's first event: the feed starts at the same time,
		// and what it publishes at once (a witness restored missing that
		// is alive again) must reach the notifier.
		err := n.feed.SubscribeFromStart(gctx, func(ev feed.Event) {
			if ev.Type == feed.EventReset {
				n.log.Warn("notify: events were lost before the notifier read them", "id", ev.ID)
				return
			}
			n.notifier.Observe(gctx, notify.Input{Type: ev.Type, Data: ev.Data})
		}, append([]string{feed.EventReset}, notify.EventTypes...)...)
		if gctx.Err() != nil {
			return nil
		}
		return err
	})
	return g.Wait()
}
