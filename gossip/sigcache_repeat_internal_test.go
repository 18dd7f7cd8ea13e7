package gossip

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"github.com/vigilnet/vigil/roster"
	"github.com/vigilnet/vigil/tlog"
)

// TestVerifyCheckpointRepeatedLines: the gossip validator's verification
// (tlog.VerifyCheckpointWith through the signature cache) rejects a note
// whose valid line of a roster key is followed by a corrupted line of the
// same name and key ID, even once the valid line is in the cache.
func TestVerifyCheckpointRepeatedLines(t *testing.T) {
	logS, logV := newTestKey(t, "log.example")
	wskey, wvkey, err := tlog.GenerateCosignerKey(rand.Reader, "witness.example")
	if err != nil {
		t.Fatal(err)
	}
	ws, err := tlog.NewCosignatureSigner(wskey, nil)
	if err != nil {
		t.Fatal(err)
	}
	r, err := roster.ParsePolicy(fmt.Appendf(nil, "log %s\nwitness w %s\n", testVKeys[logV], wvkey))
	if err != nil {
		t.Fatal(err)
	}
	good, err := note.Sign(&note.Note{Text: "log.example\n7\nWmH8K1T5z6cXdPJDIUPdQMbLKxGUf69lp9PaXLZRmcg=\n"}, logS, ws)
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.SplitAfter(good[bytes.Index(good, []byte("\n\n"))+2:], []byte("\n"))
	corrupt := func(line []byte) []byte {
		name, b64, _ := bytes.Cut(bytes.TrimSuffix(bytes.TrimPrefix(line, []byte("— ")), []byte("\n")), []byte(" "))
		raw, err := base64.StdEncoding.DecodeString(string(b64))
		if err != nil {
			t.Fatal(err)
		}
		raw[len(raw)-1] ^= 1
		return fmt.Appendf(nil, "— %s %s\n", name, base64.StdEncoding.EncodeToString(raw))
	}
	c := newSigCache(16)
	if _, _, err := c.verifyCheckpoint(r, "log.example", good); err != nil {
		t.Fatal(err)
	}
	for name, msg := range map[string][]byte{
		"log line":         append(bytes.Clone(good), corrupt(lines[0])...),
		"cosignature line": append(bytes.Clone(good), corrupt(lines[1])...),
	} {
		if _, _, err := c.verifyCheckpoint(r, "log.example", msg); !errors.Is(err, tlog.ErrBadSignature) {
			t.Errorf("corrupted repeated %s: err = %v, want ErrBadSignature", name, err)
		}
	}
}
