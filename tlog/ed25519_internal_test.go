package tlog

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"math/big"
	mrand "math/rand/v2"
	"testing"

	"golang.org/x/mod/sumdb/note"
)

// groupOrder is ℓ = 2^252 + 27742317777372353535851937790883648493.
var groupOrder, _ = new(big.Int).SetString("7237005577332262213973186563042994240857116359379907606001950938285454250989", 10)

// le32 encodes x as 32 little-endian bytes.
func le32(x *big.Int) []byte {
	be := x.FillBytes(make([]byte, 32))
	for i, j := 0, 31; i < j; i, j = i+1, j-1 {
		be[i], be[j] = be[j], be[i]
	}
	return be
}

// edgePoints are encodings on which Ed25519 implementations are known to
// disagree: small-order points, non-canonical encodings of them, the sign bit
// set on x = 0, and strings that are no point at all.
func edgePoints() map[string][]byte {
	p := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 255), big.NewInt(19))
	identity := make([]byte, 32)
	identity[0] = 1
	negIdentity := bytes.Clone(identity) // x = 0 with the sign bit set
	negIdentity[31] |= 0x80
	order2 := le32(new(big.Int).Sub(p, big.NewInt(1))) // (0, -1)
	order4 := make([]byte, 32)                         // y = 0: (±sqrt(-1), 0)
	order4neg := bytes.Clone(order4)
	order4neg[31] |= 0x80
	nonCanonID := le32(new(big.Int).Add(p, big.NewInt(1))) // y = p+1 ≡ 1
	nonCanonOrder2 := bytes.Repeat([]byte{0xff}, 32)       // y = 2^255-1 ≡ 18, not -1; high bit set
	nonCanonOrder2[31] = 0x7f
	notPoint := le32(big.NewInt(2)) // y = 2 is not on the curve
	return map[string][]byte{
		"identity": identity, "identity-neg-x": negIdentity, "order-2": order2,
		"order-4": order4, "order-4-neg": order4neg, "noncanonical-identity": nonCanonID,
		"y=2^255-1": nonCanonOrder2, "not-a-point": notPoint,
	}
}

// agree fails the test if the expanded-key verifier and crypto/ed25519
// disagree on (pub, msg, sig).
func agree(t *testing.T, name string, pub, msg, sig []byte) {
	t.Helper()
	want := len(pub) == ed25519.PublicKeySize && ed25519.Verify(pub, msg, sig)
	k, err := newEd25519Key(pub)
	if err != nil {
		if want {
			t.Fatalf("%s: key refused (%v) but crypto/ed25519 accepts the signature", name, err)
		}
		return
	}
	if got := k.verify(msg, sig); got != want {
		t.Errorf("%s: verify = %v, crypto/ed25519 says %v (pub %x sig %x)", name, got, want, pub, sig)
	}
}

// TestEd25519MatchesStdlib checks the expanded-key verifier against
// crypto/ed25519 on valid signatures, corrupted ones, non-canonical S and R,
// and small-order or non-canonical public keys.
func TestEd25519MatchesStdlib(t *testing.T) {
	rng := mrand.New(mrand.NewPCG(1, 2))
	msgs := [][]byte{nil, []byte("example.com/log\n7\nWmH8K1T5z6cXdPJDIUPdQMbLKxGUf69lp9PaXLZRmcg=\n")}
	pubs := edgePoints()
	sigs := map[string][]byte{}
	for name, r := range edgePoints() {
		// R an edge point, S = 0: valid for a small-order A under the
		// cofactorless equation exactly when R encodes -[k]A canonically.
		sigs["R="+name+",S=0"] = append(bytes.Clone(r), make([]byte, 32)...)
	}
	for i := range 8 {
		var seedBytes [32]byte
		binary.LittleEndian.PutUint64(seedBytes[:], rng.Uint64())
		priv := ed25519.NewKeyFromSeed(seedBytes[:])
		pub := priv.Public().(ed25519.PublicKey)
		pubs["random-"+string(rune('a'+i))] = pub
		for _, m := range msgs {
			sig := ed25519.Sign(priv, m)
			agree(t, "valid", pub, m, sig)
			// S + ℓ: the same signature with a non-canonical S.
			s := new(big.Int).SetBytes(reverse(sig[32:]))
			sigs["S+l"] = append(bytes.Clone(sig[:32]), le32(s.Add(s, groupOrder))...)
			agree(t, "S+l", pub, m, sigs["S+l"])
			for range 16 {
				bad := bytes.Clone(sig)
				bad[rng.IntN(len(bad))] ^= 1 << rng.IntN(8)
				agree(t, "bit flip", pub, m, bad)
			}
			agree(t, "short signature", pub, m, sig[:63])
			agree(t, "long signature", pub, m, append(bytes.Clone(sig), 0))
		}
	}
	accepted := 0
	for pn, pub := range pubs {
		for sn, sig := range sigs {
			for _, m := range msgs {
				agree(t, pn+"/"+sn, pub, m, sig)
				if ed25519.Verify(pub, m, sig) {
					accepted++
				}
			}
		}
	}
	// The small-order cases must include some that crypto/ed25519 accepts
	// (e.g. A = R = identity, S = 0), or they test only rejection.
	if accepted == 0 {
		t.Fatal("no edge case is a signature crypto/ed25519 accepts")
	}
}

func reverse(b []byte) []byte {
	r := make([]byte, len(b))
	for i := range b {
		r[len(b)-1-i] = b[i]
	}
	return r
}

// TestSignEd25519MatchesStdlib: Ed25519 is deterministic, so the faster
// signer must produce crypto/ed25519's bytes exactly.
func TestSignEd25519MatchesStdlib(t *testing.T) {
	rng := mrand.New(mrand.NewPCG(3, 4))
	for range 64 {
		var seedBytes [32]byte
		for i := range 4 {
			binary.LittleEndian.PutUint64(seedBytes[8*i:], rng.Uint64())
		}
		priv := ed25519.NewKeyFromSeed(seedBytes[:])
		msg := make([]byte, rng.IntN(300))
		for i := range msg {
			msg[i] = byte(rng.Uint32())
		}
		if got, want := signEd25519(priv, msg), ed25519.Sign(priv, msg); !bytes.Equal(got, want) {
			t.Fatalf("signature differs from crypto/ed25519:\n got %x\nwant %x", got, want)
		}
	}
}

// FuzzEd25519Verify holds the expanded-key verifier to crypto/ed25519's
// answer on arbitrary keys, messages and signatures.
func FuzzEd25519Verify(f *testing.F) {
	priv := ed25519.NewKeyFromSeed(make([]byte, 32))
	msg := []byte("example.com/log\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n")
	f.Add([]byte(priv.Public().(ed25519.PublicKey)), msg, ed25519.Sign(priv, msg))
	for _, p := range edgePoints() {
		f.Add(p, msg, append(bytes.Clone(p), make([]byte, 32)...))
	}
	f.Fuzz(func(t *testing.T, pub, msg, sig []byte) {
		agree(t, "fuzz", pub, msg, sig)
	})
}

// TestNewNoteVerifier: every Ed25519 verifier key gets the expanded-key
// verifier (base64 keys often hold '+', the field separator), with x/mod's
// name and key hash, and it verifies exactly what x/mod's verifier does.
func TestNewNoteVerifier(t *testing.T) {
	rng := mrand.New(mrand.NewPCG(5, 6))
	for i := range 64 {
		skey, vkey, err := note.GenerateKey(rngReader{rng}, "example.com/log"+string(rune('a'+i%26)))
		if err != nil {
			t.Fatal(err)
		}
		want, err := note.NewVerifier(vkey)
		if err != nil {
			t.Fatal(err)
		}
		got, err := NewNoteVerifier(vkey)
		if err != nil {
			t.Fatalf("NewNoteVerifier(%q): %v", vkey, err)
		}
		if _, fast := got.(*noteVerifier); !fast {
			t.Fatalf("NewNoteVerifier(%q) = %T, want the expanded-key verifier", vkey, got)
		}
		if got.Name() != want.Name() || got.KeyHash() != want.KeyHash() {
			t.Fatalf("name/hash %s/%08x, x/mod says %s/%08x", got.Name(), got.KeyHash(), want.Name(), want.KeyHash())
		}
		signer, err := note.NewSigner(skey)
		if err != nil {
			t.Fatal(err)
		}
		msg := []byte("body\n")
		sig, err := signer.Sign(msg)
		if err != nil {
			t.Fatal(err)
		}
		bad := bytes.Clone(sig)
		bad[i%len(bad)] ^= 0x40
		for _, s := range [][]byte{sig, bad} {
			if got.Verify(msg, s) != want.Verify(msg, s) {
				t.Fatalf("Verify disagrees with x/mod on %x", s)
			}
		}
	}
	for _, vkey := range []string{"", "name", "name+00000000+", "bad name+01234567+AQ==", "example.com/log+d455c521+AQOhB7/zzhC+HXDdGOdLwJln5NYwm6UNXx3chmQSVTG5"} {
		_, werr := note.NewVerifier(vkey)
		_, gerr := NewNoteVerifier(vkey)
		if (werr == nil) != (gerr == nil) {
			t.Errorf("NewNoteVerifier(%q) error %v, x/mod says %v", vkey, gerr, werr)
		}
	}
}

// rngReader makes a seeded math/rand source an io.Reader for key generation.
type rngReader struct{ r *mrand.Rand }

func (r rngReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r.r.Uint32())
	}
	return len(p), nil
}
