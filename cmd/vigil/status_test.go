package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vigilnet/vigil/store"
)

// TestStatusDivergence: vigil status lists an open unproven divergence
// with both sizes, roots and cosigners and exits 1 (contested) while it is
// open; other suspicions are listed but leave the exit code alone.
func TestStatusDivergence(t *testing.T) {
	url, _, l, db := startFeedCmdNode(t)
	ctx := context.Background()
	run := func() (int, string, string) {
		var out, errb bytes.Buffer
		code := vigilMain([]string{"status", "--node", url}, &out, &errb)
		return code, out.String(), errb.String()
	}
	fork, err := l.Fork(9)
	if err != nil {
		t.Fatal(err)
	}
	fork.AppendN(3, "fork")
	sr, _ := l.Root(9)
	lr, _ := fork.Root(12)
	small := store.SuspicionSide{Size: 9, Root: sr, Cosigners: []string{"self"}}
	large := store.SuspicionSide{Size: 12, Root: lr, Cosigners: []string{"other"}}
	first := time.Date(2026, 12, 7, 17, 0, 0, 0, time.UTC)
	l.AppendN(1, "a")
	r10, _ := l.Root(10)
	b64 := func(r [32]byte) string { return base64.StdEncoding.EncodeToString(r[:]) }

	steps := []struct {
		name  string
		do    func() error
		code  int
		state string
		out   []string // substrings of stdout
		no    []string // not in stdout
		err   string   // substring of stderr
	}{
		{"nothing open", func() error { return nil }, 0, "ok", nil, []string{"DIVERGENT", "SUSPECT"}, ""},
		{"an unverifiable checkpoint", func() error {
			return db.RecordSuspicion(ctx, l.Origin(), 10, r10, "log serves no consistency proof", first)
		}, 0, "suspect", []string{"SUSPECT " + l.Origin() + ": 1 checkpoint the log did not let the node check"}, []string{"DIVERGENT"}, ""},
		{"a divergence", func() error {
			if err := db.RecordDivergence(ctx, l.Origin(), small, large, "log serves no tiles", first); err != nil {
				return err
			}
			return db.RecordDivergence(ctx, l.Origin(), small, large, "log serves no tiles", first.Add(time.Minute))
		}, exitContested, "divergent", []string{
			fmt.Sprintf("DIVERGENT %s: size 12 (root %s, cosigned by other) and size 9 (root %s, cosigned by self) are both signed by the log; nobody has shown them consistent", l.Origin(), b64(lr), b64(sr)),
			"log serves no tiles; seen 2 times, first 2026-12-07T17:00:00Z, last 2026-12-07T17:01:00Z",
			"SUSPECT " + l.Origin() + ": 1 checkpoint the log did not let the node check",
			"CONTESTED " + l.Origin() + ": conflicting sizes 9, 12 (0 evidence, 1 open divergences)",
		}, nil, "1 log has an unproven divergence open"},
		{"resolved", func() error {
			return db.ResolveSuspicion(ctx, l.Origin(), 12, lr, store.ResolvedConsistent, first.Add(time.Hour))
		}, 0, "suspect", nil, []string{"DIVERGENT"}, ""},
	}
	for _, st := range steps {
		if err := st.do(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		code, out, errs := run()
		if code != st.code || !strings.Contains(errs, st.err) {
			t.Errorf("%s: exit %d (want %d), stderr %q\n%s", st.name, code, st.code, errs, out)
		}
		lines := strings.Split(out, "\n")
		if f := strings.Fields(lines[1]); len(lines) < 2 || f[len(f)-1] != st.state {
			t.Errorf("%s: row %q, want state %s", st.name, lines[1], st.state)
		}
		for _, want := range st.out {
			if !strings.Contains(out, want) {
				t.Errorf("%s: stdout lacks %q:\n%s", st.name, want, out)
			}
		}
		for _, not := range st.no {
			if strings.Contains(out, not) {
				t.Errorf("%s: stdout has %q:\n%s", st.name, not, out)
			}
		}
	}
}
