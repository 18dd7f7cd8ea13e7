package witness

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/vigilnet/vigil/store"
)

// OwnHistory is what the node knows its witness key has cosigned, from any
// source: its own state, gossip, the catch-up sync, evidence, and the
// answers of its peers after a start (a witness whose data directory was
// lost looks like one starting for the first time). The witness consults
// it so that it never cosigns a checkpoint inconsistent with one the
// network holds under its key, even one its own disk no longer has.
type OwnHistory interface {
	// Floor returns the newest checkpoint of origin known to carry this
	// witness's valid cosignature (Checkpoint is that signed note), and
	// false if none is known. An error refuses the log: an
	// *UnavailableError when the node holds two own-cosigned checkpoints
	// of the log that are not consistent with each other, or has not yet
	// heard from enough peers to know what it cosigned. The witness calls
	// it first outside its state update, where it may wait briefly, and
	// then inside it, where it must answer at once.
	Floor(ctx context.Context, origin string) (floor store.WitnessState, ok bool, err error)
}

// floorRetry is the Retry-After of a log refused because its own-cosigned
// checkpoints do not agree with the witness state.
const floorRetry = time.Minute

// judgeAgainst returns the state a request for a log is judged against:
// the stored state st, or the floor f when f is newer (the witness adopts
// what the network holds under its key, as if it had never lost it). A
// floor at the state's size with another root means this key cosigned two
// roots for one size: the log is refused until an operator looks.
//
// SPEC (DESIGN invariant 1): the witness never cosigns a checkpoint
// inconsistent with one it, or the network under its key, has cosigned.
func judgeAgainst(st store.WitnessState, f store.WitnessState, ok bool) (store.WitnessState, bool, error) {
	switch {
	case !ok || f.Size < st.Size:
		return st, false, nil
	case f.Size == st.Size && f.Root != st.Root:
		return st, false, &UnavailableError{
			Reason:     fmt.Sprintf("this witness's key cosigned two roots at size %d (its state and a checkpoint the network holds); its state needs an operator", f.Size),
			RetryAfter: floorRetry,
		}
	case f.Size == st.Size:
		return st, false, nil
	}
	return f, true, nil
}

// adoptFloor raises the stored state of origin to its floor when the floor
// is newer, in its own durable update: a witness whose disk lost its state
// answers from then on as if it had kept it (Latest included). A request
// judged before this commits is judged against the floor all the same
// (add).
func (w *Witness) adoptFloor(ctx context.Context, origin string) error {
	if w.cfg.History == nil {
		return nil
	}
	f, ok, err := w.cfg.History.Floor(ctx, origin)
	if err != nil || !ok {
		return err
	}
	st, err := w.cfg.Store.WitnessState(ctx, origin)
	if err == nil && st.Size >= f.Size {
		return nil
	}
	err = w.cfg.Store.UpdateWitnessState(ctx, origin, func(old store.WitnessState, _ bool) (store.WitnessState, error) {
		next, adopted, err := judgeAgainst(old, f, true)
		if err != nil {
			return old, err
		}
		if !adopted {
			return old, errNoChange
		}
		return next, nil
	})
	switch {
	case errors.Is(err, errNoChange):
		return nil
	case err != nil:
		return err
	}
	w.log.Warn("adopted a newer checkpoint cosigned under this witness's key", "origin", origin, "size", f.Size)
	return nil
}

// errNoChange aborts an update that has nothing to write.
var errNoChange = errors.New("no change")
