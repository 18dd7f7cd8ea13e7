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
	out := fs.String("out", "vigil-keys", "directory to write witness.key, witness.vkey and p2p.key into")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *name == "" || fs.NArg() != 0 {
		fs.Usage()
		return errUsage
	}
	vkey, err := node.GenerateKeys(*out, *name)
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
	fmt.Fprintf(env.stdout, "wrote %s/{witness.key,witness.vkey,p2p.key}\ncosigner verifier key (share it in the roster):\n%s\nlibp2p peer ID (share it in the peers file):\n%s\n", *out, vkey, id)
	return nil
}
