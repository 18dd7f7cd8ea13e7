package node_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"

	"github.com/vigilnet/vigil/node"
)

func TestGenerateKeys(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	vkey, err := node.GenerateKeys(dir, "witness.test/gen")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fnote.NewVerifierForCosignatureV1(vkey); err != nil {
		t.Fatalf("vkey %q is not a cosignature/v1 key: %v", vkey, err)
	}
	for _, tc := range []struct {
		file string
		mode os.FileMode
	}{
		{node.WitnessKeyFile, 0o600},
		{node.P2PKeyFile, 0o600},
	} {
		st, err := os.Stat(filepath.Join(dir, tc.file))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != tc.mode {
			t.Errorf("%s has mode %v, want %v", tc.file, st.Mode().Perm(), tc.mode)
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, node.WitnessVKeyFile))
	if err != nil || string(b) != vkey+"\n" {
		t.Fatalf("witness.vkey = %q, %v; want %q", b, err, vkey)
	}

	k, err := node.LoadKeys(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	if k.Cosigner == nil || k.Cosigner.VerifierKey() != vkey || k.P2P == nil {
		t.Fatalf("loaded keys do not match: %+v", k)
	}
	// Distinct keys for distinct purposes.
	p2pRaw, err := k.P2P.GetPublic().Raw()
	if err != nil {
		t.Fatal(err)
	}
	cosRaw, _ := base64.StdEncoding.DecodeString(strings.SplitN(vkey, "+", 3)[2])
	if len(cosRaw) != 1+ed25519.PublicKeySize || bytes.Equal(cosRaw[1:], p2pRaw) {
		t.Fatal("the libp2p identity key is the cosigning key")
	}
}

func TestGenerateKeysRefusesOverwrite(t *testing.T) {
	snapshot := func(t *testing.T, dir string) map[string]string {
		t.Helper()
		out := map[string]string{}
		ents, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			b, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			out[e.Name()] = string(b)
		}
		return out
	}
	for _, keep := range [][]string{
		{node.WitnessKeyFile, node.WitnessVKeyFile, node.P2PKeyFile},
		{node.WitnessKeyFile},
		{node.WitnessVKeyFile},
		{node.P2PKeyFile},
	} {
		t.Run(strings.Join(keep, "+"), func(t *testing.T) {
			dir := t.TempDir()
			if _, err := node.GenerateKeys(dir, "witness.test/first"); err != nil {
				t.Fatal(err)
			}
			for _, f := range []string{node.WitnessKeyFile, node.WitnessVKeyFile, node.P2PKeyFile} {
				if !contains(keep, f) {
					if err := os.Remove(filepath.Join(dir, f)); err != nil {
						t.Fatal(err)
					}
				}
			}
			before := snapshot(t, dir)
			_, err := node.GenerateKeys(dir, "witness.test/second")
			if !errors.Is(err, node.ErrKeysExist) {
				t.Fatalf("second GenerateKeys: %v, want ErrKeysExist", err)
			}
			if !strings.Contains(err.Error(), dir) {
				t.Fatalf("error %q does not name the file", err)
			}
			after := snapshot(t, dir)
			if len(before) != len(after) {
				t.Fatalf("files changed: %v -> %v", keysOf(before), keysOf(after))
			}
			for f, b := range before {
				if after[f] != b {
					t.Fatalf("%s was overwritten", f)
				}
			}
		})
	}
}

func TestGenerateKeysBadName(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	if _, err := node.GenerateKeys(dir, "has space"); err == nil {
		t.Fatal("accepted a key name with a space")
	}
	if _, err := os.Stat(filepath.Join(dir, node.WitnessKeyFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a key was written for a bad name: %v", err)
	}
}

func TestLoadKeysErrors(t *testing.T) {
	logSKey, _, err := note.GenerateKey(nil, "example.com/log")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		observer bool
		// setup edits a freshly generated keys directory.
		setup func(t *testing.T, dir string)
		// file is the key file the error must name; empty means success.
		file string
	}{
		{name: "witness.key missing", file: node.WitnessKeyFile,
			setup: func(t *testing.T, dir string) { remove(t, dir, node.WitnessKeyFile) }},
		{name: "witness.key garbage", file: node.WitnessKeyFile,
			setup: func(t *testing.T, dir string) { write(t, dir, node.WitnessKeyFile, "not a key\n") }},
		{name: "witness.key is a log key", file: node.WitnessKeyFile,
			setup: func(t *testing.T, dir string) { write(t, dir, node.WitnessKeyFile, logSKey+"\n") }},
		{name: "p2p.key missing", file: node.P2PKeyFile,
			setup: func(t *testing.T, dir string) { remove(t, dir, node.P2PKeyFile) }},
		{name: "p2p.key garbage", file: node.P2PKeyFile,
			setup: func(t *testing.T, dir string) { write(t, dir, node.P2PKeyFile, "garbage") }},
		{name: "observer without witness.key", observer: true,
			setup: func(t *testing.T, dir string) { remove(t, dir, node.WitnessKeyFile) }},
		{name: "observer still needs p2p.key", observer: true, file: node.P2PKeyFile,
			setup: func(t *testing.T, dir string) {
				remove(t, dir, node.WitnessKeyFile)
				remove(t, dir, node.P2PKeyFile)
			}},
		{name: "empty directory", file: node.WitnessKeyFile,
			setup: func(t *testing.T, dir string) {
				for _, f := range []string{node.WitnessKeyFile, node.WitnessVKeyFile, node.P2PKeyFile} {
					remove(t, dir, f)
				}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if _, err := node.GenerateKeys(dir, "witness.test/load"); err != nil {
				t.Fatal(err)
			}
			tc.setup(t, dir)
			k, err := node.LoadKeys(dir, tc.observer)
			if tc.file == "" {
				if err != nil {
					t.Fatal(err)
				}
				if k.Cosigner != nil || k.P2P == nil {
					t.Fatalf("observer keys: cosigner %v, p2p %v", k.Cosigner, k.P2P)
				}
				return
			}
			if err == nil {
				t.Fatal("LoadKeys succeeded")
			}
			if !strings.Contains(err.Error(), filepath.Join(dir, tc.file)) {
				t.Fatalf("error %q does not name %s", err, filepath.Join(dir, tc.file))
			}
		})
	}
}

func remove(t *testing.T, dir, f string) {
	t.Helper()
	if err := os.Remove(filepath.Join(dir, f)); err != nil {
		t.Fatal(err)
	}
}

func write(t *testing.T, dir, f, data string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, f), []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func keysOf(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// Private key files that group or others may read are refused with the
// command that fixes them, unless the operator accepts them.
func TestLoadKeysRefusesReadablePrivateKeys(t *testing.T) {
	for _, tc := range []struct {
		file string
		mode os.FileMode
	}{
		{node.WitnessKeyFile, 0o644},
		{node.WitnessKeyFile, 0o640},
		{node.P2PKeyFile, 0o604},
	} {
		t.Run(fmt.Sprintf("%s %04o", tc.file, tc.mode), func(t *testing.T) {
			dir := t.TempDir()
			if _, err := node.GenerateKeys(dir, "witness.test/perm"); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, tc.file)
			if err := os.Chmod(path, tc.mode); err != nil {
				t.Fatal(err)
			}
			_, err := node.LoadKeys(dir, false)
			if !errors.Is(err, node.ErrKeyReadable) {
				t.Fatalf("LoadKeys: %v, want ErrKeyReadable", err)
			}
			if !strings.Contains(err.Error(), "chmod 600 "+path) {
				t.Fatalf("error %q does not give the fix (chmod 600 %s)", err, path)
			}
			if _, err := node.LoadKeysWith(dir, node.KeyOptions{AllowReadable: true}); err != nil {
				t.Fatalf("with AllowReadable: %v", err)
			}
			if err := os.Chmod(path, 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := node.LoadKeys(dir, false); err != nil {
				t.Fatalf("after chmod 600: %v", err)
			}
		})
	}
}

// A witness.vkey from another key is an error naming both files; a missing
// one is not (it is the operator's copy).
func TestLoadKeysVerifierKeyMismatch(t *testing.T) {
	dir, other := t.TempDir(), t.TempDir()
	if _, err := node.GenerateKeys(dir, "witness.test/mine"); err != nil {
		t.Fatal(err)
	}
	otherVKey, err := node.GenerateKeys(other, "witness.test/other")
	if err != nil {
		t.Fatal(err)
	}
	write(t, dir, node.WitnessVKeyFile, otherVKey+"\n")
	_, err = node.LoadKeys(dir, false)
	if !errors.Is(err, node.ErrKeyMismatch) {
		t.Fatalf("LoadKeys: %v, want ErrKeyMismatch", err)
	}
	for _, f := range []string{node.WitnessKeyFile, node.WitnessVKeyFile} {
		if !strings.Contains(err.Error(), filepath.Join(dir, f)) {
			t.Errorf("error %q does not name %s", err, filepath.Join(dir, f))
		}
	}
	// An observer loads no cosigning key, so its vkey is not checked.
	if _, err := node.LoadKeys(dir, true); err != nil {
		t.Fatalf("observer: %v", err)
	}
	remove(t, dir, node.WitnessVKeyFile)
	if _, err := node.LoadKeys(dir, false); err != nil {
		t.Fatalf("without witness.vkey: %v", err)
	}
}
