package gossip

import (
	"context"
	"errors"
	"log/slog"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-msgio"
)

// Pubsub RPCs that no validator sees. Pubsub reads each peer's RPCs with a
// length-prefixed reader bounded by WithMaxMessageSize; an RPC above it (or
// one that does not decode) makes pubsub reset that stream before the RPC
// reaches its event loop, so no RawTracer event and no validator result
// follows, and gossipsub's score never hears of it. Pubsub only logs it, on
// its RPC logger: rpcPenaltyHandler sits there, charges the sender a
// penalty (penalty.go, which feeds the score's application part) and passes
// every record on to the node's logger as before.

// rpcPenaltyHandler is the slog.Handler given to pubsub.WithRPCLogger.
type rpcPenaltyHandler struct {
	next    slog.Handler
	penalty func(p peer.ID, reason string)
}

func (h rpcPenaltyHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h rpcPenaltyHandler) Handle(ctx context.Context, r slog.Record) error {
	if reason := rpcOffence(r); reason != "" {
		if p, ok := recordPeer(r); ok {
			h.penalty(p, reason)
		}
	}
	if h.next.Enabled(ctx, r.Level) {
		return h.next.Handle(ctx, r)
	}
	return nil
}

func (h rpcPenaltyHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return rpcPenaltyHandler{next: h.next.WithAttrs(as), penalty: h.penalty}
}

func (h rpcPenaltyHandler) WithGroup(name string) slog.Handler {
	return rpcPenaltyHandler{next: h.next.WithGroup(name), penalty: h.penalty}
}

// rpcOffence classifies a pubsub RPC log record: "oversized" or
// "malformed" for an RPC pubsub dropped unread, "" for anything else
// (including a stream that simply ended).
func rpcOffence(r slog.Record) string {
	switch r.Message {
	case "error reading rpc":
		var reason string
		r.Attrs(func(a slog.Attr) bool {
			if err, ok := a.Value.Any().(error); ok && a.Key == "err" && errors.Is(err, msgio.ErrMsgTooLarge) {
				reason = "oversized"
				return false
			}
			return true
		})
		return reason
	case "bogus rpc from":
		return "malformed"
	}
	if len(r.Message) > 30 && r.Message[:30] == "RPC's control message is too l" {
		return "oversized"
	}
	return ""
}

// recordPeer returns the peer a pubsub RPC log record names.
func recordPeer(r slog.Record) (peer.ID, bool) {
	var p peer.ID
	r.Attrs(func(a slog.Attr) bool {
		if a.Key != "from" && a.Key != "peer" {
			return true
		}
		switch v := a.Value.Any().(type) {
		case peer.ID:
			p = v
		case interface{ String() string }:
			if id, err := peer.Decode(v.String()); err == nil {
				p = id
			}
		}
		return p == ""
	})
	return p, p != ""
}

var _ slog.Handler = rpcPenaltyHandler{}
