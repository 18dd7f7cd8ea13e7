package feed

import (
	"bufio"
	"strings"
)

// StreamEvent is one event read from GET /v1/events.
type StreamEvent struct {
	ID, Type, Data string
}

// ReadEvents reads server-sent events from r (a GET /v1/events body, after
// or before its retry line) and calls fn with each, until r ends or fn
// returns false. It returns the read error that ended it (nil when fn
// stopped it). Comments and retry lines are skipped.
func ReadEvents(r *bufio.Reader, fn func(StreamEvent) bool) error {
	var cur StreamEvent
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return err
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			if cur.Type != "" && !fn(cur) {
				return nil
			}
			cur = StreamEvent{}
		case strings.HasPrefix(line, "id: "):
			cur.ID = line[len("id: "):]
		case strings.HasPrefix(line, "event: "):
			cur.Type = line[len("event: "):]
		case strings.HasPrefix(line, "data: "):
			cur.Data = line[len("data: "):]
		}
	}
}
