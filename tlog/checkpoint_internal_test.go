package tlog

import (
	"bytes"
	"encoding/base64"
	"strconv"
	"testing"
)

// parseCheckpointRef is ParseCheckpoint written with the standard
// library's parsers (SplitN, ParseUint, Strict base64), the reference the
// allocation-free one must agree with.
func parseCheckpointRef(text []byte) (Checkpoint, bool) {
	var c Checkpoint
	if len(text) > MaxCheckpointBody || len(text) == 0 || text[len(text)-1] != '\n' {
		return c, false
	}
	lines := bytes.SplitN(text, []byte("\n"), 4)
	if len(lines) < 4 || len(lines[0]) == 0 {
		return c, false
	}
	c.Origin = string(lines[0])
	size, err := strconv.ParseUint(string(lines[1]), 10, 64)
	if err != nil || strconv.FormatUint(size, 10) != string(lines[1]) || size > 1<<63-1 {
		return c, false
	}
	c.Size = size
	root, err := base64.StdEncoding.Strict().DecodeString(string(lines[2]))
	if err != nil || len(root) != 32 || base64.StdEncoding.EncodeToString(root) != string(lines[2]) {
		return c, false
	}
	copy(c.Root[:], root)
	for r := lines[3]; len(r) > 0; {
		i := bytes.IndexByte(r, '\n')
		if i <= 0 {
			return c, false
		}
		r = r[i+1:]
	}
	c.Extensions = string(lines[3])
	return c, true
}

// FuzzParseCheckpointMatchesReference: ParseCheckpoint accepts exactly what
// the reference accepts, with the same result.
func FuzzParseCheckpointMatchesReference(f *testing.F) {
	const root = "WmH8K1T5z6cXdPJDIUPdQMbLKxGUf69lp9PaXLZRmcg="
	for _, s := range []string{
		"o\n7\n" + root + "\n",
		"o\n7\n" + root + "\next\n",
		"o\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n",
		"o\n07\n" + root + "\n",
		"o\n+7\n" + root + "\n",
		"o\n9223372036854775807\n" + root + "\n",
		"o\n9223372036854775808\n" + root + "\n",
		"o\n18446744073709551616\n" + root + "\n",
		"o\n7\nWmH8K1T5z6cXdPJDIUPdQMbLKxGUf69lp9PaXLZRmch=\n",
		"o\n7\nWmH8K1T5z6cXdPJDIUPdQMbLKxGUf69lp9PaXLZRmcg\n",
		"o\n7\nWmH8K1T5z6cXdPJDIUPdQMbLKxGUf69lp9PaXLZRm\rcg=\n",
		"o\n7\nWmH8K1T5z6cXdPJDIUPdQMbLKxGUf69lp9PaXLZRmcgA\n",
		"o\n7\n" + root + "\n\n",
		"o\n7\n",
		"\n7\n" + root + "\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := ParseCheckpoint(b)
		want, ok := parseCheckpointRef(b)
		if (err == nil) != ok || ok && got != want {
			t.Fatalf("ParseCheckpoint(%q) = %+v, %v; reference %+v, %v", b, got, err, want, ok)
		}
	})
}

func BenchmarkParseCheckpoint(b *testing.B) {
	text := []byte("bench.vigil.example/0\n12345\nWmH8K1T5z6cXdPJDIUPdQMbLKxGUf69lp9PaXLZRmcg=\n")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseCheckpoint(text); err != nil {
			b.Fatal(err)
		}
	}
}
