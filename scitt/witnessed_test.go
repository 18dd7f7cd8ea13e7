package scitt_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"
	"golang.org/x/sync/errgroup"

	"github.com/vigilnet/vigil/node"
	"github.com/vigilnet/vigil/roster"
	"github.com/vigilnet/vigil/scitt"
	"github.com/vigilnet/vigil/tlog"
	"github.com/vigilnet/vigil/tlog/tlogproof"
)

// startWitnessNode runs a real Vigil node, stopped when the test ends,
// with a new cosigning key for witness.vigil.test and the roster
// rosterText(vkey) returns; configure, if not nil, adjusts its config.
func startWitnessNode(t *testing.T, rosterText func(vkey string) string, configure func(*node.Config)) (n *node.Node, vkey string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	keysDir := filepath.Join(t.TempDir(), "keys")
	vkey, err := node.GenerateKeys(keysDir, "witness.vigil.test")
	if err != nil {
		t.Fatal(err)
	}
	rosterPath := filepath.Join(t.TempDir(), "roster.txt")
	if err := os.WriteFile(rosterPath, []byte(rosterText(vkey)), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := node.DefaultConfig()
	cfg.DataDir = filepath.Join(t.TempDir(), "node")
	cfg.KeysDir = keysDir
	cfg.Roster = rosterPath
	if configure != nil {
		configure(&cfg)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	n, err = node.New(cfg, node.Deps{Listener: ln, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return n, vkey
}

// witnessNode runs a real Vigil witness node whose roster lists the test
// log, and returns its URL, its cosignature verifier key and the
// tlog-policy a verifier of the log's witnessed receipts uses.
func witnessNode(t *testing.T, e *testEnv) (url, vkey string, policy *roster.Roster) {
	t.Helper()
	var text string
	n, vkey := startWitnessNode(t, func(vkey string) string {
		text = "log " + e.logVKey + "\nwitness w1 " + vkey + "\nquorum w1\n"
		return text
	}, nil)
	policy, err := roster.ParsePolicy([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return n.URL(), vkey, policy
}

// grow registers n statements numbered from first, in rounds of 100
// concurrent registrations, so the log grows over several checkpoints.
func grow(t *testing.T, svc *scitt.Service, e *testEnv, first, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for lo := first; lo < first+n; lo += 100 {
		g, gctx := errgroup.WithContext(ctx)
		for i := lo; i < min(lo+100, first+n); i++ {
			stmt := sign(t, e.issuer, scitt.KindInventory, i, scitt.SignOptions{})
			g.Go(func() error {
				reg, err := svc.Register(gctx, stmt, "127.0.0.1")
				if err != nil {
					return err
				}
				_, err = svc.Wait(gctx, reg)
				return err
			})
		}
		if err := g.Wait(); err != nil {
			t.Fatal(err)
		}
	}
}

func fetchWitnessed(t *testing.T, url string) *scitt.WitnessedReceipt {
	t.Helper()
	r := do(t, "GET", url, "", nil)
	if r.code != http.StatusOK || r.header.Get("Content-Type") != scitt.WitnessedReceiptContentType {
		t.Fatalf("GET %s: %d %s %v", url, r.code, r.header.Get("Content-Type"), r.problem)
	}
	w, err := scitt.ParseWitnessedReceipt(r.body)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func encode(t *testing.T, w *scitt.WitnessedReceipt) []byte {
	t.Helper()
	b, err := w.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestWitnessedReceiptAfterGrowth registers a statement on a log witnessed
// by a real Vigil node, grows the log by a few hundred entries, and checks
// that the statement's witnessed receipt and tlog-proof are served and
// verify offline against the tlog-policy, against the first witnessed
// checkpoint (equal sizes) and against the latest (consistency proof), and
// after a restart.
func TestWitnessedReceiptAfterGrowth(t *testing.T) {
	e := newEnv(t)
	wurl, wvkey, policy := witnessNode(t, e)
	cfg := e.config(t)
	cfg.Witnesses = &scitt.WitnessConfig{Witnesses: []scitt.Witness{{URL: wurl, VKey: wvkey}}, Timeout: 10 * time.Second}
	svc, srv := e.startWith(t, cfg, scitt.HandlerOptions{SyncWait: 10 * time.Second})
	key := e.receipt.Public()

	stmt := sign(t, e.issuer, scitt.KindConfiguration, 0, scitt.SignOptions{})
	loc, _ := register(t, srv.URL, stmt)
	first := fetchWitnessed(t, srv.URL+loc+"/witnessed-receipt")
	res, err := scitt.VerifyWitnessedReceipt(stmt, encode(t, first), key, policy)
	if err != nil {
		t.Fatal(err)
	}
	if res.Checkpoint.Size != res.Receipt.Proof.Size || len(first.Consistency) != 0 || strings.Join(res.Cosigners, ",") != "w1" {
		t.Fatalf("first witnessed receipt: checkpoint %d, receipt %d, %d consistency hashes, cosigners %v",
			res.Checkpoint.Size, res.Receipt.Proof.Size, len(first.Consistency), res.Cosigners)
	}
	entry, err := scitt.EntryFor(stmt)
	if err != nil {
		t.Fatal(err)
	}
	checkTLogProof(t, srv.URL+loc+"/tlog-proof", entry, policy)

	const more = 300
	grow(t, svc, e, 1, more)

	again := fetchWitnessed(t, srv.URL+loc+"/witnessed-receipt")
	if _, err := scitt.VerifyWitnessedReceipt(stmt, encode(t, again), key, policy); err != nil {
		t.Fatalf("first witnessed checkpoint after growth: %v", err)
	}
	if string(again.Checkpoint) != string(first.Checkpoint) {
		t.Errorf("the first witnessed checkpoint changed:\n%s\n%s", first.Checkpoint, again.Checkpoint)
	}
	latest := fetchWitnessed(t, srv.URL+loc+"/witnessed-receipt?checkpoint=latest")
	res, err = scitt.VerifyWitnessedReceipt(stmt, encode(t, latest), key, policy)
	if err != nil {
		t.Fatalf("latest witnessed checkpoint: %v", err)
	}
	if res.Checkpoint.Size < more+1 || len(latest.Consistency) == 0 {
		t.Fatalf("latest: checkpoint size %d, %d consistency hashes", res.Checkpoint.Size, len(latest.Consistency))
	}
	checkTLogProof(t, srv.URL+loc+"/tlog-proof", entry, policy)
	// The receipt saved at the start still verifies offline.
	if _, err := scitt.VerifyWitnessedReceipt(stmt, encode(t, first), key, policy); err != nil {
		t.Fatal(err)
	}

	// Every checkpoint survives a restart: the same first witnessed
	// checkpoint is served.
	stop(t, svc, srv)
	_, srv = e.startWith(t, cfg, scitt.HandlerOptions{SyncWait: 10 * time.Second})
	restarted := fetchWitnessed(t, srv.URL+loc+"/witnessed-receipt")
	if string(restarted.Checkpoint) != string(first.Checkpoint) {
		t.Errorf("after a restart the first witnessed checkpoint is\n%s\nwant\n%s", restarted.Checkpoint, first.Checkpoint)
	}

	// Unknown entries and bad options.
	if r := do(t, "GET", srv.URL+"/entries/"+strings.Repeat("ab", 32)+"/witnessed-receipt", "", nil); r.code != 404 || r.problem == nil {
		t.Errorf("unknown entry: %d %v", r.code, r.problem)
	}
	if r := do(t, "GET", srv.URL+"/entries/"+strings.Repeat("ab", 32)+"/tlog-proof", "", nil); r.code != 404 || r.problem == nil {
		t.Errorf("unknown entry: %d %v", r.code, r.problem)
	}
	if r := do(t, "GET", srv.URL+loc+"/witnessed-receipt?checkpoint=newest", "", nil); r.code != 400 || r.problem == nil {
		t.Errorf("bad checkpoint option: %d %v", r.code, r.problem)
	}
}

func checkTLogProof(t *testing.T, url string, entry []byte, policy *roster.Roster) {
	t.Helper()
	r := do(t, "GET", url, "", nil)
	if r.code != http.StatusOK {
		t.Fatalf("GET %s: %d %v", url, r.code, r.problem)
	}
	p, err := tlogproof.Parse(r.body)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tlogproof.Verify(p, tlogproof.LeafHash(entry), policy); err != nil {
		t.Fatalf("tlog-proof: %v\n%s", err, r.body)
	}
}

// TestWitnessedReceiptTampered: witnessed receipts altered in each of their
// parts are rejected offline, each with a reason naming the part.
func TestWitnessedReceiptTampered(t *testing.T) {
	e := newEnv(t)
	wurl, wvkey, policy := witnessNode(t, e)
	cfg := e.config(t)
	cfg.Witnesses = &scitt.WitnessConfig{Witnesses: []scitt.Witness{{URL: wurl, VKey: wvkey}}, Timeout: 10 * time.Second}
	svc, srv := e.startWith(t, cfg, scitt.HandlerOptions{SyncWait: 10 * time.Second})
	key := e.receipt.Public()

	stmt := sign(t, e.issuer, scitt.KindConfiguration, 0, scitt.SignOptions{})
	loc, _ := register(t, srv.URL, stmt)
	first := fetchWitnessed(t, srv.URL+loc+"/witnessed-receipt")
	grow(t, svc, e, 1, 40)
	latest := fetchWitnessed(t, srv.URL+loc+"/witnessed-receipt?checkpoint=latest")
	if len(latest.Consistency) == 0 {
		t.Fatal("the latest checkpoint is the receipt's: no consistency proof to tamper with")
	}
	// The last statement grow registered (signatures are deterministic).
	late := sign(t, e.issuer, scitt.KindInventory, 40, scitt.SignOptions{})
	lateEntry, err := scitt.EntryFor(late)
	if err != nil {
		t.Fatal(err)
	}
	lateW := fetchWitnessed(t, srv.URL+"/entries/"+hexString(scitt.LeafHash(lateEntry))+"/witnessed-receipt")
	if _, err := scitt.VerifyWitnessedReceipt(late, encode(t, lateW), key, policy); err != nil {
		t.Fatal(err)
	}

	withoutCosig := func(cp []byte) []byte {
		var out strings.Builder
		for l := range strings.Lines(string(cp)) {
			if !strings.HasPrefix(l, "— witness.vigil.test ") {
				out.WriteString(l)
			}
		}
		return []byte(out.String())
	}
	flip := func(h []byte) []byte { c := append([]byte(nil), h...); c[0] ^= 1; return c }
	clone := func(w *scitt.WitnessedReceipt) *scitt.WitnessedReceipt {
		c := *w
		c.Consistency = append([][]byte(nil), w.Consistency...)
		return &c
	}
	twoWitnesses, err := roster.ParsePolicy([]byte("log " + e.logVKey + "\nwitness w1 " + wvkey + "\nwitness w2 " + otherWitnessKey(t) + "\ngroup g all w1 w2\nquorum g\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		stmt   []byte
		w      func() *scitt.WitnessedReceipt
		policy *roster.Roster
		want   string
	}{
		{"dropped cosignature", stmt, func() *scitt.WitnessedReceipt {
			c := clone(latest)
			c.Checkpoint = withoutCosig(c.Checkpoint)
			return c
		}, policy, "witness quorum"},
		{"quorum of two", stmt, func() *scitt.WitnessedReceipt { return clone(latest) }, twoWitnesses, "witness quorum"},
		{"consistency hash changed", stmt, func() *scitt.WitnessedReceipt {
			c := clone(latest)
			c.Consistency[0] = flip(c.Consistency[0])
			return c
		}, policy, "does not extend"},
		{"consistency hash dropped", stmt, func() *scitt.WitnessedReceipt {
			c := clone(latest)
			c.Consistency = c.Consistency[:len(c.Consistency)-1]
			return c
		}, policy, "does not extend"},
		{"consistency proof removed", stmt, func() *scitt.WitnessedReceipt {
			c := clone(latest)
			c.Consistency = nil
			return c
		}, policy, "does not extend"},
		{"consistency proof for equal sizes", stmt, func() *scitt.WitnessedReceipt {
			c := clone(first)
			c.Consistency = latest.Consistency
			return c
		}, policy, "equal tree sizes"},
		{"checkpoint below the entry", late, func() *scitt.WitnessedReceipt {
			c := clone(lateW)
			c.Checkpoint = first.Checkpoint
			return c
		}, policy, "below the receipt's tree size"},
		{"checkpoint root changed", stmt, func() *scitt.WitnessedReceipt {
			c := clone(first)
			lines := strings.SplitN(string(c.Checkpoint), "\n", 4)
			lines[2] = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
			c.Checkpoint = []byte(strings.Join(lines, "\n"))
			return c
		}, policy, "checkpoint:"},
		{"another statement", late, func() *scitt.WitnessedReceipt { return clone(latest) }, policy, "invalid receipt"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := scitt.VerifyWitnessedReceipt(tc.stmt, encode(t, tc.w()), key, tc.policy)
			if !errors.Is(err, scitt.ErrInvalidReceipt) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an invalid receipt saying %q", err, tc.want)
			}
		})
	}
	// The untouched ones verify.
	for _, w := range []*scitt.WitnessedReceipt{first, latest} {
		if _, err := scitt.VerifyWitnessedReceipt(stmt, encode(t, w), key, policy); err != nil {
			t.Fatal(err)
		}
	}
	// The wrong receipt key.
	if _, err := scitt.VerifyWitnessedReceipt(stmt, encode(t, first), e.issuer.Public(), policy); !errors.Is(err, scitt.ErrInvalidReceipt) {
		t.Fatalf("wrong receipt key: %v", err)
	}
}

func hexString(b []byte) string { return hex.EncodeToString(b) }

func otherWitnessKey(t *testing.T) string {
	t.Helper()
	_, vkey, err := tlog.GenerateCosignerKey(rand.Reader, "witness2.vigil.test")
	if err != nil {
		t.Fatal(err)
	}
	return vkey
}

// TestParseWitnessedReceiptMalformed: the container is decoded strictly.
func TestParseWitnessedReceiptMalformed(t *testing.T) {
	enc := func(v any) []byte {
		b, err := cbor.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	h := make([]byte, 32)
	for _, tc := range []struct {
		name string
		in   []byte
		want string
	}{
		{"not CBOR", []byte{0xff}, "witnessed receipt"},
		{"array", enc([]any{[]byte("r"), []byte("c"), [][]byte{}}), "witnessed receipt"},
		{"unknown field", enc(map[string]any{"receipt": []byte("r"), "checkpoint": []byte("c"), "consistency": [][]byte{}, "extra": 1}), `unknown field "extra"`},
		{"no receipt", enc(map[string]any{"checkpoint": []byte("c"), "consistency": [][]byte{}}), "receipt missing"},
		{"receipt text", enc(map[string]any{"receipt": "r", "checkpoint": []byte("c"), "consistency": [][]byte{}}), "receipt missing"},
		{"no checkpoint", enc(map[string]any{"receipt": []byte("r"), "consistency": [][]byte{}}), "checkpoint missing"},
		{"no consistency", enc(map[string]any{"receipt": []byte("r"), "checkpoint": []byte("c")}), "consistency missing"},
		{"short hash", enc(map[string]any{"receipt": []byte("r"), "checkpoint": []byte("c"), "consistency": [][]byte{h[:31]}}), "hash of 31 bytes"},
		{"too many hashes", enc(map[string]any{"receipt": []byte("r"), "checkpoint": []byte("c"), "consistency": make([][]byte, 127)}), "127 consistency hashes"},
		{"duplicate key", slices.Concat([]byte{0xa2}, enc("receipt"), enc([]byte("r")), enc("receipt"), enc([]byte("r"))), "witnessed receipt"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, err := scitt.ParseWitnessedReceipt(tc.in)
			if !errors.Is(err, scitt.ErrInvalidReceipt) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %+v, %v; want an error saying %q", w, err, tc.want)
			}
		})
	}
}
