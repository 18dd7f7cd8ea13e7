package testnet

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/vigilnet/vigil/node"
)

// KeyTypes are the values of Options.RosterKeys and of a member's
// cosignature types: the Ed25519 key, the ML-DSA-44 key, or both.
var KeyTypes = []string{node.CosignEd25519, node.CosignMLDSA, node.CosignBoth}

// ErrKeyType is returned for a key type that is not one of KeyTypes.
var ErrKeyType = errors.New("key type is not ed25519, mldsa or both")

// CheckKeyType checks that v is one of KeyTypes (or empty, the default).
func CheckKeyType(v string) error {
	if v == "" || slices.Contains(KeyTypes, v) {
		return nil
	}
	return fmt.Errorf("%w: %q", ErrKeyType, v)
}

// signsWith reports whether a witness with cosignature types t (empty is
// the default, both) signs with key type k (ed25519 or mldsa).
func signsWith(t, k string) bool {
	return t == "" || t == node.CosignBoth || t == k
}

// rosterWitness writes member m's witness lines into policy for the roster
// key type rosterKeys and returns the name the quorum group counts it by.
// Under "both" the roster lists each of its two keys (NAME-ed, NAME-ml)
// and an "any" group NAME of the two, so each witness counts once
// whichever of its keys cosigned (docs/operations.md, rotating the roster).
// It sets m.VKey to the roster key the member signs with, Ed25519 first:
// the key a client asking it for cosignatures verifies.
func rosterWitness(policy *strings.Builder, m *Member, v node.VKeys, rosterKeys, types string) string {
	switch rosterKeys {
	case node.CosignMLDSA:
		m.VKey = v.MLDSA
	case node.CosignBoth:
		m.VKey = v.Ed25519
		if !signsWith(types, node.CosignEd25519) {
			m.VKey = v.MLDSA
		}
		fmt.Fprintf(policy, "witness %s-ed %s\nwitness %s-ml %s\ngroup %s any %s-ed %s-ml\n",
			m.Name, v.Ed25519, m.Name, v.MLDSA, m.Name, m.Name, m.Name)
		return m.Name
	default:
		m.VKey = v.Ed25519
	}
	fmt.Fprintf(policy, "witness %s %s\n", m.Name, m.VKey)
	return m.Name
}

// rosterCosignatures is how many of its roster keys a witness with
// cosignature types t signs with.
func rosterCosignatures(rosterKeys, t string) int {
	switch rosterKeys {
	case node.CosignMLDSA:
		return b2i(signsWith(t, node.CosignMLDSA))
	case node.CosignBoth:
		return b2i(signsWith(t, node.CosignEd25519)) + b2i(signsWith(t, node.CosignMLDSA))
	default:
		return b2i(signsWith(t, node.CosignEd25519))
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// QuorumCosignatures is the fewest roster cosignatures a quorum of the
// network's witnesses makes: the k to ask a feed for (?k=N counts roster
// keys, and under a "both" roster a witness signing with both keys
// contributes two). It equals Quorum when the roster lists one key per
// witness and every witness signs with it.
func (nw *Network) QuorumCosignatures() int {
	var per []int
	for _, m := range nw.Members {
		if m.Role == Witness {
			per = append(per, rosterCosignatures(nw.opts.RosterKeys, nw.cosignatureTypes(m)))
		}
	}
	slices.Sort(per)
	k := 0
	for _, c := range per[:min(nw.quorum, len(per))] {
		k += c
	}
	return k
}

// cosignatureTypes is member m's witness.cosignature_types.
func (nw *Network) cosignatureTypes(m *Member) string {
	if nw.opts.CosignatureTypes == nil {
		return ""
	}
	return nw.opts.CosignatureTypes(m.Index)
}

// checkKeyOptions checks opts.RosterKeys and every witness's cosignature
// types, and that at least a quorum of witnesses signs with a key the
// roster lists (otherwise no checkpoint could ever be witnessed).
func checkKeyOptions(opts Options) error {
	if err := CheckKeyType(opts.RosterKeys); err != nil {
		return fmt.Errorf("testnet: roster keys: %w", err)
	}
	for i := 0; i < opts.Witnesses; i++ {
		if opts.CosignatureTypes == nil {
			break
		}
		t := opts.CosignatureTypes(i)
		if err := CheckKeyType(t); err != nil {
			return fmt.Errorf("testnet: witness %d's cosignature types: %w", i, err)
		}
		if rosterCosignatures(opts.RosterKeys, t) == 0 {
			return fmt.Errorf("testnet: witness %d signs with %s only, a key type the %s roster does not list", i, t, opts.RosterKeys)
		}
	}
	return nil
}

// members maps roster witness names to the members they are, each once:
// under a "both" roster NAME-ed and NAME-ml are member NAME.
func (nw *Network) members(rosterNames []string) []string {
	var out []string
	for _, n := range rosterNames {
		if nw.opts.RosterKeys == node.CosignBoth {
			if b, ok := strings.CutSuffix(n, "-ed"); ok {
				n = b
			} else if b, ok := strings.CutSuffix(n, "-ml"); ok {
				n = b
			}
		}
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}
