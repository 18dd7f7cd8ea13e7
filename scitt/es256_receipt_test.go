package scitt_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"math/big"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/fxamacker/cbor/v2"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/veraison/go-cose"

	"github.com/vigilnet/vigil/roster"
	"github.com/vigilnet/vigil/scitt"
)

func es256Key(t *testing.T, name string) (*scitt.PrivateKey, string) {
	t.Helper()
	skey, vkey, err := scitt.GenerateES256Key(rand.Reader, name)
	if err != nil {
		t.Fatal(err)
	}
	k, err := scitt.ParsePrivateKey(skey)
	if err != nil {
		t.Fatal(err)
	}
	return k, vkey
}

// TestES256Receipts: a service configured with a P-256 receipt key signs
// ES256 receipts, publishes the key as an EC2 COSE_Key and lists ES256 in
// its discovery document; the receipts verify with Vigil's verifier, with
// go-cose given only the published COSE_Key, and by hand with
// crypto/ecdsa over the RFC 9052 Sig_structure.
func TestES256Receipts(t *testing.T) {
	e := newEnv(t)
	rk, vkey := es256Key(t, "ts.vigil.test")
	e.receipt = rk
	_, srv := e.start(t)
	stmt := sign(t, e.issuer, scitt.KindConfiguration, 1, scitt.SignOptions{})
	loc, rcpt := register(t, srv.URL, stmt)

	pub, err := scitt.ParsePublicKey(vkey)
	if err != nil {
		t.Fatal(err)
	}
	if err := scitt.VerifyReceipt(stmt, rcpt, pub); err != nil {
		t.Fatalf("Vigil's verifier: %v", err)
	}
	// An Ed25519 key (another service's) does not verify it.
	if err := scitt.VerifyReceipt(stmt, rcpt, mustKey(t, "ts.vigil.test").Public()); err == nil {
		t.Fatal("an ES256 receipt verified with an Ed25519 key")
	}

	// The published key, decoded without Vigil's code.
	r := do(t, "GET", srv.URL+"/.well-known/scitt-keys", "", nil)
	var keys []map[int64]any
	if r.code != http.StatusOK || cbor.Unmarshal(r.body, &keys) != nil || len(keys) != 1 {
		t.Fatalf("scitt-keys: %d %x", r.code, r.body)
	}
	k := keys[0]
	if k[1] != uint64(2) || k[3] != int64(-7) || k[-1] != uint64(1) {
		t.Fatalf("COSE_Key is not EC2 P-256 ES256: %v", k)
	}
	x, y := k[-2].([]byte), k[-3].([]byte)
	ec, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), slices.Concat([]byte{4}, x, y))
	if err != nil || !ec.Equal(pub.EC) {
		t.Fatal("published COSE_Key is not the receipt key")
	}

	// The root, from the receipt's inclusion proof, decoded by hand.
	var msg cose.Sign1Message
	if err := msg.UnmarshalCBOR(rcpt); err != nil {
		t.Fatal(err)
	}
	if alg, _ := msg.Headers.Protected.Algorithm(); alg != cose.AlgorithmES256 {
		t.Fatalf("receipt alg %v", alg)
	}
	vdp := msg.Headers.Unprotected[int64(396)].(map[any]any)
	var ip struct {
		_     struct{} `cbor:",toarray"`
		Size  uint64
		Index uint64
		Path  [][]byte
	}
	if err := cbor.Unmarshal(vdp[int64(-1)].([]any)[0].([]byte), &ip); err != nil {
		t.Fatal(err)
	}
	entry, err := scitt.EntryFor(stmt)
	if err != nil {
		t.Fatal(err)
	}
	root, err := proof.RootFromInclusionProof(rfc6962.DefaultHasher, ip.Index, ip.Size, rfc6962.DefaultHasher.HashLeaf(entry), ip.Path)
	if err != nil {
		t.Fatal(err)
	}

	// go-cose, with the key from the COSE_Key.
	v, err := cose.NewVerifier(cose.AlgorithmES256, ec)
	if err != nil {
		t.Fatal(err)
	}
	msg.Payload = root
	if err := msg.Verify(nil, v); err != nil {
		t.Fatalf("go-cose: %v", err)
	}

	// crypto/ecdsa over Sig_structure = ["Signature1", protected, h'', root].
	protected, err := cbor.Marshal(msg.Headers.RawProtected)
	if err != nil {
		t.Fatal(err)
	}
	var rawProt []byte
	if err := cbor.Unmarshal(protected, &rawProt); err != nil {
		t.Fatal(err)
	}
	tbs, err := cbor.Marshal([]any{"Signature1", rawProt, []byte{}, root})
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256(tbs)
	sig := msg.Signature
	if len(sig) != 64 {
		t.Fatalf("ES256 signature of %d bytes, want r||s of 64", len(sig))
	}
	if !ecdsa.Verify(ec, digest[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
		t.Fatal("crypto/ecdsa: signature does not verify over the Sig_structure")
	}
	root[0] ^= 1
	digest = sha256.Sum256(must(cbor.Marshal([]any{"Signature1", rawProt, []byte{}, root})))
	if ecdsa.Verify(ec, digest[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
		t.Fatal("crypto/ecdsa: signature verifies over another root")
	}

	// Discovery lists exactly what is accepted and used.
	var conf scitt.TransparencyConfiguration
	r = do(t, "GET", srv.URL+"/.well-known/transparency-configuration", "", nil)
	if err := cbor.Unmarshal(r.body, &conf); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(conf.Algorithms, []string{"EdDSA", "ES256"}) || !slices.Equal(conf.ReceiptAlgorithms, []string{"ES256"}) {
		t.Errorf("configuration lists statements %v, receipts %v", conf.Algorithms, conf.ReceiptAlgorithms)
	}

	// A witnessed receipt of an unwitnessed service: the checkpoint carries
	// the log's signature only, enough for a policy with quorum none.
	pol, err := roster.ParsePolicy([]byte("log " + e.logVKey + "\nquorum none\n"))
	if err != nil {
		t.Fatal(err)
	}
	wr := do(t, "GET", srv.URL+loc+"/witnessed-receipt", "", nil)
	if wr.code != http.StatusOK {
		t.Fatalf("witnessed receipt: %d %v", wr.code, wr.problem)
	}
	if _, err := scitt.VerifyWitnessedReceipt(stmt, wr.body, pub, pol); err != nil {
		t.Fatal(err)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestEdDSAConfiguration: an Ed25519 receipt key is listed as EdDSA.
func TestEdDSAConfiguration(t *testing.T) {
	e := newEnv(t)
	_, srv := e.start(t)
	var conf scitt.TransparencyConfiguration
	r := do(t, "GET", srv.URL+"/.well-known/transparency-configuration", "", nil)
	if err := cbor.Unmarshal(r.body, &conf); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(conf.ReceiptAlgorithms, []string{"EdDSA"}) {
		t.Errorf("receipt algorithms %v", conf.ReceiptAlgorithms)
	}
}

// TestES256KeyEncodings: the text and COSE_Key encodings of ES256 receipt
// keys round-trip and malformed ones are refused.
func TestES256KeyEncodings(t *testing.T) {
	k, vkey := es256Key(t, "ts.vigil.test")
	if got := k.Public().String(); got != vkey {
		t.Fatalf("Public().String() = %s, want %s", got, vkey)
	}
	if !strings.HasPrefix(vkey, "ts.vigil.test+es256+") {
		t.Fatalf("vkey %s", vkey)
	}
	pub, err := scitt.ParsePublicKey(vkey)
	if err != nil || pub.Name != "ts.vigil.test" || !pub.EC.Equal(&k.EC.PublicKey) {
		t.Fatalf("ParsePublicKey: %+v %v", pub, err)
	}
	ck, err := scitt.ParseCOSEKey(pub.COSEKey())
	if err != nil || !slices.Equal(ck.KID(), pub.KID()) || ck.Algorithm() != cose.AlgorithmES256 {
		t.Fatalf("COSE_Key round trip: %v", err)
	}
	ed := mustKey(t, "x")
	for _, bad := range []string{
		"ts+es256+AAAA",
		"+es256+" + strings.Split(vkey, "+")[2],
		"ts+es256+" + strings.Split(ed.Public().String(), "+")[2],
	} {
		if _, err := scitt.ParsePublicKey(bad); err == nil {
			t.Errorf("ParsePublicKey(%q) accepted", bad)
		}
	}
	for _, bad := range []string{"ES256+PRIVATE+KEY+ts+AAAA", "ES256+PRIVATE+KEY+ts", "ES256+PRIVATE+KEY++" + strings.Split(vkey, "+")[2]} {
		if _, err := scitt.ParsePrivateKey(bad); err == nil {
			t.Errorf("ParsePrivateKey(%q) accepted", bad)
		}
	}
	if _, _, err := scitt.GenerateES256Key(rand.Reader, "a+b"); err == nil {
		t.Error("a key name with + accepted")
	}
	// An es256 receipt-key string is not an issuer policy key.
	if _, err := scitt.ParsePolicy([]byte("issuers:\n  - name: ts.vigil.test\n    keys: [\"" + vkey + "\"]\n    kinds: [configuration]\n")); err == nil {
		t.Error("policy accepted a <name>+es256+ key as an issuer key")
	}
}
