package main

import (
	"fmt"
	"strings"

	"github.com/vigilnet/vigil/roster"
)

// What verify-proof and verify-receipt --roster share: loading the
// tlog-policy, the exit code of an invalid proof and the words for its
// witnesses.

// loadPolicy loads a C2SP tlog-policy; an unreadable one exits 2.
func loadPolicy(path string) (*roster.Roster, error) {
	r, err := roster.Load(path)
	if err != nil {
		return nil, &exitError{code: 2, err: err}
	}
	return r, nil
}

// errInvalid is the exit-1 error of a proof or receipt that does not verify.
func errInvalid(err error) error {
	return &exitError{code: 1, err: fmt.Errorf("invalid: %w", err)}
}

// describeWitnesses names the cosigners a checkpoint was verified with
// ("no witness" for none) and the policy's quorum ("none" without one).
func describeWitnesses(r *roster.Roster, cosigners []string) (cos, quorum string) {
	quorum = r.Quorum()
	if quorum == "" {
		quorum = "none"
	}
	cos = strings.Join(cosigners, " ")
	if cos == "" {
		cos = "no witness"
	}
	return cos, quorum
}
