package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/vigilnet/vigil/scitt"
)

// runVerifyReceipt checks a receipt for a statement offline.
// Exit 0: valid; 1: invalid (with the reason); 2: usage.
func runVerifyReceipt(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlagSet(env, "verify-receipt", "STATEMENT RECEIPT --log-key VKEY [--roster POLICY]\n"+
		"  VKEY is the service's receipt verifier key, name+hash+base64 (as printed by vigil log --init),\n"+
		"  given literally or as a file holding it, or a file holding the CBOR COSE_Key from\n"+
		"  /.well-known/scitt-keys/{kid} (then the receipt issuer is not checked).\n"+
		"  With --roster, RECEIPT is a witnessed receipt (GET /entries/{id}/witnessed-receipt) and its\n"+
		"  checkpoint must carry the log's signature and the witness quorum of POLICY (a C2SP tlog-policy)")
	logKey := fs.String("log-key", "", "receipt verifier key (string or file)")
	rosterPath := fs.String("roster", "", "tlog-policy with the log's and witnesses' keys: verify a witnessed receipt")
	// Accept flags before, between or after the two positional arguments.
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 || *logKey == "" {
		fs.Usage()
		return errUsage
	}
	key, err := loadReceiptVerifier(*logKey)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	stmt, err := os.ReadFile(pos[0])
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	rcpt, err := os.ReadFile(pos[1])
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	if *rosterPath != "" {
		return verifyWitnessed(env, stmt, rcpt, key, *rosterPath)
	}
	if err := scitt.VerifyReceipt(stmt, rcpt, key); err != nil {
		return errInvalid(err)
	}
	r, _ := scitt.ParseReceipt(rcpt)
	fmt.Fprintf(env.stdout, "valid: entry %d of a tree of size %d in %s (subject %q)\n", r.Proof.Index, r.Proof.Size, r.Issuer, r.Subject)
	return nil
}

func loadReceiptVerifier(s string) (*scitt.PublicKey, error) {
	if b, err := os.ReadFile(s); err == nil {
		if k, err := scitt.ParsePublicKey(string(b)); err == nil {
			return k, nil
		}
		if k, err := scitt.ParseCOSEKey(b); err == nil {
			return k, nil
		}
		return nil, fmt.Errorf("%s holds neither a verifier key nor a COSE_Key", s)
	}
	if strings.Count(s, "+") < 2 {
		return nil, errors.New("--log-key is neither a readable file nor a verifier key")
	}
	return scitt.ParsePublicKey(s)
}
