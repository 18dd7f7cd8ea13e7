package tlog

import (
	"bytes"
	"testing"
)

func TestLastBlankLine(t *testing.T) {
	for _, msg := range []string{"", "\n", "\n\n", "a\n\nb\n", "a\n\n\nb\n", "a\n\nb\n\nc\n", "\n\nx", "ab\nc\n", "x\n\n", "\n\n\n"} {
		if got, want := lastBlankLine([]byte(msg)), bytes.LastIndex([]byte(msg), []byte("\n\n")); got != want {
			t.Errorf("lastBlankLine(%q) = %d, want %d", msg, got, want)
		}
	}
}
