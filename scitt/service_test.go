package scitt_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/veraison/go-cose"
	"github.com/vigilnet/vigil/scitt"
)

func TestRegisterReceiptVerify(t *testing.T) { testRegisterReceiptVerify(t, newEnv) }

func testRegisterReceiptVerify(t *testing.T, mk envMaker) {
	e := mk(t)
	_, srv := e.start(t)
	tests := []struct {
		name string
		key  *scitt.PrivateKey
		kind scitt.Kind
		opts scitt.SignOptions
	}{
		{"inventory", e.issuer, scitt.KindInventory, scitt.SignOptions{}},
		{"configuration", e.issuer, scitt.KindConfiguration, scitt.SignOptions{}},
		{"endorsement", e.auditor, scitt.KindEndorsement, scitt.SignOptions{}},
		{"hash envelope inventory", e.issuer, scitt.KindInventory, scitt.SignOptions{HashEnvelope: true, Location: "https://provider.example/inv/1"}},
		{"hash envelope configuration", e.issuer, scitt.KindConfiguration, scitt.SignOptions{HashEnvelope: true}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stmt := sign(t, tt.key, tt.kind, i, tt.opts)
			loc, rcpt := register(t, srv.URL, stmt)
			if !strings.HasPrefix(loc, "/entries/") {
				t.Errorf("Location = %q", loc)
			}
			if err := scitt.VerifyReceipt(stmt, rcpt, e.receipt.Public()); err != nil {
				t.Fatalf("VerifyReceipt: %v", err)
			}
			// A transparent statement (receipt attached) verifies too.
			ts, err := scitt.Transparent(stmt, rcpt)
			if err != nil {
				t.Fatal(err)
			}
			if err := scitt.VerifyReceipt(ts, rcpt, e.receipt.Public()); err != nil {
				t.Fatalf("VerifyReceipt(transparent): %v", err)
			}
			// The entry resolves to a (fresh) receipt.
			r := do(t, "GET", srv.URL+loc, "", nil)
			if r.code != http.StatusOK {
				t.Fatalf("GET %s: %d", loc, r.code)
			}
			if err := scitt.VerifyReceipt(stmt, r.body, e.receipt.Public()); err != nil {
				t.Fatalf("VerifyReceipt(resolved): %v", err)
			}
		})
	}
}

func TestReceiptVerificationFailures(t *testing.T) { testReceiptVerificationFailures(t, newEnv) }

func testReceiptVerificationFailures(t *testing.T, mk envMaker) {
	e := mk(t)
	_, srv := e.start(t)
	// Two statements so the second receipt has a non-empty path.
	register(t, srv.URL, sign(t, e.issuer, scitt.KindInventory, 100, scitt.SignOptions{}))
	stmt := sign(t, e.issuer, scitt.KindConfiguration, 101, scitt.SignOptions{})
	_, rcpt := register(t, srv.URL, stmt)
	other := sign(t, e.issuer, scitt.KindConfiguration, 102, scitt.SignOptions{})
	r, err := scitt.ParseReceipt(rcpt)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Proof.Path) == 0 {
		t.Fatal("expected a non-empty inclusion path")
	}
	flip := func(b []byte, i int) []byte {
		c := bytes.Clone(b)
		c[i] ^= 1
		return c
	}
	truncated := func() []byte {
		p := r.Proof
		p.Path = p.Path[:len(p.Path)-1]
		// Re-sign would be needed for a valid receipt; the signature cannot
		// match the shorter path's root, and the proof itself is short.
		b, err := scitt.BuildReceipt(mustKey(t, "ts.vigil.test"), r.Subject, p, make([]byte, 32))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}()
	tests := []struct {
		name      string
		stmt, rct []byte
		key       *scitt.PublicKey
	}{
		{"tampered statement signature", flip(stmt, len(stmt)-3), rcpt, e.receipt.Public()},
		{"other statement", other, rcpt, e.receipt.Public()},
		{"tampered receipt signature", stmt, flip(rcpt, len(rcpt)-3), e.receipt.Public()},
		{"wrong log key", stmt, rcpt, mustKey(t, "ts.vigil.test").Public()},
		{"wrong issuer name", stmt, rcpt, &scitt.PublicKey{Name: "other", Key: e.receipt.Public().Key}},
		{"truncated proof", stmt, truncated, e.receipt.Public()},
		{"garbage receipt", stmt, []byte{0xd2, 0x84}, e.receipt.Public()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := scitt.VerifyReceipt(tt.stmt, tt.rct, tt.key); err == nil {
				t.Fatal("VerifyReceipt succeeded")
			}
		})
	}
	if err := scitt.VerifyReceipt(stmt, rcpt, e.receipt.Public()); err != nil {
		t.Fatalf("the untampered receipt must verify: %v", err)
	}
}

// TestAsyncRegistration forces the asynchronous form: 303 from POST, then
// 302 (while pending) or 200 with the receipt from the Location.
func TestAsyncRegistration(t *testing.T) {
	e := newEnv(t)
	svc, srv := e.startWith(t, e.config(t), scitt.HandlerOptions{SyncWait: time.Nanosecond})
	stmt := sign(t, e.issuer, scitt.KindInventory, 1, scitt.SignOptions{})
	r := do(t, "POST", srv.URL+"/entries", "application/cose", stmt)
	if r.code != http.StatusSeeOther || r.header.Get("Retry-After") == "" || len(r.body) != 0 {
		t.Fatalf("POST: %d %q", r.code, r.body)
	}
	// A 303 is sent only once the entry is durably sequenced.
	if idx, err := svc.Lookup(strings.TrimPrefix(r.header.Get("Location"), "/entries/")); err != nil || idx != 0 {
		t.Fatalf("after 303: index %d, %v", idx, err)
	}
	loc, rcpt := follow(t, srv.URL, r)
	if loc != r.header.Get("Location") {
		t.Errorf("final Location %q, operation Location %q", loc, r.header.Get("Location"))
	}
	if err := scitt.VerifyReceipt(stmt, rcpt, e.receipt.Public()); err != nil {
		t.Fatal(err)
	}
}

func TestRegisterAfterClose(t *testing.T) {
	e := newEnv(t)
	svc, srv := e.start(t)
	stop(t, svc, srv)
	_, err := svc.Register(context.Background(), sign(t, e.issuer, scitt.KindInventory, 1, scitt.SignOptions{}), "test")
	if !errors.Is(err, scitt.ErrClosed) {
		t.Fatalf("Register after Close: %v", err)
	}
}

// TestES256Issuer registers a statement signed with a P-256 key listed in
// the policy as es256:<SPKI>, and checks that a different P-256 key with the
// same claims is rejected.
func TestES256Issuer(t *testing.T) {
	e := newEnv(t)
	priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	var err error
	e.policy, err = scitt.ParsePolicy(fmt.Appendf(nil, "issuers:\n  - name: kms.example\n    keys: [\"es256:%s\"]\n    kinds: [configuration]\n", base64.StdEncoding.EncodeToString(der)))
	if err != nil {
		t.Fatal(err)
	}
	_, srv := e.start(t)
	signES256 := func(signer, kidOf *ecdsa.PrivateKey) []byte {
		kid, err := scitt.ES256KID(&kidOf.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		msg := cose.NewSign1Message()
		msg.Headers.Protected.SetAlgorithm(cose.AlgorithmES256)
		msg.Headers.Protected[int64(4)] = kid
		msg.Headers.Protected[int64(15)] = map[int64]any{1: "kms.example", 2: "vm-1"}
		msg.Headers.Protected[int64(3)] = scitt.KindConfiguration.ContentType()
		msg.Payload = payload(scitt.KindConfiguration, 1)
		s, err := cose.NewSigner(cose.AlgorithmES256, signer)
		if err != nil {
			t.Fatal(err)
		}
		if err := msg.Sign(rand.Reader, nil, s); err != nil {
			t.Fatal(err)
		}
		b, _ := msg.MarshalCBOR()
		return b
	}
	stmt := signES256(priv, priv)
	_, rcpt := register(t, srv.URL, stmt)
	if err := scitt.VerifyReceipt(stmt, rcpt, e.receipt.Public()); err != nil {
		t.Fatal(err)
	}
	for name, bad := range map[string][]byte{
		"signed by another key": signES256(other, priv),
		"unknown key":           signES256(other, other),
	} {
		if r := do(t, "POST", srv.URL+"/entries", "application/cose", bad); r.code != 400 || r.problem.Title != "Rejected" {
			t.Errorf("%s: %d %+v", name, r.code, r.problem)
		}
	}
}
