package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/vigilnet/vigil/scitt"
)

// runSubmit signs a statement and registers it with a transparency service.
func runSubmit(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlagSet(env, "submit", "--key K --kind KIND --log URL [flags] FILE\n       vigil submit --new-key ISSUER --key K")
	keyPath := fs.String("key", "", "issuer signing key file")
	newKey := fs.String("new-key", "", "create an issuer key named ISSUER at --key (and --key.pub for the policy) and exit")
	kindName := fs.String("kind", "", "statement kind: inventory, configuration, endorsement or evidence")
	logURL := fs.String("log", "", "transparency service URL, e.g. http://127.0.0.1:7390")
	subject := fs.String("subject", "", "statement subject (CWT sub; default file:<base name of FILE>)")
	hashEnv := fs.Bool("hash-envelope", false, "register only the SHA-256 of FILE (hash envelope); the content stays with you")
	location := fs.String("location", "", "with --hash-envelope: where the content can be found")
	out := fs.String("out", "", "receipt output file (default FILE.receipt)")
	stmtOut := fs.String("statement-out", "", "signed statement output file (default FILE.cose)")
	timeout := fs.Duration("timeout", time.Minute, "how long to wait for the receipt")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *keyPath == "" {
		fs.Usage()
		return errUsage
	}
	if *newKey != "" {
		vkey, err := writeNewKey(*keyPath, *newKey)
		if err != nil {
			return err
		}
		fmt.Fprintf(env.stdout, "issuer verifier key (list it in the service's policy): %s\n", vkey)
		return nil
	}
	if fs.NArg() != 1 || *kindName == "" || *logURL == "" {
		fs.Usage()
		return errUsage
	}
	file := fs.Arg(0)
	kind, err := scitt.ParseKind(*kindName)
	if err != nil {
		return err
	}
	key, err := readPrivateKey(*keyPath)
	if err != nil {
		return fmt.Errorf("issuer key: %w", err)
	}
	content, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	if *subject == "" {
		*subject = "file:" + filepath.Base(file)
	}
	stmt, err := scitt.SignStatement(key, *subject, kind, content, scitt.SignOptions{HashEnvelope: *hashEnv, Location: *location})
	if err != nil {
		return err
	}
	if *stmtOut == "" {
		*stmtOut = file + ".cose"
	}
	if *out == "" {
		*out = file + ".receipt"
	}
	if err := os.WriteFile(*stmtOut, stmt, 0o644); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	base, err := url.Parse(*logURL)
	if err != nil {
		return fmt.Errorf("--log: %w", err)
	}
	loc, rcpt, err := scitt.Register(ctx, base, stmt)
	if err != nil {
		return err
	}
	if err := os.WriteFile(*out, rcpt, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "registered %s\nstatement: %s\nreceipt:   %s\n", base.ResolveReference(&url.URL{Path: loc}), *stmtOut, *out)
	return nil
}
