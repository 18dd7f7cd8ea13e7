package node_test

import (
	"context"
	"sync"
	"testing"

	"github.com/vigilnet/vigil/node"
	"github.com/vigilnet/vigil/store"
)

// runNode runs n until stop is called or the test ends. stop cancels the
// node, reports an error from Run under name, and closes db; calling it
// again does nothing, so a test may stop a node early and restart it on the
// same directory.
func runNode(t *testing.T, name string, n *node.Node, db *store.DB) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	stop = sync.OnceFunc(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("%s: %v", name, err)
		}
		db.Close()
	})
	t.Cleanup(stop)
	return stop
}
