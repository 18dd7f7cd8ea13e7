// Package storetest is the conformance suite every implementation of Vigil's
// durable witness state must pass.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/vigilnet/vigil/store"
)

// WitnessStateStore is the behaviour under test.
type WitnessStateStore interface {
	WitnessState(ctx context.Context, origin string) (store.WitnessState, error)
	UpdateWitnessState(ctx context.Context, origin string, fn func(old store.WitnessState, exists bool) (store.WitnessState, error)) error
	WitnessStates(ctx context.Context, fn func(origin string, st store.WitnessState) error) error
	Close() error
}

// Opener opens the store kept in dir; opening the same dir again after Close
// must see everything written before.
type Opener func(t *testing.T, dir string) WitnessStateStore

// RunWitnessStateTests runs the conformance suite.
func RunWitnessStateTests(t *testing.T, open Opener) {
	ctx := context.Background()
	state := func(size uint64) store.WitnessState {
		s := store.WitnessState{Size: size, Checkpoint: []byte(fmt.Sprintf("checkpoint %d\n", size))}
		s.Root[0] = byte(size)
		return s
	}

	t.Run("missing", func(t *testing.T) {
		s := open(t, t.TempDir())
		defer s.Close()
		if _, err := s.WitnessState(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("got %v, want ErrNotFound", err)
		}
	})

	t.Run("create then update", func(t *testing.T) {
		s := open(t, t.TempDir())
		defer s.Close()
		err := s.UpdateWitnessState(ctx, "a", func(old store.WitnessState, exists bool) (store.WitnessState, error) {
			if exists || old.Size != 0 {
				t.Errorf("fresh origin: exists=%v size=%d", exists, old.Size)
			}
			return state(5), nil
		})
		if err != nil {
			t.Fatal(err)
		}
		err = s.UpdateWitnessState(ctx, "a", func(old store.WitnessState, exists bool) (store.WitnessState, error) {
			if !exists || old.Size != 5 || string(old.Checkpoint) != "checkpoint 5\n" || old.Root[0] != 5 {
				t.Errorf("second update saw %+v exists=%v", old, exists)
			}
			return state(9), nil
		})
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.WitnessState(ctx, "a")
		if err != nil || got.Size != 9 {
			t.Fatalf("got %+v, %v", got, err)
		}
	})

	t.Run("error writes nothing", func(t *testing.T) {
		s := open(t, t.TempDir())
		defer s.Close()
		sentinel := errors.New("refused")
		err := s.UpdateWitnessState(ctx, "a", func(store.WitnessState, bool) (store.WitnessState, error) {
			return state(3), sentinel
		})
		if !errors.Is(err, sentinel) {
			t.Fatalf("got %v, want the callback's error", err)
		}
		if _, err := s.WitnessState(ctx, "a"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("state written despite error: %v", err)
		}
	})

	t.Run("compare and swap under contention", func(t *testing.T) {
		s := open(t, t.TempDir())
		defer s.Close()
		// Every worker tries to advance from the size it last saw; an update
		// only succeeds if nobody advanced in between. No update may be lost
		// and the size may never go backwards.
		const workers, rounds = 8, 40
		errStale := errors.New("stale")
		var mu sync.Mutex
		wins := 0
		var wg sync.WaitGroup
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for r := 0; r < rounds; r++ {
					cur, err := s.WitnessState(ctx, "race")
					if err != nil && !errors.Is(err, store.ErrNotFound) {
						t.Error(err)
						return
					}
					err = s.UpdateWitnessState(ctx, "race", func(old store.WitnessState, _ bool) (store.WitnessState, error) {
						if old.Size != cur.Size {
							return old, errStale
						}
						return state(old.Size + 1), nil
					})
					if err == nil {
						mu.Lock()
						wins++
						mu.Unlock()
					} else if !errors.Is(err, errStale) {
						t.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		got, err := s.WitnessState(ctx, "race")
		if err != nil {
			t.Fatal(err)
		}
		if got.Size != uint64(wins) {
			t.Fatalf("size %d after %d successful swaps: an update was lost", got.Size, wins)
		}
	})

	t.Run("concurrent updates of one origin all apply", func(t *testing.T) {
		s := open(t, t.TempDir())
		defer s.Close()
		// Updates arriving together may share a transaction: each must see
		// the one applied before it, or an increment is lost.
		const workers, rounds = 16, 25
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				for range rounds {
					if err := s.UpdateWitnessState(ctx, "count", func(old store.WitnessState, _ bool) (store.WitnessState, error) {
						return state(old.Size + 1), nil
					}); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		got, err := s.WitnessState(ctx, "count")
		if err != nil || got.Size != workers*rounds || string(got.Checkpoint) != fmt.Sprintf("checkpoint %d\n", workers*rounds) {
			t.Fatalf("got %+v, %v; want size %d", got, err, workers*rounds)
		}
	})

	t.Run("durable across reopen", func(t *testing.T) {
		dir := t.TempDir()
		s := open(t, dir)
		for i, o := range []string{"b", "a", "c"} {
			if err := s.UpdateWitnessState(ctx, o, func(store.WitnessState, bool) (store.WitnessState, error) { return state(uint64(i + 1)), nil }); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s = open(t, dir)
		defer s.Close()
		var seen []string
		err := s.WitnessStates(ctx, func(origin string, st store.WitnessState) error {
			seen = append(seen, fmt.Sprintf("%s=%d", origin, st.Size))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(seen) != "[a=2 b=1 c=3]" {
			t.Fatalf("after reopen: %v", seen)
		}
	})
}
