// Package notify sends webhooks when a node sees something an operator or a
// regulator must hear about: evidence, a contested log, a stale log, a lost
// quorum, a roster witness missing for longer than a debounce period.
//
// It follows the feed's event bus (feed.Subscribe) and has three parts: a
// pure core that decides what to send when (core.go: which events notify,
// de-duplication, the witness debounce) and how long to wait between
// attempts (backoff.go); a persistent outbox, declared here and kept in the
// node's Badger store, so that a notification decided is delivered even
// across restarts; and the sender, which POSTs each notification as JSON
// with an HMAC-SHA256 signature of the body (sign.go) and retries with
// exponential backoff until the receiver answers 2xx or MaxAge passes.
package notify

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"time"
)

// Notification kinds: the "event" field of a webhook body, and the names a
// webhook's events list may hold.
const (
	// KindEvidence: the node stored new evidence of a split view.
	KindEvidence = "evidence"
	// KindContested: a log became contested, or its conflicting sizes
	// changed.
	KindContested = "contested"
	// KindStale: a log became stale, or stopped being stale.
	KindStale = "stale"
	// KindQuorumLost: a log's newest checkpoint waited for a quorum of
	// cosignatures longer than the log's expected interval.
	KindQuorumLost = "quorum-lost"
	// KindWitness: a roster witness has been missing for the debounce
	// period, or came back after such a notification.
	KindWitness = "witness"
)

// Kinds lists every notification kind.
var Kinds = []string{KindEvidence, KindContested, KindStale, KindQuorumLost, KindWitness}

// Defaults of Config.
const (
	DefaultWitnessMissingAfter = 15 * time.Minute
	DefaultRetryBase           = time.Second
	DefaultRetryMax            = 5 * time.Minute
	DefaultMaxAge              = 72 * time.Hour
	DefaultTimeout             = 10 * time.Second
)

// Config is the alerts section of vigil.yaml. Zero values mean the
// documented defaults.
type Config struct {
	// Webhooks receive the notifications; none means the notifier is off.
	Webhooks []Webhook `yaml:"webhooks"`
	// WitnessMissingAfter is how long a roster witness must be missing,
	// without a break, before a witness notification is sent (default
	// 15m: the uptime monitors' "every source failed for 15 minutes").
	WitnessMissingAfter time.Duration `yaml:"witness_missing_after"`
	// RetryBase and RetryMax bound the exponential backoff between
	// attempts of one delivery: RetryBase, 2×, 4×, ... capped at RetryMax
	// (defaults 1s and 5m).
	RetryBase time.Duration `yaml:"retry_base"`
	RetryMax  time.Duration `yaml:"retry_max"`
	// MaxAge is how long a delivery is retried before it is dropped (and
	// counted in vigil_notify_deliveries_total{result="dropped"});
	// default 72h.
	MaxAge time.Duration `yaml:"max_age"`
	// Timeout bounds one attempt (default 10s).
	Timeout time.Duration `yaml:"timeout"`
}

// Webhook is one receiver.
type Webhook struct {
	// URL is where notifications are POSTed (http or https).
	URL string `yaml:"url"`
	// Secret keys the HMAC-SHA256 signature of each body (header
	// X-Vigil-Signature); at least 16 characters.
	Secret string `yaml:"secret"`
	// Events are the kinds this receiver gets; empty means all.
	Events []string `yaml:"events"`
}

// wants reports whether w receives notifications of kind.
func (w Webhook) wants(kind string) bool {
	return len(w.Events) == 0 || slices.Contains(w.Events, kind)
}

// ErrConfig is wrapped by every configuration error.
var ErrConfig = errors.New("alerts config")

// WithDefaults returns c with zero values replaced by the defaults.
func (c Config) WithDefaults() Config {
	if c.WitnessMissingAfter == 0 {
		c.WitnessMissingAfter = DefaultWitnessMissingAfter
	}
	if c.RetryBase == 0 {
		c.RetryBase = DefaultRetryBase
	}
	if c.RetryMax == 0 {
		c.RetryMax = DefaultRetryMax
	}
	if c.MaxAge == 0 {
		c.MaxAge = DefaultMaxAge
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	return c
}

// Validate checks c.
func (c Config) Validate() error {
	for i, w := range c.Webhooks {
		u, err := url.Parse(w.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("%w: alerts.webhooks[%d].url %q is not an http or https URL", ErrConfig, i, w.URL)
		}
		if len(w.Secret) < 16 {
			return fmt.Errorf("%w: alerts.webhooks[%d].secret must be at least 16 characters (it keys the body's HMAC-SHA256 signature)", ErrConfig, i)
		}
		for _, e := range w.Events {
			if !slices.Contains(Kinds, e) {
				return fmt.Errorf("%w: alerts.webhooks[%d].events: %q is not one of %v", ErrConfig, i, e, Kinds)
			}
		}
	}
	for name, d := range map[string]time.Duration{"witness_missing_after": c.WitnessMissingAfter, "retry_base": c.RetryBase, "retry_max": c.RetryMax, "max_age": c.MaxAge, "timeout": c.Timeout} {
		if d < 0 {
			return fmt.Errorf("%w: alerts.%s must not be negative", ErrConfig, name)
		}
	}
	if c.RetryBase > 0 && c.RetryMax > 0 && c.RetryMax < c.RetryBase {
		return fmt.Errorf("%w: alerts.retry_max must not be below alerts.retry_base", ErrConfig)
	}
	return nil
}
