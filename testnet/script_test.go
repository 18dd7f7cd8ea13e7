package testnet_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/vigilnet/vigil/gossip/evidence"
	"github.com/vigilnet/vigil/node"
	vpb "github.com/vigilnet/vigil/proto"
	"github.com/vigilnet/vigil/roster"
	"github.com/vigilnet/vigil/scitt"
	"github.com/vigilnet/vigil/testnet"
	"github.com/vigilnet/vigil/tlog"
)

func TestParseScript(t *testing.T) {
	steps, err := testnet.ParseScript(testnet.DefaultScript)
	if err != nil {
		t.Fatal(err)
	}
	if len(steps) < 10 || steps[0].Op != "say" {
		t.Fatalf("parsed %d steps: %+v", len(steps), steps)
	}
	for name, src := range map[string]string{
		"no at":                  "grow log-0 1\n",
		"bad time":               "at soon grow log-0 1\n",
		"unknown op":             "at 1s explode\n",
		"too few args":           "at 1s grow log-0\n",
		"too many args":          "at 1s heal now\n",
		"out of order":           "at 2s heal\nat 1s heal\n",
		"negative time":          "at -1s heal\n",
		"missing op":             "at 1s\n",
		"comment inline":         "at 1s grow # log-0 1\n",
		"register no count":      "at 1s register\n",
		"register two counts":    "at 1s register 1 2\n",
		"register zero":          "at 1s register 0\n",
		"register negative":      "at 1s register -3\n",
		"register not a number":  "at 1s register many\n",
		"register too many":      "at 1s register 1001\n",
		"wait-cosigned bad":      "at 1s wait-cosigned soon\n",
		"wait-cosigned zero":     "at 1s wait-cosigned 0s\n",
		"wait-cosigned two":      "at 1s wait-cosigned 1s 2s\n",
		"wait-evidence negative": "at 1s wait-evidence -5s\n",
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := testnet.ParseScript([]byte(src)); err == nil || !strings.Contains(err.Error(), "line") {
				t.Fatalf("err = %v, want an error naming the line", err)
			}
		})
	}
}

func TestParseScriptSteps(t *testing.T) {
	for _, tc := range []struct {
		src  string
		want testnet.Step
	}{
		{"at 1s register 5\n", testnet.Step{At: time.Second, Op: "register", Args: []string{"5"}, Line: 1}},
		{"# ts\nat 0s register 1000 # the most one step takes\n", testnet.Step{Op: "register", Args: []string{"1000"}, Line: 2}},
		{"at 2s wait-cosigned\n", testnet.Step{At: 2 * time.Second, Op: "wait-cosigned", Args: []string{}, Line: 1}},
		{"at 2s wait-cosigned 30s\n", testnet.Step{At: 2 * time.Second, Op: "wait-cosigned", Args: []string{"30s"}, Line: 1}},
		{"at 3s wait-evidence 1m\n", testnet.Step{At: 3 * time.Second, Op: "wait-evidence", Args: []string{"1m"}, Line: 1}},
	} {
		t.Run(tc.src, func(t *testing.T) {
			steps, err := testnet.ParseScript([]byte(tc.src))
			if err != nil {
				t.Fatal(err)
			}
			if len(steps) != 1 || !reflect.DeepEqual(steps[0], tc.want) {
				t.Fatalf("got %+v, want [%+v]", steps, tc.want)
			}
		})
	}
}

// TestDefaultScript runs the default fault script on an in-process network:
// a kill and restart, a log withholding proofs, a partition with a flood, an
// equivocation across it, a witness cosigning both views, the heal, and
// statements registered with the transparency service throughout — and
// checks that every node's evidence verifies, that a witness equivocation
// was caught, that every receipt verifies, that every node serves the
// service's checkpoint with the roster's quorum of cosignatures, and that
// nobody accuses the service (or any honest log).
func TestDefaultScript(t *testing.T) {
	if testing.Short() {
		t.Skip("network scenario")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var out bytes.Buffer
	sn, err := testnet.StartScripted(ctx, testnet.Options{Dir: t.TempDir(), Witnesses: 8, Observers: 2, FollowInterval: 200 * time.Millisecond}, testnet.ScriptedOptions{Logs: 2, SCITT: true}, &out)
	if err != nil {
		t.Fatal(err)
	}
	defer sn.Stop()
	steps, err := testnet.ParseScript(testnet.DefaultScript)
	if err != nil {
		t.Fatal(err)
	}
	if err := sn.Scenario.Run(ctx, steps); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	r, err := roster.Load(sn.RosterPath)
	if err != nil {
		t.Fatal(err)
	}
	witnessEquivocation := false
	for i, m := range sn.Members {
		ev, err := sn.Evidence(ctx, i)
		if err != nil {
			t.Fatal(err)
		}
		for _, rec := range ev {
			e, err := vpb.UnmarshalEvidence(rec.Data)
			if err != nil {
				t.Fatal(err)
			}
			f, err := evidence.Verify(e, r)
			if err != nil {
				t.Fatalf("%s: invalid evidence: %v", m.Name, err)
			}
			if f.Origin == testnet.TSOrigin {
				t.Fatalf("%s: false evidence against the transparency service: %s", m.Name, rec.Statement)
			}
			if f.Origin != sn.Logs["log-0"].Log.Origin() {
				t.Fatalf("%s: false evidence about %s", m.Name, f.Origin)
			}
			if rec.Witness != "" {
				witnessEquivocation = true
			}
		}
	}
	if !witnessEquivocation {
		t.Error("no node caught the witness that cosigned both views")
	}
	checkTransparencyService(t, ctx, sn, steps, r)
	checkEvidenceRegistered(t, ctx, sn)
	for _, want := range []string{"COSE receipts verified offline", "quorum met", "every running node serves size"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("script output lacks %q", want)
		}
	}
	t.Log(out.String())
}

// checkTransparencyService checks what the default script did with the
// transparency service, with nothing but the roster and the receipt key.
func checkTransparencyService(t *testing.T, ctx context.Context, sn *testnet.ScriptedNetwork, steps []testnet.Step, r *roster.Roster) {
	t.Helper()
	want := 0
	for _, st := range steps {
		if st.Op == "register" {
			n, err := strconv.Atoi(st.Args[0])
			if err != nil {
				t.Fatal(err)
			}
			want += n
		}
	}
	regs := sn.TS.Registered()
	if want == 0 || len(regs) != want {
		t.Fatalf("%d statements registered, the script registers %d", len(regs), want)
	}
	indexes := map[uint64]bool{}
	for _, reg := range regs {
		if err := scitt.VerifyReceipt(reg.Statement, reg.Receipt, sn.TS.ReceiptKey()); err != nil {
			t.Errorf("receipt for entry %d: %v", reg.Index, err)
		}
		indexes[reg.Index] = true
	}
	if len(indexes) != want {
		t.Errorf("%d distinct entries for %d registrations", len(indexes), want)
	}
	l, ok := r.Log(testnet.TSOrigin)
	if !ok || l.URL != sn.TS.URL {
		t.Fatalf("the roster lists the transparency service as %+v, want URL %s", l, sn.TS.URL)
	}
	for _, m := range sn.Members {
		if !m.Running() {
			continue
		}
		u := fmt.Sprintf("%s/v1/logs/%s/checkpoint?k=%d", m.URL, tlog.LogID(testnet.TSOrigin), sn.Quorum())
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: GET %s: %s, %v", m.Name, u, resp.Status, err)
		}
		c, n, err := tlog.VerifyCheckpoint(body, testnet.TSOrigin, []note.Verifier{l.Verifier}, r.WitnessVerifiers()...)
		if err != nil {
			t.Fatalf("%s serves a transparency-service checkpoint that does not verify: %v", m.Name, err)
		}
		cosigned := map[string]bool{}
		for _, w := range r.Witnesses() {
			cosigned[w.Name] = tlog.SignedBy(n, w.Verifier)
		}
		if c.Size < uint64(want) || !r.QuorumMet(cosigned) {
			t.Errorf("%s serves the transparency service at size %d cosigned by %v, want size ≥ %d and the quorum", m.Name, c.Size, cosigned, want)
		}
	}
}

// checkEvidenceRegistered checks that the evidence every node found became
// an entry of the transparency service (node option evidence.register_to,
// on in scripted networks with a transparency service).
func checkEvidenceRegistered(t *testing.T, ctx context.Context, sn *testnet.ScriptedNetwork) {
	t.Helper()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	deadline := time.Now().Add(time.Minute)
	registered := 0
	for i, m := range sn.Members {
		ev, err := sn.Evidence(ctx, i)
		if err != nil {
			t.Fatal(err)
		}
		for _, rec := range ev {
			for {
				entries, err := node.ReadEvidenceEntries(filepath.Join(m.Dir, "data"))
				if err != nil {
					t.Fatal(err)
				}
				if id := entries[rec.ID]; id != "" {
					if _, err := sn.TS.EntryReceipt(ctx, id); err != nil {
						t.Fatalf("%s: evidence %s entry %s: %v", m.Name, rec.ID, id, err)
					}
					registered++
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s: evidence %s not registered with the transparency service", m.Name, rec.ID)
				}
				<-tick.C
			}
		}
	}
	if registered == 0 {
		t.Fatal("no evidence was registered")
	}
	t.Logf("%d pieces of evidence are entries of the transparency service", registered)
}
