package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Outbox is the durable queue of deliveries, which also keeps the witness
// debounce state (WitnessDebounce) and the per-log state (LogState) under
// keys of their own;
// *store.DB implements it (store/outbox.go). Puts and deletes must be
// durable when they return.
type Outbox interface {
	OutboxPut(ctx context.Context, items map[string][]byte) error
	OutboxDelete(ctx context.Context, key string) error
	OutboxScan(ctx context.Context, fn func(key string, v []byte) error) error
}

// delivery is one notification for one webhook. The webhook is named by
// its URL; its secret stays in the configuration, out of the store.
type delivery struct {
	key       string
	URL       string    `json:"url"`
	ID        string    `json:"id"`
	Event     string    `json:"event"`
	Body      []byte    `json:"body"` // the exact bytes signed and sent
	Attempts  int       `json:"attempts"`
	Created   time.Time `json:"created"`
	Next      time.Time `json:"next"`
	LastError string    `json:"last_error,omitempty"`
}

// deliveryKey orders deliveries by creation: zero-padded nanoseconds and
// a per-process sequence number.
func deliveryKey(created time.Time, seq uint64) string {
	return fmt.Sprintf("%020d-%010d", created.UnixNano(), seq)
}

// witnessKeyPrefix starts the outbox keys of the witness debounce state,
// one per witness; delivery keys start with a digit.
const witnessKeyPrefix = "witness/"

// logKeyPrefix starts the outbox keys of the per-log state (LogState).
const logKeyPrefix = "log/"

func encodeLog(st LogState) []byte {
	b, _ := json.Marshal(st)
	return b
}

func decodeLog(key string, v []byte) (string, LogState, error) {
	var st LogState
	if err := json.Unmarshal(v, &st); err != nil {
		return "", st, fmt.Errorf("outbox item %s: %w", key, err)
	}
	return strings.TrimPrefix(key, logKeyPrefix), st, nil
}

func encodeWitness(st WitnessDebounce) []byte {
	b, _ := json.Marshal(st)
	return b
}

func decodeWitness(key string, v []byte) (string, WitnessDebounce, error) {
	var st WitnessDebounce
	if err := json.Unmarshal(v, &st); err != nil {
		return "", st, fmt.Errorf("outbox item %s: %w", key, err)
	}
	return strings.TrimPrefix(key, witnessKeyPrefix), st, nil
}

func (d *delivery) encode() []byte {
	b, _ := json.Marshal(d)
	return b
}

func decodeDelivery(key string, v []byte) (*delivery, error) {
	d := &delivery{key: key}
	if err := json.Unmarshal(v, d); err != nil {
		return nil, fmt.Errorf("outbox item %s: %w", key, err)
	}
	return d, nil
}
