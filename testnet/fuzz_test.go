package testnet_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/vigilnet/vigil/testnet"
)

// FuzzParseScript checks that the fault-script parser never panics and that
// what it accepts is in time order and means the same when written out
// again. Seeds: the default script and testdata/fuzz/FuzzParseScript.
func FuzzParseScript(f *testing.F) {
	f.Add(testnet.DefaultScript)
	f.Fuzz(func(t *testing.T, src []byte) {
		steps, err := testnet.ParseScript(src)
		if err != nil {
			return
		}
		var out strings.Builder
		for i, st := range steps {
			if i > 0 && (st.At < steps[i-1].At || st.Line <= steps[i-1].Line) {
				t.Fatalf("steps out of order: %+v then %+v", steps[i-1], st)
			}
			fmt.Fprintf(&out, "at %s %s %s\n", st.At, st.Op, strings.Join(st.Args, " "))
		}
		again, err := testnet.ParseScript([]byte(out.String()))
		if err != nil {
			t.Fatalf("written out again, the script does not parse: %v\n%s", err, out.String())
		}
		if len(again) != len(steps) {
			t.Fatalf("%d steps, %d once written out again", len(steps), len(again))
		}
		for i := range steps {
			a, b := steps[i], again[i]
			if a.At != b.At || a.Op != b.Op || strings.Join(a.Args, "\x00") != strings.Join(b.Args, "\x00") {
				t.Fatalf("step %d: %+v, written out and parsed again %+v", i, a, b)
			}
		}
	})
}
