package scitt_test

import (
	"crypto/ed25519"
	"fmt"

	"github.com/vigilnet/vigil/scitt"
)

// Verifying a receipt needs only the statement, the receipt and the
// service's receipt key: no network.
func ExampleVerifyReceipt() {
	issuer := &scitt.PrivateKey{Name: "provider.example", Key: ed25519.NewKeyFromSeed(make([]byte, 32))}
	service := &scitt.PrivateKey{Name: "ts.example/log", Key: ed25519.NewKeyFromSeed([]byte("an example seed, 32 bytes long.."))}

	stmt, _ := scitt.SignStatement(issuer, "vm-1", scitt.KindConfiguration,
		[]byte(`{"resource":"vm-1","as_of":"2026-01-02T03:04:05Z","config":{"ports":[443]}}`), scitt.SignOptions{})
	// What the service does: the entry is leaf 0 of a 1-leaf tree.
	entry, _ := scitt.EntryFor(stmt)
	receipt, _ := scitt.BuildReceipt(service, "vm-1", scitt.InclusionProof{Size: 1, Index: 0, Path: [][]byte{}}, scitt.LeafHash(entry))

	fmt.Println(scitt.VerifyReceipt(stmt, receipt, service.Public()))
	other := &scitt.PublicKey{Name: "ts.example/log", Key: issuer.Public().Key}
	fmt.Println(scitt.VerifyReceipt(stmt, receipt, other) != nil)
	// Output:
	// <nil>
	// true
}
