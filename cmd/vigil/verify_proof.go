package main

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/vigilnet/vigil/scitt"
	"github.com/vigilnet/vigil/tlog/tlogproof"
)

// runVerifyProof checks a C2SP tlog-proof file offline against a
// tlog-policy: the log's signature, the witness quorum and the entry's
// inclusion. Exit 0: valid; 1: invalid (with the reason); 2: usage or
// unreadable input.
func runVerifyProof(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlagSet(env, "verify-proof", "FILE.tlog-proof --policy POLICY (--entry FILE | --statement FILE | --leaf-hash HASH)\n"+
		"  POLICY is a C2SP tlog-policy naming the log's key, the witnesses' keys and the quorum.\n"+
		"  The entry is given as its bytes (--entry), as a SCITT signed or transparent statement whose\n"+
		"  log entry Vigil's transparency service defines (--statement), or as its RFC 6962 leaf hash\n"+
		"  SHA-256(0x00 || entry), base64 or hex (--leaf-hash; a transparency service's entry id)")
	policyPath := fs.String("policy", "", "tlog-policy file with the log's and witnesses' keys and the quorum")
	entryPath := fs.String("entry", "", "file holding the log entry's bytes")
	stmtPath := fs.String("statement", "", "file holding a SCITT signed (or transparent) statement")
	leafHash := fs.String("leaf-hash", "", "the entry's leaf hash, base64 or hex")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	given := 0
	for _, s := range []string{*entryPath, *stmtPath, *leafHash} {
		if s != "" {
			given++
		}
	}
	if len(pos) != 1 || *policyPath == "" || given != 1 {
		fs.Usage()
		return errUsage
	}
	r, err := loadPolicy(*policyPath)
	if err != nil {
		return err
	}
	var leaf [32]byte
	switch {
	case *entryPath != "":
		b, err := os.ReadFile(*entryPath)
		if err != nil {
			return &exitError{code: 2, err: err}
		}
		leaf = tlogproof.LeafHash(b)
	case *stmtPath != "":
		b, err := os.ReadFile(*stmtPath)
		if err != nil {
			return &exitError{code: 2, err: err}
		}
		entry, err := scitt.EntryFor(b)
		if err != nil {
			return &exitError{code: 2, err: fmt.Errorf("reading statement: %w", err)}
		}
		leaf = tlogproof.LeafHash(entry)
	default:
		if leaf, err = parseLeafHash(*leafHash); err != nil {
			return &exitError{code: 2, err: err}
		}
	}
	b, err := readLimited(pos[0], tlogproof.MaxSize)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	p, err := tlogproof.Parse(b)
	if err != nil {
		return errInvalid(err)
	}
	res, err := tlogproof.Verify(p, leaf, r)
	if err != nil {
		return errInvalid(err)
	}
	cos, quorum := describeWitnesses(r, res.Cosigners)
	fmt.Fprintf(env.stdout, "valid: entry %d of %s, in the checkpoint of size %d signed by the log and cosigned by %s (quorum %s met)\n",
		p.Index, res.Checkpoint.Origin, res.Checkpoint.Size, cos, quorum)
	if p.Extra != nil {
		// SPEC: applications MUST NOT implicitly trust the extra data.
		fmt.Fprintf(env.stdout, "extra data (%d bytes) is not authenticated by the proof\n", len(p.Extra))
	}
	return nil
}

// parseLeafHash reads a 32-byte hash in base64 or hex.
func parseLeafHash(s string) ([32]byte, error) {
	s = strings.TrimSpace(s)
	if b, err := hex.DecodeString(s); err == nil && len(b) == 32 {
		return [32]byte(b), nil
	}
	if b, err := base64.StdEncoding.DecodeString(s); err == nil && len(b) == 32 {
		return [32]byte(b), nil
	}
	return [32]byte{}, errors.New("--leaf-hash is neither 64 hex digits nor base64 of 32 bytes")
}

// readLimited reads a file of at most limit bytes.
func readLimited(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() > limit {
		return nil, fmt.Errorf("%s is %d bytes, more than %d", path, st.Size(), limit)
	}
	b := make([]byte, st.Size())
	if _, err := f.ReadAt(b, 0); err != nil && st.Size() > 0 {
		return nil, err
	}
	return b, nil
}
