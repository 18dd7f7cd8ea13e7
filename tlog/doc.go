// Package tlog holds the C2SP transparency-log formats Vigil shares between
// its witness, gossip, feed and verify code: strict checkpoint bodies
// (c2sp.org/tlog-checkpoint), Ed25519 cosignature/v1 keys, signers and
// verifiers (c2sp.org/tlog-cosignature), and log identifiers.
//
// Signed notes themselves are golang.org/x/mod/sumdb/note; this package only
// adds what that package leaves to its callers.
package tlog
