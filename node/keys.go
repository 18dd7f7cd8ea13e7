package node

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/libp2p/go-libp2p/core/crypto"
	"golang.org/x/mod/sumdb/note"

	"github.com/vigilnet/vigil/roster"
	"github.com/vigilnet/vigil/tlog"
)

// Key file names inside a keys directory. Each key has one purpose
// (design invariant 5): the cosigning key signs cosignatures only, the libp2p
// identity key authenticates gossip only.
const (
	WitnessKeyFile  = "witness.key"
	WitnessVKeyFile = "witness.vkey"
	// MLDSAKeyFile and MLDSAVKeyFile hold the ML-DSA-44 cosigning key
	// (type 0x06), under the same cosigner name as witness.key.
	MLDSAKeyFile  = "witness-mldsa.key"
	MLDSAVKeyFile = "witness-mldsa.vkey"
	P2PKeyFile    = "p2p.key"
)

// ErrKeysExist is returned by GenerateKeys when it would overwrite a key.
var ErrKeysExist = errors.New("key file already exists")

// ErrKeyReadable is returned by LoadKeysWith for a private key file that
// group or others may read.
var ErrKeyReadable = errors.New("private key file is readable by group or others")

// ErrKeyMismatch is returned by LoadKeysWith when witness.vkey is not the
// verifier key of witness.key.
var ErrKeyMismatch = errors.New("verifier key does not match the cosigning key")

// Keys are a node's loaded keys.
type Keys struct {
	// Cosigner is the Ed25519 cosignature/v1 key; nil for an observer
	// without a witness key.
	Cosigner *tlog.CosignatureSigner
	// MLDSA is the ML-DSA-44 subtree/v1 key; nil for an observer, or for a
	// keys directory made before vigil keygen wrote one.
	MLDSA *tlog.MLDSASigner
	// P2P is the libp2p identity.
	P2P crypto.PrivKey
}

// GenerateKeys creates both cosigning keys named name (Ed25519 and
// ML-DSA-44) and a separate libp2p identity key in dir, and returns the
// Ed25519 verifier key. It refuses to overwrite existing keys.
func GenerateKeys(dir, name string) (vkey string, err error) {
	v, err := GenerateAllKeys(dir, name)
	return v.Ed25519, err
}

// VKeys are a witness's two cosignature verifier keys.
type VKeys struct {
	Ed25519 string // type 0x04, cosignature/v1
	MLDSA   string // type 0x06, ML-DSA-44 subtree/v1
}

// GenerateAllKeys is GenerateKeys returning both verifier keys.
func GenerateAllKeys(dir, name string) (VKeys, error) {
	skey, vkey, err := tlog.GenerateCosignerKey(rand.Reader, name)
	if err != nil {
		return VKeys{}, err
	}
	mskey, mvkey, err := tlog.GenerateMLDSACosignerKey(name)
	if err != nil {
		return VKeys{}, err
	}
	p2p, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return VKeys{}, fmt.Errorf("generating libp2p key: %w", err)
	}
	p2pBytes, err := crypto.MarshalPrivateKey(p2p)
	if err != nil {
		return VKeys{}, fmt.Errorf("encoding libp2p key: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return VKeys{}, fmt.Errorf("creating keys directory: %w", err)
	}
	for _, f := range []string{WitnessKeyFile, WitnessVKeyFile, MLDSAKeyFile, MLDSAVKeyFile, P2PKeyFile} {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			return VKeys{}, fmt.Errorf("%w: %s (remove it first to replace it)", ErrKeysExist, filepath.Join(dir, f))
		}
	}
	files := []struct {
		name string
		data []byte
		mode os.FileMode
	}{
		{WitnessKeyFile, []byte(skey + "\n"), 0o600},
		{MLDSAKeyFile, []byte(mskey + "\n"), 0o600},
		{P2PKeyFile, p2pBytes, 0o600},
		{WitnessVKeyFile, []byte(vkey + "\n"), 0o644},
		{MLDSAVKeyFile, []byte(mvkey + "\n"), 0o644},
	}
	for _, f := range files {
		if err := writeNew(filepath.Join(dir, f.name), f.data, f.mode); err != nil {
			return VKeys{}, err
		}
	}
	return VKeys{Ed25519: vkey, MLDSA: mvkey}, nil
}

// writeNew creates path exclusively, so a concurrent keygen cannot clobber it.
func writeNew(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%w: %s", ErrKeysExist, path)
		}
		return fmt.Errorf("writing key: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("writing key: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("writing key: %w", err)
	}
	return f.Close()
}

// KeyOptions tune LoadKeysWith.
type KeyOptions struct {
	// Observer loads no cosigning key.
	Observer bool
	// AllowReadable accepts private key files that group or others may
	// read, with a warning, instead of refusing them.
	AllowReadable bool
	Logger        *slog.Logger
}

// LoadKeys reads the keys in dir. The cosigning key is required unless
// observer is set; the libp2p key is required always. It is LoadKeysWith
// with the default checks.
func LoadKeys(dir string, observer bool) (*Keys, error) {
	return LoadKeysWith(dir, KeyOptions{Observer: observer})
}

// LoadKeysWith reads the keys in dir. Private key files readable by group
// or others are refused (ErrKeyReadable) unless opts.AllowReadable is set,
// and a witness.vkey beside witness.key must be its verifier key
// (ErrKeyMismatch): a roster built from a stale witness.vkey would not
// count this witness's cosignatures.
func LoadKeysWith(dir string, opts KeyOptions) (*Keys, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	k := &Keys{}
	if !opts.Observer {
		path := filepath.Join(dir, WitnessKeyFile)
		b, err := readPrivate(path, opts.AllowReadable, log)
		if err != nil {
			return nil, fmt.Errorf("reading cosigning key (create one with vigil keygen, or run with --observer): %w", err)
		}
		if k.Cosigner, err = tlog.NewCosignatureSigner(strings.TrimSpace(string(b)), nil); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		vpath := filepath.Join(dir, WitnessVKeyFile)
		switch vb, err := os.ReadFile(vpath); {
		case errors.Is(err, fs.ErrNotExist):
			// witness.vkey is a copy for the operator; it may be gone.
		case err != nil:
			return nil, fmt.Errorf("reading verifier key: %w", err)
		case strings.TrimSpace(string(vb)) != k.Cosigner.VerifierKey():
			return nil, fmt.Errorf("%w: %s is not the verifier key of %s (which is %s); remove %s or restore the matching pair", ErrKeyMismatch, vpath, path, k.Cosigner.VerifierKey(), vpath)
		}
		if k.MLDSA, err = loadMLDSA(dir, opts.AllowReadable, log); err != nil {
			return nil, err
		}
		if k.MLDSA != nil && k.MLDSA.Name() != k.Cosigner.Name() {
			return nil, fmt.Errorf("%w: %s names cosigner %q, %s names %q", ErrKeyMismatch, MLDSAKeyFile, k.MLDSA.Name(), WitnessKeyFile, k.Cosigner.Name())
		}
	}
	path := filepath.Join(dir, P2PKeyFile)
	b, err := readPrivate(path, opts.AllowReadable, log)
	if err != nil {
		return nil, fmt.Errorf("reading libp2p key (create one with vigil keygen): %w", err)
	}
	if k.P2P, err = crypto.UnmarshalPrivateKey(b); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

// readPrivate reads a private key file, refusing one that group or others
// may read unless allow is set.
func readPrivate(path string, allow bool, log *slog.Logger) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		if !allow {
			return nil, fmt.Errorf("%w: %s has mode %04o; run: chmod 600 %s (or set allow_readable_keys to accept it)", ErrKeyReadable, path, perm, path)
		}
		log.Warn("private key file is readable by group or others; run chmod 600 on it", "path", path, "mode", fmt.Sprintf("%04o", perm))
	}
	return io.ReadAll(f)
}

// loadMLDSA reads the ML-DSA-44 cosigning key, if the directory has one,
// and checks witness-mldsa.vkey against it as LoadKeysWith does for
// witness.vkey.
func loadMLDSA(dir string, allowReadable bool, log *slog.Logger) (*tlog.MLDSASigner, error) {
	path := filepath.Join(dir, MLDSAKeyFile)
	b, err := readPrivate(path, allowReadable, log)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading ML-DSA cosigning key: %w", err)
	}
	s, err := tlog.NewMLDSASigner(strings.TrimSpace(string(b)), nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	vpath := filepath.Join(dir, MLDSAVKeyFile)
	switch vb, err := os.ReadFile(vpath); {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("reading verifier key: %w", err)
	case strings.TrimSpace(string(vb)) != s.VerifierKey():
		return nil, fmt.Errorf("%w: %s is not the verifier key of %s; remove %s or restore the matching pair", ErrKeyMismatch, vpath, path, vpath)
	}
	return s, nil
}

// Cosignature types a witness signs with (witness.cosignature_types).
const (
	// CosignEd25519 signs Ed25519 cosignature/v1 (type 0x04) only.
	CosignEd25519 = "ed25519"
	// CosignMLDSA signs ML-DSA-44 subtree/v1 (type 0x06) only.
	CosignMLDSA = "mldsa"
	// CosignBoth signs both, the Ed25519 line first.
	CosignBoth = "both"
)

// ErrNoCosigningKey is returned by Signers when the configured cosignature
// type has no key in the keys directory.
var ErrNoCosigningKey = errors.New("no cosigning key of the configured type")

// Signers returns the keys the witness cosigns with for the configured
// types: ed25519, mldsa or both. The empty value is the default, both,
// except that a keys directory holding only witness.key (made before
// vigil keygen wrote the ML-DSA key) signs with Ed25519 alone rather than
// refusing to start; an explicit "both" or "mldsa" requires the ML-DSA key.
func (k *Keys) Signers(types string) ([]tlog.CosignerSigner, error) {
	var out []tlog.CosignerSigner
	switch types {
	case "":
		if k.Cosigner != nil {
			out = append(out, k.Cosigner)
		}
		if k.MLDSA != nil {
			out = append(out, k.MLDSA)
		}
	case CosignBoth, CosignEd25519, CosignMLDSA:
		if types != CosignMLDSA {
			if k.Cosigner == nil {
				return nil, fmt.Errorf("%w: witness.cosignature_types %s needs %s", ErrNoCosigningKey, types, WitnessKeyFile)
			}
			out = append(out, k.Cosigner)
		}
		if types != CosignEd25519 {
			if k.MLDSA == nil {
				return nil, fmt.Errorf("%w: witness.cosignature_types %s needs %s (vigil keygen writes it; or set cosignature_types: ed25519)", ErrNoCosigningKey, types, MLDSAKeyFile)
			}
			out = append(out, k.MLDSA)
		}
	default:
		return nil, fmt.Errorf("witness.cosignature_types %q is not ed25519, mldsa or both", types)
	}
	if len(out) == 0 {
		return nil, ErrNoCosigningKey
	}
	return out, nil
}

// OwnVKey is the verifier key the node recognises its own cosignatures by
// (own history, its recovery from peers, the feed): the first key it signs
// with that the roster r lists as a witness, else the first key it signs
// with. Peers keep and answer for roster keys' cosignatures only, so under
// an ML-DSA-only roster a witness signing with both keys must recover by
// its ML-DSA key.
func (k *Keys) OwnVKey(types string, r *roster.Roster) string {
	s, err := k.Signers(types)
	if err != nil || len(s) == 0 {
		if k.Cosigner != nil {
			return k.Cosigner.VerifierKey()
		}
		return ""
	}
	if r != nil {
		for _, x := range s {
			for _, w := range r.Witnesses() {
				if w.VKey == x.VerifierKey() {
					return w.VKey
				}
			}
		}
	}
	return s[0].VerifierKey()
}

func noteSigners(s []tlog.CosignerSigner) []note.Signer {
	out := make([]note.Signer, len(s))
	for i, x := range s {
		out[i] = x
	}
	return out
}
