package scitt_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/tessera/client"
	"github.com/veraison/go-cose"
	"github.com/vigilnet/vigil/scitt"
	"golang.org/x/mod/sumdb/note"
)

func TestRejections(t *testing.T) { testRejections(t, newEnv) }

func testRejections(t *testing.T, mk envMaker) {
	e := mk(t)
	svc, srv := e.startWith(t, e.config(t), scitt.HandlerOptions{AdminToken: "admin-secret"})
	good := sign(t, e.issuer, scitt.KindInventory, 1, scitt.SignOptions{})
	register(t, srv.URL, good)

	badSig := bytes.Clone(good)
	badSig[len(badSig)-1] ^= 1
	// A statement signed by the stranger's key but claiming to be provider.example.
	forged := sign(t, &scitt.PrivateKey{Name: "provider.example", Key: e.stranger.Key}, scitt.KindInventory, 2, scitt.SignOptions{})
	big := func() []byte {
		msg := cose.NewSign1Message()
		msg.Headers.Protected.SetAlgorithm(cose.AlgorithmEdDSA)
		msg.Headers.Protected[int64(4)] = e.issuer.KID()
		msg.Headers.Protected[int64(15)] = map[int64]any{1: "provider.example", 2: "x"}
		msg.Headers.Protected[int64(3)] = scitt.KindInventory.ContentType()
		msg.Payload = bytes.Repeat([]byte("a"), 5000)
		s, _ := cose.NewSigner(cose.AlgorithmEdDSA, e.issuer.Key)
		if err := msg.Sign(rand.Reader, nil, s); err != nil {
			t.Fatal(err)
		}
		b, _ := msg.MarshalCBOR()
		return b
	}()
	badPayload := func() []byte {
		msg := cose.NewSign1Message()
		msg.Headers.Protected.SetAlgorithm(cose.AlgorithmEdDSA)
		msg.Headers.Protected[int64(4)] = e.issuer.KID()
		msg.Headers.Protected[int64(15)] = map[int64]any{1: "provider.example", 2: "x"}
		msg.Headers.Protected[int64(3)] = scitt.KindInventory.ContentType()
		msg.Payload = []byte(`{"provider":"p","bogus":1}`)
		s, _ := cose.NewSigner(cose.AlgorithmEdDSA, e.issuer.Key)
		if err := msg.Sign(rand.Reader, nil, s); err != nil {
			t.Fatal(err)
		}
		b, _ := msg.MarshalCBOR()
		return b
	}()
	noClaims := func() []byte {
		msg := cose.NewSign1Message()
		msg.Headers.Protected.SetAlgorithm(cose.AlgorithmEdDSA)
		msg.Headers.Protected[int64(4)] = e.issuer.KID()
		msg.Headers.Protected[int64(3)] = scitt.KindInventory.ContentType()
		msg.Payload = payload(scitt.KindInventory, 9)
		s, _ := cose.NewSigner(cose.AlgorithmEdDSA, e.issuer.Key)
		if err := msg.Sign(rand.Reader, nil, s); err != nil {
			t.Fatal(err)
		}
		b, _ := msg.MarshalCBOR()
		return b
	}()
	es256 := func() []byte {
		msg := cose.NewSign1Message()
		msg.Headers.Protected.SetAlgorithm(cose.AlgorithmES256)
		msg.Headers.Protected[int64(4)] = e.issuer.KID()
		msg.Headers.Protected[int64(15)] = map[int64]any{1: "provider.example", 2: "x"}
		msg.Headers.Protected[int64(3)] = scitt.KindInventory.ContentType()
		msg.Payload = payload(scitt.KindInventory, 10)
		msg.Signature = make([]byte, 64)
		b, _ := msg.MarshalCBOR()
		return b
	}()
	tests := []struct {
		name   string
		ctype  string
		body   []byte
		status int
		title  string
	}{
		{"unknown issuer", "application/cose", sign(t, e.stranger, scitt.KindInventory, 3, scitt.SignOptions{}), 400, "Rejected"},
		{"disallowed kind", "application/cose", sign(t, e.auditor, scitt.KindInventory, 4, scitt.SignOptions{}), 400, "Rejected"},
		{"hash envelope not allowed", "application/cose", sign(t, e.auditor, scitt.KindEndorsement, 5, scitt.SignOptions{HashEnvelope: true}), 400, "Rejected"},
		{"bad signature", "application/cose", badSig, 400, "Rejected"},
		{"key not bound to issuer", "application/cose", forged, 400, "Rejected"},
		{"payload schema", "application/cose", badPayload, 400, "Rejected"},
		{"oversized", "application/cose", big, 413, "Payload Too Large"},
		{"malformed COSE", "application/cose", []byte{0xd2, 0x84, 0x40}, 400, "Malformed request"},
		{"not CBOR", "application/cose", []byte("hello"), 400, "Malformed request"},
		{"untagged", "application/cose", good[1:], 400, "Malformed request"},
		{"no CWT claims", "application/cose", noClaims, 400, "Malformed request"},
		{"ES256 unsupported", "application/cose", es256, 400, "Bad Signature Algorithm"},
		{"wrong content type", "application/json", good, 415, "Unsupported Media Type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := do(t, "POST", srv.URL+"/entries", tt.ctype, tt.body)
			if r.code != tt.status || r.problem == nil || r.problem.Title != tt.title || r.problem.Detail == "" {
				t.Fatalf("got %d %+v, want %d %q", r.code, r.problem, tt.status, tt.title)
			}
		})
	}
	ctx := context.Background()
	if n, err := svc.Reader().NextIndex(ctx); err != nil || n != 1 {
		t.Fatalf("NextIndex = %d, %v; want 1 (nothing appended on rejection)", n, err)
	}
	// The audit trail records every decision, 415 included, and is
	// queryable by the admin.
	page, err := svc.AuditLog().Query(scitt.AuditQuery{Decision: "rejected"})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Records) != len(tests) {
		t.Errorf("%d rejected audit records, want %d", len(page.Records), len(tests))
	}
	if last := page.Records[len(page.Records)-1]; !strings.Contains(last.Reason, "unsupported media type") {
		t.Errorf("the 415 is recorded as %+v", last)
	}
	r := doAuth(t, "GET", srv.URL+"/audit?decision=accepted&issuer=provider.example", "admin-secret")
	var acc scitt.AuditPage
	if err := json.Unmarshal(r.body, &acc); err != nil || len(acc.Records) != 1 || acc.Records[0].Index == nil || *acc.Records[0].Index != 0 {
		t.Fatalf("GET /audit: %s (%v)", r.body, err)
	}
}

func TestRateLimitAndPushback(t *testing.T) {
	e := newEnv(t)
	_, srv := e.startWith(t, e.config(t), scitt.HandlerOptions{RatePerClient: 0.001})
	codes := map[int]int{}
	var last response
	for i := range 3 {
		last = do(t, "POST", srv.URL+"/entries", "application/cose", sign(t, e.issuer, scitt.KindInventory, i, scitt.SignOptions{}))
		codes[last.code]++
	}
	if codes[429] == 0 || last.header.Get("Retry-After") == "" || last.problem.Title != "Too Many Requests" {
		t.Fatalf("codes %v, last %+v", codes, last.problem)
	}
	// Receipt reads share the client's budget.
	if r := do(t, "GET", srv.URL+"/entries/"+strings.Repeat("0", 64), "", nil); r.code != 429 || r.header.Get("Retry-After") == "" {
		t.Fatalf("GET /entries after the budget is spent: %d", r.code)
	}
}

func TestKeysAndConfiguration(t *testing.T) {
	e := newEnv(t)
	_, srv := e.start(t)
	r := do(t, "GET", srv.URL+"/.well-known/scitt-keys", "", nil)
	var set []cbor.RawMessage
	if err := cbor.Unmarshal(r.body, &set); err != nil || len(set) != 1 {
		t.Fatalf("key set: %v", err)
	}
	k, err := scitt.ParseCOSEKey(set[0])
	if err != nil || !bytes.Equal(k.Key, e.receipt.Public().Key) {
		t.Fatalf("key: %v", err)
	}
	kid := e.receipt.KID()
	for _, id := range []string{base64.RawURLEncoding.EncodeToString(kid), hex.EncodeToString(kid)} {
		r := do(t, "GET", srv.URL+"/.well-known/scitt-keys/"+id, "", nil)
		if r.code != 200 || !bytes.Equal(r.body, set[0]) {
			t.Errorf("GET key %s: %d", id, r.code)
		}
	}
	r = do(t, "GET", srv.URL+"/.well-known/scitt-keys/AAAA", "", nil)
	if r.code != 404 || r.problem.Title != "No such key" {
		t.Errorf("unknown kid: %d %+v", r.code, r.problem)
	}
	r = do(t, "GET", srv.URL+"/entries/"+strings.Repeat("0", 64), "", nil)
	if r.code != 404 || r.problem.Title != "Not Found" {
		t.Errorf("unknown entry: %d %+v", r.code, r.problem)
	}
	r = do(t, "GET", srv.URL+"/.well-known/transparency-configuration", "", nil)
	var conf scitt.TransparencyConfiguration
	if err := cbor.Unmarshal(r.body, &conf); err != nil || conf.Issuer != "ts.vigil.test" || conf.Origin != "log.vigil.test" {
		t.Errorf("configuration %+v: %v", conf, err)
	}
	// Discovery lists what the policy accepts (newEnv's issuers: the three
	// built-in kinds), not a fixed list.
	if want := []string{scitt.KindConfiguration.ContentType(), scitt.KindEndorsement.ContentType(), scitt.KindInventory.ContentType()}; !slices.Equal(conf.Kinds, want) {
		t.Errorf("statement_content_types %v, want %v", conf.Kinds, want)
	}
	// The published key verifies receipts (as a client resolving by kid would).
	stmt := sign(t, e.issuer, scitt.KindInventory, 1, scitt.SignOptions{})
	_, rcpt := register(t, srv.URL, stmt)
	if err := scitt.VerifyReceipt(stmt, rcpt, k); err != nil {
		t.Fatal(err)
	}
}

// TestRestart registers, restarts the service on the same directory and
// checks that entries, replay protection and old receipts survive.
func TestRestart(t *testing.T) { testRestart(t, newEnv) }

func testRestart(t *testing.T, mk envMaker) {
	e := mk(t)
	svc, srv := e.start(t)
	type reg struct {
		stmt, rcpt []byte
		loc        string
	}
	var regs []reg
	for i := range 5 {
		stmt := sign(t, e.issuer, scitt.KindConfiguration, i, scitt.SignOptions{})
		loc, rcpt := register(t, srv.URL, stmt)
		regs = append(regs, reg{stmt, rcpt, loc})
	}
	stop(t, svc, srv)

	svc, srv = e.start(t)
	for _, r := range regs {
		if err := scitt.VerifyReceipt(r.stmt, r.rcpt, e.receipt.Public()); err != nil {
			t.Fatalf("old receipt: %v", err)
		}
		resp := do(t, "GET", srv.URL+r.loc, "", nil)
		if resp.code != 200 {
			t.Fatalf("GET %s after restart: %d", r.loc, resp.code)
		}
		if err := scitt.VerifyReceipt(r.stmt, resp.body, e.receipt.Public()); err != nil {
			t.Fatalf("fresh receipt after restart: %v", err)
		}
	}
	// A repeated registration after a restart returns the existing entry.
	if resp := do(t, "POST", srv.URL+"/entries", "application/cose", regs[0].stmt); resp.code != 201 || resp.header.Get("Location") != regs[0].loc {
		t.Fatalf("duplicate after restart: %d %q", resp.code, resp.header.Get("Location"))
	} else if err := scitt.VerifyReceipt(regs[0].stmt, resp.body, e.receipt.Public()); err != nil {
		t.Fatalf("receipt of the duplicate after restart: %v", err)
	}
	stmt := sign(t, e.issuer, scitt.KindConfiguration, 99, scitt.SignOptions{})
	_, rcpt := register(t, srv.URL, stmt)
	p, _ := scitt.ParseReceipt(rcpt)
	if p.Proof.Index != 5 {
		t.Fatalf("new entry index %d, want 5", p.Proof.Index)
	}
	if n, _ := svc.Reader().NextIndex(context.Background()); n != 6 {
		t.Fatalf("NextIndex %d", n)
	}
}

// TestTilesClient reads the served log with tessera's own client, checks
// checkpoint consistency as it grows, and inclusion of every entry.
func TestTilesClient(t *testing.T) {
	e := newEnv(t)
	svc, srv := e.start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	u, _ := url.Parse(srv.URL + "/")
	f, err := client.NewHTTPFetcher(u, http.DefaultClient)
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(e.logVKey)
	if err != nil {
		t.Fatal(err)
	}
	var entries [][]byte
	registerN := func(from, n int) {
		var wg sync.WaitGroup
		for i := from; i < from+n; i++ {
			stmt := sign(t, e.issuer, scitt.KindInventory, i, scitt.SignOptions{})
			en, _ := scitt.EntryFor(stmt)
			entries = append(entries, en)
			wg.Go(func() {
				// t.Fatal must not run here; report with t.Error.
				wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
				defer cancel()
				reg, err := svc.Register(wctx, stmt, "test")
				if err == nil {
					_, err = svc.Wait(wctx, reg)
				}
				if err != nil {
					t.Errorf("registering %d: %v", i, err)
				}
			})
		}
		wg.Wait()
		if t.Failed() {
			t.FailNow()
		}
	}
	registerN(0, 3)
	cp, _, _, err := client.FetchCheckpoint(ctx, f.ReadCheckpoint, v, v.Name())
	if err != nil {
		t.Fatal(err)
	}
	cpRaw, _ := f.ReadCheckpoint(ctx)
	lst, err := client.NewLogStateTracker(ctx, f.ReadTile, cpRaw, v, v.Name(), client.UnilateralConsensus(f.ReadCheckpoint))
	if err != nil {
		t.Fatal(err)
	}
	registerN(3, 300) // crosses a full tile
	if _, _, _, err := lst.Update(ctx); err != nil {
		t.Fatalf("consistency from %d: %v", cp.Size, err)
	}
	latest := lst.Latest()
	if latest.Size < 303 {
		t.Fatalf("tracker at %d", latest.Size)
	}
	pb, err := client.NewProofBuilder(ctx, latest.Size, f.ReadTile)
	if err != nil {
		t.Fatal(err)
	}
	for i := uint64(0); i < latest.Size; i += 37 {
		b, err := client.GetEntryBundle(ctx, f.ReadEntryBundle, i/256, latest.Size)
		if err != nil {
			t.Fatal(err)
		}
		got := b.Entries[i%256]
		if _, err := scitt.ParseStatement(got); err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
		p, err := pb.InclusionProof(ctx, i)
		if err != nil {
			t.Fatal(err)
		}
		if err := proof.VerifyInclusion(rfc6962.DefaultHasher, i, latest.Size, scitt.LeafHash(got), p, latest.Hash); err != nil {
			t.Fatalf("inclusion of %d: %v", i, err)
		}
	}
	// Entry bundles are gzipped for clients that accept it.
	req, _ := http.NewRequest("GET", srv.URL+"/tile/entries/000", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Encoding") != "gzip" {
		t.Errorf("entry bundle: %d, Content-Encoding %q", resp.StatusCode, resp.Header.Get("Content-Encoding"))
	}
	if r := do(t, "GET", srv.URL+"/tile/0/999", "", nil); r.code != 404 || r.problem == nil {
		t.Errorf("missing tile: %d", r.code)
	}
	if len(entries) != 303 {
		t.Fatal(len(entries))
	}
}
