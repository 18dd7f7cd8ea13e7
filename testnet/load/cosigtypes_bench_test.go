package load_test

import (
	"context"
	"crypto/rand"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"github.com/vigilnet/vigil/roster"
	"github.com/vigilnet/vigil/store"
	"github.com/vigilnet/vigil/testnet/load"
	"github.com/vigilnet/vigil/tlog"
	"github.com/vigilnet/vigil/witness"
)

// cosigners returns the witness's signers for a witness.cosignature_types
// value: ed25519, mldsa or both.
func cosigners(b *testing.B, types string) []note.Signer {
	b.Helper()
	var out []note.Signer
	if types != "mldsa" {
		skey, _, err := tlog.GenerateCosignerKey(rand.Reader, load.WitnessName)
		if err != nil {
			b.Fatal(err)
		}
		s, err := tlog.NewCosignatureSigner(skey, nil)
		if err != nil {
			b.Fatal(err)
		}
		out = append(out, s)
	}
	if types != "ed25519" {
		skey, _, err := tlog.GenerateMLDSACosignerKey(load.WitnessName)
		if err != nil {
			b.Fatal(err)
		}
		s, err := tlog.NewMLDSASigner(skey, nil)
		if err != nil {
			b.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

// BenchmarkWitnessCoreKeyTypes is BenchmarkWitnessCore's sequential
// add-checkpoint (parse, log signature, consistency proof, cosign,
// in-memory compare-and-swap) with each choice of witness.cosignature_types:
// what ML-DSA-44 signing costs a witness per cosigned checkpoint.
func BenchmarkWitnessCoreKeyTypes(b *testing.B) {
	const logs = 100
	for _, types := range []string{"ed25519", "mldsa", "both"} {
		b.Run(types, func(b *testing.B) {
			wl, err := load.NewWorkload(load.WorkloadConfig{Logs: logs, Steps: (b.N+logs-1)/logs + 1})
			if err != nil {
				b.Fatal(err)
			}
			r, err := roster.ParsePolicy(wl.Policy("", ""))
			if err != nil {
				b.Fatal(err)
			}
			w, err := witness.New(witness.Config{Signers: cosigners(b, types), Logs: r, Store: &memStore{m: map[string]store.WitnessState{}}})
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := range b.N {
				req, err := witness.ParseAddCheckpointRequest(wl.Chains[i%logs].Steps[i/logs].Body)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := w.AddCheckpoint(context.Background(), req); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "cosigs/s")
		})
	}
}

// BenchmarkCosignatureKeyTypes is one cosignature's signing and one
// verification per key type, the cryptography alone.
func BenchmarkCosignatureKeyTypes(b *testing.B) {
	body := []byte("bench.vigil.example/log\n123456\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n")
	for _, types := range []string{"ed25519", "mldsa"} {
		s := cosigners(b, types)[0]
		v, err := tlog.NewWitnessVerifier(s.(tlog.CosignerSigner).VerifierKey())
		if err != nil {
			b.Fatal(err)
		}
		sig, err := s.Sign(body)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(types+"/sign", func(b *testing.B) {
			for b.Loop() {
				if _, err := s.Sign(body); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(types+"/verify", func(b *testing.B) {
			for b.Loop() {
				if !v.Verify(body, sig) {
					b.Fatal("verify failed")
				}
			}
		})
	}
}
