package node_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	fnote "github.com/transparency-dev/formats/note"

	"github.com/vigilnet/vigil/node"
	"github.com/vigilnet/vigil/roster"
	"github.com/vigilnet/vigil/tlog"
)

// TestCosignatureTypes: keygen writes both cosigning keys; the configured
// types pick which sign, and a missing ML-DSA key is an error only when the
// configuration asks for it explicitly.
func TestCosignatureTypes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	vk, err := node.GenerateAllKeys(dir, "witness.test/both")
	if err != nil {
		t.Fatal(err)
	}
	if typ, err := tlog.CosignatureKeyType(vk.MLDSA); err != nil || typ != tlog.AlgCosignatureMLDSA {
		t.Fatalf("ML-DSA vkey type %x, %v", typ, err)
	}
	if _, err := fnote.NewVerifierForCosignatureV1(vk.MLDSA); err != nil {
		t.Fatalf("transparency-dev/formats rejects the ML-DSA vkey: %v", err)
	}
	st, err := os.Stat(filepath.Join(dir, node.MLDSAKeyFile))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("%s: %v, %v", node.MLDSAKeyFile, st, err)
	}
	k, err := node.LoadKeys(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	vkeys := func(types string) ([]string, error) {
		s, err := k.Signers(types)
		var out []string
		for _, x := range s {
			out = append(out, x.VerifierKey())
		}
		return out, err
	}
	for _, tc := range []struct {
		types string
		want  []string
	}{
		{"", []string{vk.Ed25519, vk.MLDSA}},
		{node.CosignBoth, []string{vk.Ed25519, vk.MLDSA}},
		{node.CosignEd25519, []string{vk.Ed25519}},
		{node.CosignMLDSA, []string{vk.MLDSA}},
	} {
		got, err := vkeys(tc.types)
		if err != nil || strings.Join(got, " ") != strings.Join(tc.want, " ") {
			t.Errorf("Signers(%q) = %d keys, %v; want %d", tc.types, len(got), err, len(tc.want))
		}
	}
	if k.OwnVKey(node.CosignMLDSA, nil) != vk.MLDSA || k.OwnVKey("", nil) != vk.Ed25519 {
		t.Error("OwnVKey without a roster is not the first signing key")
	}
	// Signing with both under an ML-DSA-only roster, the node knows its
	// own cosignatures by the key the roster lists.
	mlRoster, err := roster.ParsePolicy([]byte("witness me " + vk.MLDSA + "\nquorum me\n"))
	if err != nil {
		t.Fatal(err)
	}
	if k.OwnVKey("", mlRoster) != vk.MLDSA || k.OwnVKey(node.CosignEd25519, mlRoster) != vk.Ed25519 {
		t.Error("OwnVKey does not prefer the signing key the roster lists")
	}
	if _, err := k.Signers("rsa"); err == nil {
		t.Error("unknown type accepted")
	}

	// A keys directory from before the ML-DSA key: the default signs with
	// Ed25519, an explicit mldsa or both refuses with a clear error.
	for _, f := range []string{node.MLDSAKeyFile, node.MLDSAVKeyFile} {
		if err := os.Remove(filepath.Join(dir, f)); err != nil {
			t.Fatal(err)
		}
	}
	if k, err = node.LoadKeys(dir, false); err != nil || k.MLDSA != nil {
		t.Fatalf("old keys directory: %v, MLDSA %v", err, k.MLDSA)
	}
	if got, err := vkeys(""); err != nil || len(got) != 1 || got[0] != vk.Ed25519 {
		t.Fatalf("default on an old directory: %v, %v", got, err)
	}
	for _, types := range []string{node.CosignBoth, node.CosignMLDSA} {
		if _, err := k.Signers(types); !errors.Is(err, node.ErrNoCosigningKey) || !strings.Contains(err.Error(), node.MLDSAKeyFile) {
			t.Errorf("Signers(%s) without the ML-DSA key: %v", types, err)
		}
	}
}

// TestLoadKeysMLDSAMismatch: witness-mldsa.vkey must be the verifier key of
// witness-mldsa.key, and both keys must name the same cosigner.
func TestLoadKeysMLDSAMismatch(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	other := filepath.Join(t.TempDir(), "other")
	if _, err := node.GenerateAllKeys(dir, "witness.test/a"); err != nil {
		t.Fatal(err)
	}
	ovk, err := node.GenerateAllKeys(other, "witness.test/b")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, node.MLDSAVKeyFile), []byte(ovk.MLDSA+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := node.LoadKeys(dir, false); !errors.Is(err, node.ErrKeyMismatch) {
		t.Fatalf("stale witness-mldsa.vkey: %v", err)
	}
	os.Remove(filepath.Join(dir, node.MLDSAVKeyFile))
	b, err := os.ReadFile(filepath.Join(other, node.MLDSAKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, node.MLDSAKeyFile), b, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := node.LoadKeys(dir, false); !errors.Is(err, node.ErrKeyMismatch) || !strings.Contains(err.Error(), "witness.test/b") {
		t.Fatalf("ML-DSA key of another cosigner name: %v", err)
	}
}

// TestConfigCosignatureTypes: witness.cosignature_types takes ed25519,
// mldsa or both, and nothing else.
func TestConfigCosignatureTypes(t *testing.T) {
	for _, tc := range []struct {
		value string
		ok    bool
	}{{"ed25519", true}, {"mldsa", true}, {"both", true}, {`""`, true}, {"rsa", false}, {"ML-DSA", false}} {
		path := filepath.Join(t.TempDir(), "vigil.yaml")
		if err := os.WriteFile(path, []byte("witness:\n  cosignature_types: "+tc.value+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		cfg, err := node.LoadConfig(path)
		if (err == nil) != tc.ok {
			t.Errorf("cosignature_types %s: %v, want ok=%v", tc.value, err, tc.ok)
			continue
		}
		if err != nil && !strings.Contains(err.Error(), "cosignature_types") {
			t.Errorf("error %q does not name cosignature_types", err)
		}
		if err == nil && tc.value != `""` && cfg.Witness.CosignatureTypes != tc.value {
			t.Errorf("loaded %q, want %q", cfg.Witness.CosignatureTypes, tc.value)
		}
	}
}
