package witness_test

import (
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
)

// TestAddCheckpointCorruptedRepeatedLogSignature: c2sp.org/tlog-witness
// (main) answers 403 to a checkpoint whose valid log signature is followed
// by a corrupted line with the same key name and key ID, and the witness
// cosigns nothing and stores nothing.
func TestAddCheckpointCorruptedRepeatedLogSignature(t *testing.T) {
	l := newTestLog(t, "example.com/repeated-sig", nil)
	l.grow(5, "e")
	f := newFixture(t, fixtureOptions{}, l)
	cp := string(l.checkpoint(t, 5))
	last := strings.SplitAfter(cp, "\n")
	line := last[len(last)-2] // "— <origin> <base64>\n", the log's signature
	name, b64, _ := strings.Cut(strings.TrimSuffix(strings.TrimPrefix(line, "— "), "\n"), " ")
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		t.Fatal(err)
	}
	raw[len(raw)-1] ^= 1 // the key ID in raw[:4] stays
	bad := cp + "— " + name + " " + base64.StdEncoding.EncodeToString(raw) + "\n"
	r := f.post(requestBody(0, nil, []byte(bad)))
	if r.code != http.StatusForbidden {
		t.Fatalf("status %d (%q), want 403", r.code, r.body)
	}
	if st := f.states(); len(st) != 0 {
		t.Fatalf("stored %v after a refused checkpoint", st)
	}
	// The same checkpoint without the corrupted line is cosigned.
	f.push(l, 0, 5, http.StatusOK)
}
