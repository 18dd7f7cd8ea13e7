package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/vigilnet/vigil/node"
)

func runKeygen(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlagSet(env, "keygen", "--name NAME [--out DIR]")
	name := fs.String("name", "", "cosigner name, a schema-less URL such as witness.example.com/vigil (required)")
	out := fs.String("out", "vigil-keys", "directory to write witness.key, witness.vkey, witness-mldsa.key, witness-mldsa.vkey and p2p.key into")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *name == "" || fs.NArg() != 0 {
		fs.Usage()
		return errUsage
	}
	vkeys, err := node.GenerateAllKeys(*out, *name)
	if errors.Is(err, node.ErrKeysExist) {
		return fmt.Errorf("%w; refusing to overwrite", err)
	}
	if err != nil {
		return err
	}
	keys, err := node.LoadKeys(*out, false)
	if err != nil {
		return err
	}
	id, err := peer.IDFromPrivateKey(keys.P2P)
	if err != nil {
		return err
	}
	// Both keys sign by default (witness.cosignature_types); a roster
	// lists either, or both under two witness names in an "any" group.
	fmt.Fprintf(env.stdout, "wrote %s/{witness.key,witness.vkey,witness-mldsa.key,witness-mldsa.vkey,p2p.key}\n"+
		"cosigner verifier key, Ed25519 cosignature/v1 (share it in the roster):\n%s\n"+
		"cosigner verifier key, ML-DSA-44 (share it in the roster):\n%s\n"+
		"libp2p peer ID (share it in the peers file):\n%s\n", *out, vkeys.Ed25519, vkeys.MLDSA, id)
	return nil
}
