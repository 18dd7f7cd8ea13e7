package feed

import (
	"strconv"
	"strings"
	"time"
)

// dashFreshness is what the dashboard's log row shows of freshness and
// contested state. The row carries the state's age at render time and the
// thresholds, so the page's script moves it from fresh to late to stale on
// the browser's own clock, with no event needed.
type dashFreshness struct {
	FreshState string // fresh, late or stale
	// StateAge is the age the state follows, in seconds at render time.
	StateAge string
	// LateAfter and StaleAfter are the thresholds, in seconds.
	LateAfter, StaleAfter string
	// Age is StateAge for people ("5m"); NeverQuorum is set when no
	// checkpoint of the log reached a quorum (the age counts from when
	// the node started watching).
	Age         string
	NeverQuorum bool
	// ContestedSizes lists the conflicting sizes ("9, 12"), empty when
	// the log is not contested.
	ContestedSizes string
}

func (dl *dashLog) fill(now time.Time) {
	fr := dl.LogInfo.Freshness
	age := now.Sub(fr.Since)
	dl.FreshState = fr.State
	dl.StateAge = strconv.FormatFloat(seconds(age), 'f', -1, 64)
	dl.LateAfter = strconv.FormatFloat(fr.LateAfterSeconds, 'f', -1, 64)
	dl.StaleAfter = strconv.FormatFloat(fr.StaleAfterSeconds, 'f', -1, 64)
	dl.Age = humanAge(age)
	dl.NeverQuorum = fr.QuorumAgeSeconds == nil
	if c := dl.Contested; c != nil {
		s := make([]string, len(c.Sizes))
		for i, n := range c.Sizes {
			s[i] = strconv.FormatUint(n, 10)
		}
		dl.ContestedSizes = strings.Join(s, ", ")
	}
}
