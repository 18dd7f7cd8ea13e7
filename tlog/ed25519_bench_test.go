package tlog

import (
	"crypto/ed25519"
	"testing"

	voi "github.com/oasisprotocol/curve25519-voi/primitives/ed25519"
)

// The Ed25519 benchmarks compare the two implementations the witness can
// use on its hot path: one log-signature verification and one cosignature
// per add-checkpoint. On the project's 2-core VM (Go 1.27.3, busy) voi
// verified in 60-74 µs against crypto/ed25519's 132-171 µs, and signed in
// 20-32 µs against 47-63 µs, so voi stays.

func benchKey(b *testing.B) (ed25519.PublicKey, ed25519.PrivateKey, []byte, []byte) {
	b.Helper()
	priv := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	pub := priv.Public().(ed25519.PublicKey)
	msg := []byte("bench.vigil.example/0\n12345\nq6bE8Hb8Ny3Ux3nRNfyq3bQ9QvBB1bEGN7fHYHVVDeU=\n")
	return pub, priv, msg, ed25519.Sign(priv, msg)
}

func BenchmarkEd25519Verify(b *testing.B) {
	pub, _, msg, sig := benchKey(b)
	b.Run("stdlib", func(b *testing.B) {
		for b.Loop() {
			if !ed25519.Verify(pub, msg, sig) {
				b.Fatal("bad")
			}
		}
	})
	b.Run("voi-expanded", func(b *testing.B) {
		k, err := newEd25519Key(pub)
		if err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if !k.verify(msg, sig) {
				b.Fatal("bad")
			}
		}
	})
}

func BenchmarkEd25519Sign(b *testing.B) {
	_, priv, msg, _ := benchKey(b)
	b.Run("stdlib", func(b *testing.B) {
		for b.Loop() {
			ed25519.Sign(priv, msg)
		}
	})
	b.Run("voi", func(b *testing.B) {
		for b.Loop() {
			voi.Sign(voi.PrivateKey(priv), msg)
		}
	})
}
