package feed

import (
	"slices"
)

// Contested says why a log is contested: the node holds evidence against it
// or an unproven divergence of it is open. Sizes are the tree sizes of the
// conflicting checkpoints, ascending; Evidence and Suspicions are the IDs
// of the evidence and of the open divergences that make it contested.
type Contested struct {
	Sizes      []uint64 `json:"sizes"`
	Evidence   []string `json:"evidence"`
	Suspicions []string `json:"suspicions"`
}

// contestedOf returns why origin is contested given the node's evidence and
// suspicions, or nil if it is not. Evidence never expires, so a log with
// evidence stays contested; a divergence contests it while it is open.
func contestedOf(origin string, evidence []Evidence, suspicions []Suspicion) *Contested {
	var c Contested
	for _, e := range evidence {
		if e.Origin != origin {
			continue
		}
		c.Evidence = append(c.Evidence, e.ID)
		c.Sizes = append(c.Sizes, e.Sizes...)
	}
	for _, s := range suspicions {
		if s.Origin != origin || !s.Open || s.Other == nil {
			continue
		}
		c.Suspicions = append(c.Suspicions, s.ID)
		c.Sizes = append(c.Sizes, s.Size, s.Other.Size)
	}
	if len(c.Evidence) == 0 && len(c.Suspicions) == 0 {
		return nil
	}
	slices.Sort(c.Sizes)
	c.Sizes = slices.Compact(c.Sizes)
	if c.Sizes == nil {
		c.Sizes = []uint64{}
	}
	if c.Evidence == nil {
		c.Evidence = []string{}
	}
	if c.Suspicions == nil {
		c.Suspicions = []string{}
	}
	slices.Sort(c.Evidence)
	slices.Sort(c.Suspicions)
	return &c
}

// contested returns why origin is contested from the evidence and
// suspicion lists the feed last read, or nil.
func (f *Feed) contested(origin string) *Contested {
	f.stateMu.Lock()
	defer f.stateMu.Unlock()
	return contestedOf(origin, f.evidence, f.suspicionsRead)
}
