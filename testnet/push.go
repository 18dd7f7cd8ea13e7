package testnet

import (
	"context"
	"fmt"
	"sync"

	"github.com/vigilnet/vigil/testnet/scriptlog"
	"github.com/vigilnet/vigil/witness"
)

// Pusher pushes scripted logs' checkpoints to members, remembering for each
// (member, origin) the size the member last cosigned, as a log would.
type Pusher struct {
	nw  *Network
	mu  sync.Mutex
	old map[string]uint64
}

// NewPusher returns a Pusher for nw.
func NewPusher(nw *Network) *Pusher { return &Pusher{nw: nw, old: map[string]uint64{}} }

// PushResult is one member's answer to a push.
type PushResult struct {
	Member int
	// Cosignature is the witness's cosignature lines, if it cosigned.
	Cosignature []byte
	Err         error
}

// Push sends lg's current checkpoint to each member in members (witnesses
// only) concurrently and returns every answer.
func (p *Pusher) Push(ctx context.Context, lg *scriptlog.Log, members []int) ([]PushResult, error) {
	size := lg.Size()
	cp, err := lg.CheckpointAt(size)
	if err != nil {
		return nil, err
	}
	out := make([]PushResult, len(members))
	var wg sync.WaitGroup
	for k, i := range members {
		m := p.nw.Members[i]
		if m.Role != Witness || !m.Running() {
			return nil, fmt.Errorf("%s cannot cosign now", m.Name)
		}
		key := m.Name + "\x00" + lg.Origin()
		p.mu.Lock()
		old := p.old[key]
		p.mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &witness.Client{URL: m.URL}
			cosig, err := c.Submit(ctx, &old, size, cp, lg)
			out[k] = PushResult{Member: i, Cosignature: cosig, Err: err}
			if err == nil {
				p.mu.Lock()
				p.old[key] = old
				p.mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return out, nil
}

// PushAll pushes and fails on the first member that does not cosign.
func (p *Pusher) PushAll(ctx context.Context, lg *scriptlog.Log, members []int) error {
	res, err := p.Push(ctx, lg, members)
	if err != nil {
		return err
	}
	for _, r := range res {
		if r.Err != nil {
			return fmt.Errorf("%s: %w", p.nw.Members[r.Member].Name, r.Err)
		}
	}
	return nil
}

// Range returns the indexes [from, to).
func Range(from, to int) []int {
	out := make([]int, 0, to-from)
	for i := from; i < to; i++ {
		out = append(out, i)
	}
	return out
}
