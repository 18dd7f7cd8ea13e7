package node

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/vigilnet/vigil/feed"
	"github.com/vigilnet/vigil/store"
)

var _ feed.TimeSource = feedSource{}

// CheckpointsByTime serves the feed's queries by time from the store's
// time index; cursors travel as hex.
func (s feedSource) CheckpointsByTime(ctx context.Context, origin string, q feed.TimeQuery) (feed.TimePage, error) {
	cursor, err := hex.DecodeString(q.Cursor)
	if err != nil {
		return feed.TimePage{}, fmt.Errorf("%w: %v", feed.ErrBadCursor, err)
	}
	recs, next, err := s.n.store.CheckpointsByTime(ctx, origin, q.Since, q.Until, cursor, q.Limit)
	if errors.Is(err, store.ErrBadCursor) {
		return feed.TimePage{}, fmt.Errorf("%w: %v", feed.ErrBadCursor, err)
	}
	if err != nil {
		return feed.TimePage{}, err
	}
	page := feed.TimePage{Notes: make([]feed.TimedNote, 0, len(recs)), Next: hex.EncodeToString(next)}
	for _, r := range recs {
		page.Notes = append(page.Notes, feed.TimedNote{Note: r.Note, FirstSeen: r.FirstSeen})
	}
	return page, nil
}
