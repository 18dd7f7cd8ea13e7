// Package roster holds the network's shared list of the logs Vigil watches and
// the witnesses whose cosignatures count, read from a C2SP tlog-policy file
// (c2sp.org/tlog-policy) and from witness-network logs/v0 lists.
package roster

import (
	"errors"
	"sort"

	"golang.org/x/mod/sumdb/note"
)

// ErrSyntax is returned (wrapped, with the line number) for a file that does
// not parse.
var ErrSyntax = errors.New("roster syntax error")

// Log is one watched transparency log.
type Log struct {
	// Origin is the checkpoint origin line; it equals the key name.
	Origin string
	// VKey is the log's note verifier key string (type 0x01).
	VKey     string
	Verifier note.Verifier
	// URL is the tlog-tiles prefix to pull from; empty if the log only pushes.
	URL string
	// QPD is the add-checkpoint budget per day from a logs/v0 list; 0 if unset.
	QPD float64
	// Contact is the logs/v0 list's contact line; empty for a policy log.
	Contact string
}

// Witness is one cosigner whose cosignatures count towards the quorum.
type Witness struct {
	// Name is the policy-local name used by groups.
	Name string
	// VKey is the cosignature verifier key string: type 0x04 (Ed25519
	// cosignature/v1) or 0x06 (ML-DSA-44 subtree/v1).
	VKey     string
	Verifier note.Verifier
	// URL is the witness's submission prefix, if known.
	URL string
}

// Group is a k-of-n threshold over witnesses and earlier groups.
type Group struct {
	Name    string
	K       int
	Members []string
}

// Roster is an immutable, parsed roster. Build a new one to change it.
type Roster struct {
	logs      map[string]*Log
	witnesses map[string]*Witness
	groups    map[string]*Group
	// byKey maps a witness cosignature key (name, key ID) to its policy name.
	byKey  map[keyRef]string
	quorum string
}

type keyRef struct {
	name string
	hash uint32
}

// Empty returns a roster with no logs and no witnesses.
func Empty() *Roster {
	return &Roster{logs: map[string]*Log{}, witnesses: map[string]*Witness{}, groups: map[string]*Group{}, byKey: map[keyRef]string{}}
}

// Log returns the log with the given origin.
func (r *Roster) Log(origin string) (*Log, bool) {
	l, ok := r.logs[origin]
	return l, ok
}

// Logs returns every log, sorted by origin.
func (r *Roster) Logs() []*Log {
	out := make([]*Log, 0, len(r.logs))
	for _, l := range r.logs {
		out = append(out, l)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Origin < out[j].Origin })
	return out
}

// Witnesses returns every witness, sorted by name.
func (r *Roster) Witnesses() []*Witness {
	out := make([]*Witness, 0, len(r.witnesses))
	for _, w := range r.witnesses {
		out = append(out, w)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Witness returns the witness with the given policy name.
func (r *Roster) Witness(name string) (*Witness, bool) {
	w, ok := r.witnesses[name]
	return w, ok
}

// WitnessByKey returns the witness whose cosignature key has the given
// signature-line name and key ID.
func (r *Roster) WitnessByKey(keyName string, keyID uint32) (*Witness, bool) {
	n, ok := r.byKey[keyRef{keyName, keyID}]
	if !ok {
		return nil, false
	}
	return r.witnesses[n], true
}

// WitnessVerifiers returns the cosignature verifiers of every witness.
func (r *Roster) WitnessVerifiers() []note.Verifier {
	ws := r.Witnesses()
	out := make([]note.Verifier, len(ws))
	for i, w := range ws {
		out[i] = w.Verifier
	}
	return out
}

// Quorum returns the name of the quorum group, or "" when the policy sets none.
func (r *Roster) Quorum() string { return r.quorum }

// QuorumMet reports whether the set of witnesses (by policy name) that
// validly cosigned a checkpoint satisfies the policy's quorum. With no quorum
// configured it reports true.
func (r *Roster) QuorumMet(cosigned map[string]bool) bool {
	if r.quorum == "" {
		return true
	}
	return r.satisfied(r.quorum, cosigned)
}

func (r *Roster) satisfied(name string, cosigned map[string]bool) bool {
	if _, ok := r.witnesses[name]; ok {
		return cosigned[name]
	}
	g := r.groups[name]
	n := 0
	for _, m := range g.Members {
		if r.satisfied(m, cosigned) {
			n++
		}
	}
	return n >= g.K
}
