package tlog

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Key strings of c2sp.org/signed-note shared by both cosigner types:
// verifier keys "<name>+<hex id>+<base64(type || key)>" and private keys
// "PRIVATE+KEY+" followed by the same three fields.

// cutPrivateKey returns skey without its "PRIVATE+KEY+" prefix.
func cutPrivateKey(skey string) (string, error) {
	rest, ok := strings.CutPrefix(skey, privateKeyStringStart)
	if !ok {
		return "", fmt.Errorf("%w: signer key does not start with %q", ErrBadKey, privateKeyStringStart)
	}
	return rest, nil
}

// splitPrivateKey splits "PRIVATE+KEY+<name>+<hex id>+<base64 key>".
func splitPrivateKey(skey string) (name string, hash uint32, key []byte, err error) {
	rest, err := cutPrivateKey(skey)
	if err != nil {
		return "", 0, nil, err
	}
	return splitKey(rest)
}

// splitKey splits "<name>+<hex id>+<base64 key>".
func splitKey(s string) (name string, hash uint32, key []byte, err error) {
	name, rest, ok1 := strings.Cut(s, "+")
	hexID, b64, ok2 := strings.Cut(rest, "+")
	if !ok1 || !ok2 || !validKeyName(name) || len(hexID) != 8 {
		return "", 0, nil, fmt.Errorf("%w: not a <name>+<id>+<key> string", ErrBadKey)
	}
	id, err := strconv.ParseUint(hexID, 16, 32)
	if err != nil {
		return "", 0, nil, fmt.Errorf("%w: bad key ID %q", ErrBadKey, hexID)
	}
	key, err = base64.StdEncoding.DecodeString(b64)
	if err != nil || len(key) == 0 {
		return "", 0, nil, fmt.Errorf("%w: key is not base64", ErrBadKey)
	}
	return name, uint32(id), key, nil
}

// validKeyName applies c2sp.org/signed-note's key name rules.
func validKeyName(name string) bool {
	return name != "" && utf8.ValidString(name) && strings.IndexFunc(name, unicode.IsSpace) < 0 && !strings.Contains(name, "+")
}

// cosignerKeyID is SHA-256(name || "\n" || alg || pub)[:4].
// SPEC: the key ID is mandatory for cosignature types.
func cosignerKeyID(name string, alg byte, pub []byte) uint32 {
	h := sha256.New()
	h.Write([]byte(name))
	h.Write([]byte{'\n', alg})
	h.Write(pub)
	return binary.BigEndian.Uint32(h.Sum(nil))
}

// checkKeyID reports whether hash, the key ID a key string states, is the
// key ID of name, alg and pub.
func checkKeyID(name string, alg byte, pub []byte, hash uint32) error {
	if got := cosignerKeyID(name, alg, pub); got != hash {
		return fmt.Errorf("%w: key ID %08x does not match key (want %08x)", ErrBadKey, hash, got)
	}
	return nil
}

// verifierKeyString returns "<name>+<hex id>+<base64(alg || pub)>".
func verifierKeyString(name string, alg byte, pub []byte) string {
	k := append([]byte{alg}, pub...)
	return fmt.Sprintf("%s+%08x+%s", name, cosignerKeyID(name, alg, pub), base64.StdEncoding.EncodeToString(k))
}

// privateKeyString returns "PRIVATE+KEY+<name>+<hex id>+<base64(alg ||
// seed)>", the key ID being that of the public key pub.
func privateKeyString(name string, alg byte, pub, seed []byte) string {
	k := append([]byte{alg}, seed...)
	return fmt.Sprintf("%s%s+%08x+%s", privateKeyStringStart, name, cosignerKeyID(name, alg, pub), base64.StdEncoding.EncodeToString(k))
}
