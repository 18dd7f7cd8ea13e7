// Package scitt is Vigil's transparency service: a SCITT-style log of signed
// statements about cloud infrastructure on a Tessera log.
//
// Issuers sign statements (COSE_Sign1 with CWT iss/sub, one of the Kinds, or
// a COSE hash envelope) with SignStatement. A Service applies its Policy
// (issuers bound to keys, kinds per issuer, size, replay), appends the
// statement's entry — the statement with its unprotected header reset to {}
// — to the log, and returns a COSE receipt with an RFC 9162 inclusion proof
// once a checkpoint signed by the log's note key covers it. VerifyReceipt
// checks a receipt offline with the service's receipt key. NewHandler serves
// the SCRAPI endpoints and the log's tiles (C2SP tlog-tiles).
//
// Files: statement.go and payload.go (statements and kinds), policy.go
// (registration policy and audit trail), receipt.go (receipts), service.go
// and register.go (the log and the registration flow), proofs.go and
// publish.go (receipt plumbing), http.go and problem.go (SCRAPI),
// keys.go and es256.go (keys), metrics.go. See docs/scitt.md.
package scitt
