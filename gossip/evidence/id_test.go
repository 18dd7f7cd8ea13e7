package evidence_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/vigilnet/vigil/gossip/evidence"
	"github.com/vigilnet/vigil/roster"
)

// TestGoldenEvidenceID recomputes the IDs of the golden evidence files in
// testdata/golden from docs/evidence.md's description alone (the file read
// by hand, the hash input built here), checks that the code computes the
// same IDs, that the files are valid evidence, and that the document's
// worked example shows the ID it works out.
func TestGoldenEvidenceID(t *testing.T) {
	r, err := roster.Load("testdata/golden/roster")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile("../../docs/evidence.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"different-sizes", "same-size"} {
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile("testdata/golden/" + name + ".evidence")
			if err != nil {
				t.Fatal(err)
			}
			want, err := os.ReadFile("testdata/golden/" + name + ".id")
			if err != nil {
				t.Fatal(err)
			}
			id := strings.TrimSpace(string(want))
			if got := documentedID(t, data); got != id {
				t.Fatalf("ID recomputed from the documentation %s, golden %s", got, id)
			}
			e, err := evidence.ParseFile(data)
			if err != nil {
				t.Fatal(err)
			}
			if got := evidence.ID(e); got != id {
				t.Fatalf("evidence.ID %s, golden %s", got, id)
			}
			if _, err := evidence.Verify(e, r); err != nil {
				t.Fatalf("golden evidence does not verify: %v", err)
			}
			if name == "different-sizes" && !bytes.Contains(doc, []byte(id)) {
				t.Fatalf("docs/evidence.md's worked example does not show ID %s", id)
			}
		})
	}
}

// documentedID is the evidence ID exactly as docs/evidence.md specifies it,
// from an evidence file read by hand.
func documentedID(t *testing.T, file []byte) string {
	t.Helper()
	kinds := map[string]byte{"log-equivocation-same-size": 1, "log-equivocation-different-sizes": 2, "witness-equivocation": 3}
	var kind, witness []byte
	var notes [][]byte
	for rest := file; len(rest) > 0; {
		line, after, ok := bytes.Cut(rest, []byte("\n"))
		if !ok {
			t.Fatalf("unterminated line %q", rest)
		}
		key, val, _ := strings.Cut(string(line), " ")
		rest = after
		switch key {
		case "kind":
			k, ok := kinds[val]
			if !ok {
				t.Fatalf("kind %q", val)
			}
			kind = []byte{k}
		case "witness":
			witness = []byte(val)
		case "checkpoint":
			n, err := strconv.Atoi(val)
			if err != nil || n > len(rest) {
				t.Fatalf("checkpoint length %q", val)
			}
			notes, rest = append(notes, rest[:n]), rest[n:]
		}
	}
	if kind == nil || len(notes) != 2 {
		t.Fatalf("kind %v, %d notes", kind, len(notes))
	}
	// The body: the note's text up to and including the newline that
	// precedes the blank line.
	body := func(n []byte) []byte {
		text, _, _ := bytes.Cut(n, []byte("\n\n"))
		return append(bytes.Clone(text), '\n')
	}
	size := func(b []byte) string { return strings.Split(string(b), "\n")[1] }
	a, b := body(notes[0]), body(notes[1])
	if size(a) == size(b) && bytes.Compare(a, b) > 0 {
		a, b = b, a
	}
	msg := []byte("vigil evidence id v1\n")
	for _, part := range [][]byte{kind, witness, a, b} {
		msg = binary.BigEndian.AppendUint64(msg, uint64(len(part)))
		msg = append(msg, part...)
	}
	sum := sha256.Sum256(msg)
	return hex.EncodeToString(sum[:])
}
