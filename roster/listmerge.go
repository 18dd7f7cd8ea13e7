package roster

// ListChange is what a re-fetched logs/v0 list would change of the logs
// already configured, and what MergeListLogs does with it.
type ListChange struct {
	// Added are logs whose origin was not configured: they are adopted.
	Added []*Log
	// Ignored are entries for a configured origin whose key differs from
	// the configured log's, or whose qpd differs from a qpd the configured
	// log already has: the configured log stays as it is.
	Ignored []*Log
}

// MergeListLogs adds to configured the logs of a fetched list whose origin
// is not configured yet, and reports the entries it ignored. A log absent
// from the list stays configured, and a configured log is never changed:
//
// SPEC (witness-network log lists): "You must not remove or update an
// already configured log as a result of a changed list."
//
// configured is not modified; the result is a new map.
func MergeListLogs(configured map[string]*Log, fetched []*Log) (map[string]*Log, ListChange) {
	out := make(map[string]*Log, len(configured)+len(fetched))
	for k, v := range configured {
		out[k] = v
	}
	var ch ListChange
	for _, l := range fetched {
		prev, ok := out[l.Origin]
		switch {
		case !ok:
			out[l.Origin] = l
			ch.Added = append(ch.Added, l)
		case prev.VKey != l.VKey || prev.QPD != 0 && prev.QPD != l.QPD:
			ch.Ignored = append(ch.Ignored, l)
		}
	}
	return out, ch
}
