package tlogproof_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigilnet/vigil/tlog/tlogproof"
)

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		file   string
		index  uint64
		hashes int
		extra  string
	}{
		{"index3.tlog-proof", 3, 3, ""},
		{"index0-extra.tlog-proof", 0, 3, "hello"},
		{"index6.tlog-proof", 6, 2, ""},
		{"spec-example.tlog-proof", 73894, 5, "age-v1.2.1-darwin-arm64.tar.gz\x91\x85\xc9\xdd\xa5\xb8\xb5\x85\xc9"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			b := readFile(t, tc.file)
			p, err := tlogproof.Parse(b)
			if err != nil {
				t.Fatal(err)
			}
			if p.Index != tc.index || len(p.Hashes) != tc.hashes || string(p.Extra) != tc.extra {
				t.Errorf("got index %d, %d hashes, extra %q", p.Index, len(p.Hashes), p.Extra)
			}
			if (tc.extra == "") != (p.Extra == nil) {
				t.Errorf("Extra = %v, want nil iff absent", p.Extra)
			}
			if !bytes.HasPrefix(p.Checkpoint, []byte("example.com/")) {
				t.Errorf("checkpoint starts %q", p.Checkpoint[:20])
			}
			if got := p.Marshal(); !bytes.Equal(got, b) {
				t.Errorf("Marshal does not reproduce the file:\n%s", got)
			}
		})
	}
}

func TestParseMalformed(t *testing.T) {
	valid := string(readFile(t, "index3.tlog-proof"))
	head, cp, _ := strings.Cut(valid, "\n\n") // cp: the checkpoint note
	h := "qze6NNHf4pAV3nF6bVdkqPsCnDp6D1tkuTtUNRiFv3w="
	for _, tc := range []struct {
		name, in, want string
	}{
		{"empty", "", "first line"},
		{"wrong header", "c2sp.org/tlog-proof@v2\nindex 0\n\n" + cp, "first line"},
		{"header with CR", "c2sp.org/tlog-proof@v1\r\nindex 0\n\n" + cp, "first line"},
		{"header only", "c2sp.org/tlog-proof@v1\n", "missing index"},
		{"header without newline", "c2sp.org/tlog-proof@v1", "first line"},
		{"no index", "c2sp.org/tlog-proof@v1\n" + h + "\n\n" + cp, "not an index line"},
		{"extra only", "c2sp.org/tlog-proof@v1\nextra aGVsbG8=\n", "missing index"},
		{"empty extra", "c2sp.org/tlog-proof@v1\nextra \nindex 0\n\n" + cp, "empty extra"},
		{"extra not base64", "c2sp.org/tlog-proof@v1\nextra a!b=\nindex 0\n\n" + cp, "extra data"},
		{"extra unpadded", "c2sp.org/tlog-proof@v1\nextra aGVsbG8\nindex 0\n\n" + cp, "extra data"},
		{"extra url alphabet", "c2sp.org/tlog-proof@v1\nextra _-8=\nindex 0\n\n" + cp, "extra data"},
		{"extra with CR", "c2sp.org/tlog-proof@v1\nextra aGVsbG8=\r\nindex 0\n\n" + cp, "extra data"},
		{"extra after index", "c2sp.org/tlog-proof@v1\nindex 0\nextra aGVsbG8=\n\n" + cp, "inclusion proof line 1"},
		{"two extra lines", "c2sp.org/tlog-proof@v1\nextra aGVsbG8=\nextra aGVsbG8=\nindex 0\n\n" + cp, "not an index line"},
		{"index leading zero", "c2sp.org/tlog-proof@v1\nindex 03\n\n" + cp, "leading zeroes"},
		{"index plus", "c2sp.org/tlog-proof@v1\nindex +3\n\n" + cp, "leading zeroes"},
		{"index negative", "c2sp.org/tlog-proof@v1\nindex -1\n\n" + cp, "leading zeroes"},
		{"index empty", "c2sp.org/tlog-proof@v1\nindex \n\n" + cp, "leading zeroes"},
		{"index hex", "c2sp.org/tlog-proof@v1\nindex 0x3\n\n" + cp, "leading zeroes"},
		{"index overflow", "c2sp.org/tlog-proof@v1\nindex 18446744073709551616\n\n" + cp, "leading zeroes"},
		{"index two spaces", "c2sp.org/tlog-proof@v1\nindex  3\n\n" + cp, "leading zeroes"},
		{"index trailing space", "c2sp.org/tlog-proof@v1\nindex 3 \n\n" + cp, "leading zeroes"},
		{"index tab", "c2sp.org/tlog-proof@v1\nindex\t3\n\n" + cp, "not an index line"},
		{"index CR", "c2sp.org/tlog-proof@v1\nindex 3\r\n\n" + cp, "leading zeroes"},
		{"hash short", "c2sp.org/tlog-proof@v1\nindex 3\nAAAA\n\n" + cp, "line 1 is not base64 of 32"},
		{"hash long", "c2sp.org/tlog-proof@v1\nindex 3\n" + h + "AAAA\n\n" + cp, "line 1"},
		{"hash not base64", "c2sp.org/tlog-proof@v1\nindex 3\n" + strings.Repeat("!", 44) + "\n\n" + cp, "line 1"},
		{"hash unpadded", "c2sp.org/tlog-proof@v1\nindex 3\n" + strings.TrimSuffix(h, "=") + "\n\n" + cp, "line 1"},
		{"hash noncanonical", "c2sp.org/tlog-proof@v1\nindex 3\nqze6NNHf4pAV3nF6bVdkqPsCnDp6D1tkuTtUNRiFv3x=\n\n" + cp, "line 1"},
		{"hash with CR", "c2sp.org/tlog-proof@v1\nindex 3\n" + h + "\r\n\n" + cp, "line 1"},
		{"hash with space", "c2sp.org/tlog-proof@v1\nindex 3\n " + h + "\n\n" + cp, "line 1"},
		{"second hash bad", "c2sp.org/tlog-proof@v1\nindex 3\n" + h + "\nAAAA\n\n" + cp, "line 2"},
		{"64 hashes", "c2sp.org/tlog-proof@v1\nindex 3\n" + strings.Repeat(h+"\n", 64) + "\n" + cp, "more than 63"},
		{"no blank line", "c2sp.org/tlog-proof@v1\nindex 3\n" + h + "\n", "no empty line"},
		{"no checkpoint", "c2sp.org/tlog-proof@v1\nindex 3\n" + h + "\n\n", "no checkpoint"},
		{"checkpoint without newline", strings.TrimSuffix(valid, "\n"), "newline"},
		{"checkpoint without signatures", head + "\n\nexample.com/log\n7\nWmH8K1T5z6cXdPJDIUPdQMbLKxGUf69lp9PaXLZRmcg=\n", "signature block"},
		{"too large", valid + strings.Repeat("x", tlogproof.MaxSize), "limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := tlogproof.Parse([]byte(tc.in))
			if !errors.Is(err, tlogproof.ErrMalformed) {
				t.Fatalf("Parse = %+v, %v; want ErrMalformed", p, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
		})
	}
}

// A proof of index 0 in a tree of size 1 has no proof lines: the empty line
// follows the index line directly.
func TestParseNoProofLines(t *testing.T) {
	in := "c2sp.org/tlog-proof@v1\nindex 0\n\nexample.com/log\n1\nWmH8K1T5z6cXdPJDIUPdQMbLKxGUf69lp9PaXLZRmcg=\n\n— example.com/log AAAA\n"
	p, err := tlogproof.Parse([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Hashes) != 0 || p.Index != 0 {
		t.Errorf("got %+v", p)
	}
	if string(p.Marshal()) != in {
		t.Errorf("round trip: %q", p.Marshal())
	}
}

// Marshal writes no extra line for empty extra data, so that what it
// writes parses back.
func TestMarshalEmptyExtra(t *testing.T) {
	p, err := tlogproof.Parse(readFile(t, "index3.tlog-proof"))
	if err != nil {
		t.Fatal(err)
	}
	p.Extra = []byte{}
	q, err := tlogproof.Parse(p.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	if q.Extra != nil {
		t.Errorf("extra %q", q.Extra)
	}
}
