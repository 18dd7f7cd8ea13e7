package scitt_test

import (
	"errors"
	"testing"

	"github.com/veraison/go-cose"
	"github.com/vigilnet/vigil/scitt"
)

// withVDP returns receipt with its vdp (396) replaced; the unprotected
// header is outside the signature, so the signature still verifies.
func withVDP(t testing.TB, receipt []byte, vdp map[any]any) []byte {
	t.Helper()
	var msg cose.Sign1Message
	if err := msg.UnmarshalCBOR(receipt); err != nil {
		t.Fatal(err)
	}
	msg.Headers.Unprotected[int64(396)] = vdp
	msg.Headers.RawUnprotected = nil // re-encode the edited header
	b, err := msg.MarshalCBOR()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func proofOf(t testing.TB, receipt []byte) []byte {
	t.Helper()
	var msg cose.Sign1Message
	if err := msg.UnmarshalCBOR(receipt); err != nil {
		t.Fatal(err)
	}
	return msg.Headers.Unprotected[int64(396)].(map[any]any)[int64(-1)].([]any)[0].([]byte)
}

// TestStrictReceipts checks that a receipt carries exactly the one
// inclusion proof the service issues: extra, malformed or foreign proofs
// make it invalid, whatever their order.
func TestStrictReceipts(t *testing.T) {
	e := newEnv(t)
	_, srv := e.start(t)
	var stmts, rcpts [][]byte
	for i := range 3 {
		s := sign(t, e.issuer, scitt.KindInventory, i, scitt.SignOptions{})
		_, r := register(t, srv.URL, s)
		stmts, rcpts = append(stmts, s), append(rcpts, r)
	}
	good := proofOf(t, rcpts[2])
	other := proofOf(t, rcpts[0])
	junk := []byte{0x83, 0x01, 0x00, 0x80}
	pub := e.receipt.Public()
	if err := scitt.VerifyReceipt(stmts[2], rcpts[2], pub); err != nil {
		t.Fatalf("good receipt: %v", err)
	}
	tests := map[string]map[any]any{
		"[good, junk]":             {int64(-1): []any{good, junk}},
		"[junk, good]":             {int64(-1): []any{junk, good}},
		"[good, good]":             {int64(-1): []any{good, good}},
		"[good, other entry]":      {int64(-1): []any{good, other}},
		"[good, not a bstr]":       {int64(-1): []any{good, int64(7)}},
		"good + consistency proof": {int64(-1): []any{good}, int64(-2): []any{junk}},
		"good + unknown key":       {int64(-1): []any{good}, int64(5): "x"},
		"no proof":                 {int64(-1): []any{}},
	}
	for name, vdp := range tests {
		t.Run(name, func(t *testing.T) {
			err := scitt.VerifyReceipt(stmts[2], withVDP(t, rcpts[2], vdp), pub)
			if !errors.Is(err, scitt.ErrInvalidReceipt) {
				t.Fatalf("verified or wrong error: %v", err)
			}
		})
	}
}

// TestDuplicateRegistration checks that registering a statement already in
// the log answers like the first registration (201, same Location, a
// receipt for the existing entry) and appends nothing.
func TestDuplicateRegistration(t *testing.T) {
	e := newEnv(t)
	svc, srv := e.startWith(t, e.config(t), scitt.HandlerOptions{AdminToken: "t"})
	stmt := sign(t, e.issuer, scitt.KindConfiguration, 1, scitt.SignOptions{})
	loc, rcpt := register(t, srv.URL, stmt)
	// The same entry resubmitted, also as a transparent statement (the
	// unprotected header does not change the entry).
	transparent, err := scitt.Transparent(stmt, rcpt)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range [][]byte{stmt, transparent} {
		r := do(t, "POST", srv.URL+"/entries", "application/cose", b)
		if r.code != 201 || r.header.Get("Location") != loc {
			t.Fatalf("duplicate: %d %q (%+v), want 201 %q", r.code, r.header.Get("Location"), r.problem, loc)
		}
		if err := scitt.VerifyReceipt(stmt, r.body, e.receipt.Public()); err != nil {
			t.Fatalf("duplicate's receipt: %v", err)
		}
	}
	if n, _ := svc.Reader().NextIndex(t.Context()); n != 1 {
		t.Fatalf("NextIndex %d after duplicates, want 1", n)
	}
	page, err := svc.AuditLog().Query(scitt.AuditQuery{Decision: scitt.DecisionDuplicate})
	if err != nil || len(page.Records) != 2 || "/entries/"+page.Records[0].EntryID != loc {
		t.Fatalf("duplicate audit records: %+v %v", page, err)
	}
}
