// Package scitt is Vigil's transparency service: a SCITT-style log of signed
// statements on a Tessera log.
//
// Issuers sign statements (COSE_Sign1 with CWT iss/sub and a payload of any
// media type, or a COSE hash envelope); SignStatement makes Vigil's built-in
// Kinds. A Service applies its Policy (issuers bound to keys or to X.509
// trust anchors, media-type patterns and payload schemas per issuer, size,
// RFC 9052 crit), appends the statement's entry — the statement with its
// unprotected header reset to {} — to the log once, and returns a COSE
// receipt with an RFC 9162 inclusion proof once a checkpoint signed by the
// log's note key covers it. VerifyReceipt checks a receipt offline with the
// service's receipt key. NewHandler serves the SCRAPI endpoints and the
// log's tiles (C2SP tlog-tiles).
//
// Files: statement.go, crit.go, x509.go and payload.go (statements, kinds
// and schemas), policy.go and mediatype.go (registration policy), audit.go
// and audit_http.go (audit trail), receipt.go (receipts), service.go and
// register.go (the log and the registration flow), proofs.go and publish.go
// (receipt plumbing), http.go, ratelimit.go and problem.go (SCRAPI),
// keys.go and es256.go (keys), metrics.go.
// See docs/scitt.md.
package scitt
