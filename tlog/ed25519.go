package tlog

import (
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"strings"

	voi "github.com/oasisprotocol/curve25519-voi/primitives/ed25519"
	"golang.org/x/mod/sumdb/note"
)

// Ed25519 verification is the witness's hot path: every add-checkpoint
// verifies the log's signature, and every gossiped note one or more
// cosignatures. crypto/ed25519 decompresses the public key and builds its
// lookup table on every call; curve25519-voi keeps both in an expanded key
// made once per roster entry, which verifies in about two thirds of the
// time on this project's machines (docs/notes/benchmarks-history.md).
//
// The verification rules must be exactly crypto/ed25519's, so that no
// signature Vigil accepts is one another C2SP verifier rejects or the other
// way round: voi's VerifyOptionsStdLib is that rule set (cofactorless
// equation, canonical S, non-canonical A and small-order points accepted as
// crypto/ed25519 does), and a differential fuzz test holds the two together.

// stdlibRules makes voi verify exactly as crypto/ed25519.Verify does.
var stdlibRules = &voi.Options{Verify: voi.VerifyOptionsStdLib}

// ed25519Key is a public key expanded once for repeated verification.
type ed25519Key struct {
	pub      ed25519.PublicKey
	expanded *voi.ExpandedPublicKey
}

// newEd25519Key expands pub. Every 32-byte string is accepted here, as
// crypto/ed25519 accepts it as a key; one that is not a curve point fails
// every verification, also as in crypto/ed25519.
func newEd25519Key(pub []byte) (*ed25519Key, error) {
	if len(pub) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: Ed25519 public key of %d bytes", ErrBadKey, len(pub))
	}
	k := &ed25519Key{pub: ed25519.PublicKey(append([]byte(nil), pub...))}
	if e, err := voi.NewExpandedPublicKey(voi.PublicKey(k.pub)); err == nil {
		k.expanded = e
	}
	return k, nil
}

// verify reports whether sig is a valid Ed25519 signature of msg by k.
func (k *ed25519Key) verify(msg, sig []byte) bool {
	if k.expanded == nil {
		// Not a point voi can expand: let crypto/ed25519 decide, so the
		// outcome is its outcome by construction.
		return ed25519.Verify(k.pub, msg, sig)
	}
	return voi.VerifyExpandedWithOptions(k.expanded, msg, sig, stdlibRules)
}

// signEd25519 signs msg with priv. Ed25519 signatures are deterministic, so
// this is byte for byte what crypto/ed25519.Sign returns (tested), only
// faster.
func signEd25519(priv ed25519.PrivateKey, msg []byte) []byte {
	return voi.Sign(voi.PrivateKey(priv), msg)
}

// NewNoteVerifier returns a note.Verifier for a signed-note verifier key
// string. The key is parsed and checked by x/mod's note.NewVerifier, so it
// accepts and rejects exactly the keys that does; Ed25519 (type 0x01) keys
// then verify through an expanded key made once.
func NewNoteVerifier(vkey string) (note.Verifier, error) {
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, err
	}
	// <name>+<hex key hash>+<base64 key>: names hold no '+', base64 may.
	f := strings.SplitN(vkey, "+", 3)
	if len(f) != 3 {
		return v, nil
	}
	key, err := base64.StdEncoding.DecodeString(f[2])
	if err != nil || len(key) != 1+ed25519.PublicKeySize || key[0] != AlgEd25519 {
		return v, nil
	}
	k, err := newEd25519Key(key[1:])
	if err != nil {
		return v, nil
	}
	return &noteVerifier{name: v.Name(), hash: v.KeyHash(), key: k}, nil
}

// noteVerifier verifies Ed25519 (type 0x01) signed-note signatures.
type noteVerifier struct {
	name string
	hash uint32
	key  *ed25519Key
}

func (v *noteVerifier) Name() string                { return v.name }
func (v *noteVerifier) KeyHash() uint32             { return v.hash }
func (v *noteVerifier) Verify(msg, sig []byte) bool { return v.key.verify(msg, sig) }

// Ed25519Key is an Ed25519 public key expanded once, for checking many
// signatures by one key exactly as crypto/ed25519.Verify would (gossip uses
// it for the libp2p peer keys that sign every pubsub message).
type Ed25519Key struct{ k *ed25519Key }

// NewEd25519Key expands a 32-byte Ed25519 public key.
func NewEd25519Key(pub []byte) (*Ed25519Key, error) {
	k, err := newEd25519Key(pub)
	if err != nil {
		return nil, err
	}
	return &Ed25519Key{k}, nil
}

// Verify reports whether sig is a valid signature of msg by k.
func (k *Ed25519Key) Verify(msg, sig []byte) bool { return k.k.verify(msg, sig) }
