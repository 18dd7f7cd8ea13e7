package node_test

import (
	"context"
	"errors"
	"testing"

	"github.com/vigilnet/vigil/node"
)

// A node whose roster names no log would watch nothing; it refuses to start
// unless the configuration says that is intended.
func TestNewRefusesNoLogs(t *testing.T) {
	for _, tc := range []struct {
		name   string
		roster string // "" means no roster file at all
		allow  bool
		want   error
	}{
		{name: "no roster", want: node.ErrNoLogs},
		{name: "roster without logs", roster: "# witnesses only\n", want: node.ErrNoLogs},
		{name: "no roster, allowed", allow: true},
		{name: "roster without logs, allowed", roster: "# witnesses only\n", allow: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, _ := newConfig(t, tc.roster)
			if tc.roster == "" {
				cfg.Roster = ""
			}
			cfg.AllowNoLogs = tc.allow
			ln := listen(t)
			defer ln.Close()
			n, err := node.New(cfg, node.Deps{Listener: ln, Logger: testLogger(t)})
			if !errors.Is(err, tc.want) {
				t.Fatalf("New: %v, want %v", err, tc.want)
			}
			if n != nil {
				// Run with an ended context releases what New opened.
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				if err := n.Run(ctx); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}
