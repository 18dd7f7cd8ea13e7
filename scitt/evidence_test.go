package scitt_test

import (
	"bytes"
	"fmt"
	"os"
	"testing"

	"github.com/vigilnet/vigil/scitt"
)

// TestEvidenceStatements registers a Vigil evidence file as a statement of
// the built-in evidence kind and verifies its receipt; a payload that is not
// an evidence file is refused.
func TestEvidenceStatements(t *testing.T) {
	ev, err := os.ReadFile("testdata/evidence/same-size.evidence")
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t)
	node := mustKey(t, "node-1.vigil.test")
	if e.policy, err = scitt.ParsePolicy(fmt.Appendf(nil, "issuers:\n  - name: node-1.vigil.test\n    keys: [%q]\n    kinds: [evidence]\n", node.Public().String())); err != nil {
		t.Fatal(err)
	}
	_, srv := e.start(t)
	stmt, err := scitt.SignStatement(node, "urn:vigil:evidence:same-size", scitt.KindEvidence, ev, scitt.SignOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := scitt.ParseStatement(stmt)
	if err != nil || s.Kind != scitt.KindEvidence || s.ContentType != "application/vnd.vigil.evidence" || !bytes.Equal(s.Payload, ev) {
		t.Fatalf("parsed %+v, %v", s, err)
	}
	_, rcpt := register(t, srv.URL, stmt)
	if err := scitt.VerifyReceipt(stmt, rcpt, e.receipt.Public()); err != nil {
		t.Fatal(err)
	}
	if _, err := scitt.SignStatement(node, "x", scitt.KindEvidence, []byte("not evidence"), scitt.SignOptions{}); err == nil {
		t.Fatal("SignStatement accepted a payload that is not an evidence file")
	}
	bad := kidStatement(t, node, map[any]any{int64(3): "application/vnd.vigil.evidence"}, append([]byte("x"), ev...))
	if r := do(t, "POST", srv.URL+"/entries", "application/cose", bad); r.code != 400 || r.problem.Title != "Rejected" {
		t.Fatalf("bad evidence payload: %d %+v", r.code, r.problem)
	}
}
