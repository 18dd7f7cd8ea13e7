package scitt_test

import (
	"crypto/ed25519"
	"fmt"
	"testing"
	"time"

	"github.com/veraison/go-cose"
	"github.com/vigilnet/vigil/scitt"
)

// TestGeneralStatements registers, over SCRAPI, a CycloneDX SBOM signed
// by an x5chain issuer, an in-toto statement under a kid, and a duplicate
// of the SBOM, and verifies every receipt offline.
func TestGeneralStatements(t *testing.T) {
	e := newEnv(t)
	root := newCA(t, "Build Root CA", nil)
	inter := newCA(t, "Build Issuing CA", root)
	leaf, leafKey := newLeaf(t, inter, "builder", leafOpts{})
	pol := fmt.Sprintf(`
issuers:
  - name: %s
    x509:
      trust_anchors: |
%s
    content_types:
      - type: application/vnd.cyclonedx+json
        schema: {format: json, required: [bomFormat, specVersion], const: {bomFormat: CycloneDX}}
  - name: provider.example
    keys: [%q]
    content_types:
      - type: application/vnd.in-toto+json
        schema: {format: json, required: [_type, subject, predicateType], const: {_type: "https://in-toto.io/Statement/v1"}}
`, sbomIssuer, indent(pemOf(root.cert), 8), e.issuer.Public().String())
	var err error
	if e.policy, err = scitt.ParsePolicy([]byte(pol)); err != nil {
		t.Fatal(err)
	}
	// The service is witnessed, so every entry also has a witnessed
	// receipt that verifies offline against the witness policy.
	wurl, wvkey, witnessPolicy := witnessNode(t, e)
	cfg := e.config(t)
	cfg.Witnesses = &scitt.WitnessConfig{Witnesses: []scitt.Witness{{URL: wurl, VKey: wvkey}}, Timeout: 10 * time.Second}
	_, srv := e.startWith(t, cfg, scitt.HandlerOptions{SyncWait: 10 * time.Second})

	sbom := signCOSE(t, cose.AlgorithmES256, leafKey, map[any]any{
		int64(33): chainOf(leaf, inter.cert),
		int64(15): claims(sbomIssuer, "pkg:npm/left-pad@1.3.0"),
		int64(3):  "application/vnd.cyclonedx+json",
	}, []byte(cyclonedx))
	attestation := signCOSE(t, cose.AlgorithmEdDSA, ed25519.PrivateKey(e.issuer.Key), map[any]any{
		int64(4):  e.issuer.KID(),
		int64(15): claims("provider.example", "pkg:oci/app@sha256:00"),
		int64(3):  "application/vnd.in-toto+json",
	}, []byte(inToto))

	sbomLoc, sbomRcpt := register(t, srv.URL, sbom)
	attLoc, attRcpt := register(t, srv.URL, attestation)
	dupLoc, dupRcpt := register(t, srv.URL, sbom)
	if dupLoc != sbomLoc {
		t.Fatalf("duplicate at %q, first at %q", dupLoc, sbomLoc)
	}
	pub := e.receipt.Public()
	for name, c := range map[string]struct {
		stmt, rcpt []byte
		loc        string
	}{
		"CycloneDX SBOM (x5chain)": {sbom, sbomRcpt, sbomLoc},
		"in-toto statement (kid)":  {attestation, attRcpt, attLoc},
		"duplicate SBOM":           {sbom, dupRcpt, dupLoc},
	} {
		if err := scitt.VerifyReceipt(c.stmt, c.rcpt, pub); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		w := fetchWitnessed(t, srv.URL+c.loc+"/witnessed-receipt?checkpoint=latest")
		if _, err := scitt.VerifyWitnessedReceipt(c.stmt, encode(t, w), pub, witnessPolicy); err != nil {
			t.Errorf("%s: witnessed receipt: %v", name, err)
		}
		ts, err := scitt.Transparent(c.stmt, c.rcpt)
		if err != nil {
			t.Fatal(err)
		}
		if err := scitt.VerifyReceipt(ts, c.rcpt, pub); err != nil {
			t.Errorf("%s as a transparent statement: %v", name, err)
		}
	}
	// The receipts are not interchangeable.
	if err := scitt.VerifyReceipt(attestation, sbomRcpt, pub); err == nil {
		t.Error("the SBOM's receipt verifies the attestation")
	}
	// The SBOM signed without a chain to the anchor is refused.
	other := newCA(t, "Other Root", nil)
	ol, olKey := newLeaf(t, other, "impostor", leafOpts{})
	forged := signCOSE(t, cose.AlgorithmES256, olKey, map[any]any{
		int64(33): chainOf(ol), int64(15): claims(sbomIssuer, "pkg:npm/left-pad@1.3.0"), int64(3): "application/vnd.cyclonedx+json",
	}, []byte(cyclonedx))
	if r := do(t, "POST", srv.URL+"/entries", "application/cose", forged); r.code != 400 || r.problem == nil || r.problem.Title != "Rejected" {
		t.Fatalf("impostor SBOM: %d %+v", r.code, r.problem)
	}
}
