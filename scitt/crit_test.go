package scitt_test

import (
	"crypto/ed25519"
	"strings"
	"testing"

	"github.com/fxamacker/cbor/v2"
	"github.com/vigilnet/vigil/scitt"
)

// rawStatement signs a COSE_Sign1 by hand (RFC 9052 §4.4), for headers
// go-cose refuses to produce.
func rawStatement(t testing.TB, key *scitt.PrivateKey, protected map[any]any, payload []byte) []byte {
	t.Helper()
	enc, _ := cbor.CoreDetEncOptions().EncMode()
	prot, err := enc.Marshal(protected)
	if err != nil {
		t.Fatal(err)
	}
	tbs, err := enc.Marshal([]any{"Signature1", prot, []byte{}, payload})
	if err != nil {
		t.Fatal(err)
	}
	sig := ed25519.Sign(key.Key, tbs)
	b, err := enc.Marshal(cbor.Tag{Number: 18, Content: []any{prot, map[any]any{}, payload, sig}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestCritical checks RFC 9052 §3.1 over SCRAPI: a critical label the
// service does not understand is refused with a problem naming it.
func TestCritical(t *testing.T) {
	e := newEnv(t)
	_, srv := e.start(t)
	inv := func(n int, hdr map[any]any) []byte {
		h := map[any]any{int64(3): scitt.KindInventory.ContentType()}
		for k, v := range hdr {
			h[k] = v
		}
		return kidStatement(t, e.issuer, h, payload(scitt.KindInventory, n))
	}
	tests := []struct {
		name   string
		b      []byte
		status int
		title  string
		detail string
	}{
		{"unknown int label", inv(1, map[any]any{int64(2): []any{int64(999)}, int64(999): "x"}), 400, "Unknown Critical Header", "label 999"},
		{"unknown text label", inv(2, map[any]any{int64(2): []any{"ext"}, "ext": int64(1)}), 400, "Unknown Critical Header", `label "ext"`},
		{"known and unknown", inv(3, map[any]any{int64(2): []any{int64(3), int64(-70000)}, int64(-70000): []byte{1}}), 400, "Unknown Critical Header", "label -70000"},
		{"critical label absent", rawStatement(t, e.issuer, map[any]any{int64(1): int64(-8), int64(2): []any{int64(777)}, int64(3): scitt.KindInventory.ContentType(),
			int64(4): e.issuer.KID(), int64(15): claims("provider.example", "x")}, payload(scitt.KindInventory, 4)), 400, "Malformed request", "777"},
		{"typ is not acted on", inv(6, map[any]any{int64(2): []any{int64(16)}, int64(16): "application/example+cose"}), 400, "Unknown Critical Header", "label 16"},
		{"understood labels", inv(5, map[any]any{int64(2): []any{int64(3), int64(15)}}), 201, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := do(t, "POST", srv.URL+"/entries", "application/cose", tt.b)
			if r.code != tt.status {
				t.Fatalf("status %d (%+v), want %d", r.code, r.problem, tt.status)
			}
			if tt.title != "" && (r.problem == nil || r.problem.Title != tt.title || !strings.Contains(r.problem.Detail, tt.detail)) {
				t.Fatalf("problem %+v, want %q naming %q", r.problem, tt.title, tt.detail)
			}
		})
	}
}
