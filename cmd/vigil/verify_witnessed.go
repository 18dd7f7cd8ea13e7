package main

import (
	"fmt"

	"github.com/vigilnet/vigil/scitt"
)

// verifyWitnessed is vigil verify-receipt --roster: the witnessed receipt
// must prove the statement's inclusion under the service's receipt key, and
// its checkpoint must be signed by a log of the policy, carry the policy's
// witness quorum, and be the receipt's tree or extend it.
func verifyWitnessed(env *cliEnv, stmt, witnessed []byte, key *scitt.PublicKey, policyPath string) error {
	r, err := loadPolicy(policyPath)
	if err != nil {
		return err
	}
	res, err := scitt.VerifyWitnessedReceipt(stmt, witnessed, key, r)
	if err != nil {
		return errInvalid(err)
	}
	cos, quorum := describeWitnesses(r, res.Cosigners)
	fmt.Fprintf(env.stdout, "valid: entry %d of a tree of size %d in %s (subject %q), witnessed: checkpoint of %s at size %d cosigned by %s (quorum %s met)\n",
		res.Receipt.Proof.Index, res.Receipt.Proof.Size, res.Receipt.Issuer, res.Receipt.Subject,
		res.Checkpoint.Origin, res.Checkpoint.Size, cos, quorum)
	return nil
}
