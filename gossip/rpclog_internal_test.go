package gossip

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-msgio"
)

// TestRPCPenaltyHandler: the records pubsub's RPC logger writes for RPCs it
// drops unread charge their sender; other records charge no one, and every
// record still reaches the node's logger.
func TestRPCPenaltyHandler(t *testing.T) {
	sk, _, _ := crypto.GenerateEd25519Key(rand.Reader)
	p, _ := peer.IDFromPrivateKey(sk)
	for _, tc := range []struct {
		name, msg string
		args      []any
		want      string
	}{
		{"oversized", "error reading rpc", []any{"from", p, "err", msgio.ErrMsgTooLarge}, "oversized"},
		{"oversized, wrapped", "error reading rpc", []any{"from", p, "err", fmt.Errorf("reading: %w", msgio.ErrMsgTooLarge)}, "oversized"},
		{"stream reset", "error reading rpc", []any{"from", p, "err", errors.New("stream reset")}, ""},
		{"undecodable", "bogus rpc from", []any{"peer", p, "err", errors.New("proto: cannot parse")}, "malformed"},
		{"control too large", "RPC's control message is too large. Disconnecting. If this is a mistake, you should increase `WithMaxControlMessageSize`", []any{"peer", p, "err", errors.New("x")}, "oversized"},
		{"received", "received", []any{"peer", p, "duration_s", 0.1}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got string
			var who peer.ID
			passed := 0
			next := countingHandler{n: &passed}
			lg := slog.New(rpcPenaltyHandler{next: next, penalty: func(q peer.ID, reason string) { who, got = q, reason }}).With("system", "pubsub/rpc")
			lg.Debug(tc.msg, tc.args...)
			if got != tc.want {
				t.Errorf("penalty %q, want %q", got, tc.want)
			}
			if tc.want != "" && who != p {
				t.Errorf("charged %s, want %s", who, p)
			}
			if passed != 1 {
				t.Errorf("%d records passed on, want 1", passed)
			}
		})
	}
}

type countingHandler struct{ n *int }

func (h countingHandler) Enabled(context.Context, slog.Level) bool  { return true }
func (h countingHandler) Handle(context.Context, slog.Record) error { *h.n++; return nil }
func (h countingHandler) WithAttrs([]slog.Attr) slog.Handler        { return h }
func (h countingHandler) WithGroup(string) slog.Handler             { return h }
