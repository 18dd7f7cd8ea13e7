package scitt_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/vigilnet/vigil/internal/testcert"
	"github.com/vigilnet/vigil/scitt"
)

// testEnv holds the keys shared by a test's service instances.
type testEnv struct {
	logSKey, logVKey string
	receipt          *scitt.PrivateKey
	issuer           *scitt.PrivateKey // provider.example: inventory, configuration
	auditor          *scitt.PrivateKey // auditor.example: endorsement only
	stranger         *scitt.PrivateKey // not in the policy
	policy           *scitt.Policy
	dir              string
	mysqlDSN         string
	// tls serves the service over HTTPS with a P-256 certificate.
	tls bool
}

func mustKey(t testing.TB, name string) *scitt.PrivateKey {
	t.Helper()
	skey, _, err := scitt.GenerateKey(rand.Reader, name)
	if err != nil {
		t.Fatal(err)
	}
	k, err := scitt.ParsePrivateKey(skey)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newEnv(t testing.TB) *testEnv {
	t.Helper()
	e := &testEnv{dir: t.TempDir()}
	var err error
	e.logSKey, e.logVKey, err = note.GenerateKey(rand.Reader, "log.vigil.test")
	if err != nil {
		t.Fatal(err)
	}
	e.receipt = mustKey(t, "ts.vigil.test")
	e.issuer = mustKey(t, "provider.example")
	e.auditor = mustKey(t, "auditor.example")
	e.stranger = mustKey(t, "stranger.example")
	pol := fmt.Sprintf(`
max_statement_bytes: 4096
issuers:
  - name: provider.example
    keys: [%q]
    kinds: [inventory, configuration]
  - name: auditor.example
    keys: [%q]
    kinds: [endorsement]
    hash_envelopes: false
`, e.issuer.Public().String(), e.auditor.Public().String())
	if e.policy, err = scitt.ParsePolicy([]byte(pol)); err != nil {
		t.Fatal(err)
	}
	return e
}

type slogWriter struct{ t testing.TB }

func (w slogWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimSpace(p)))
	return len(p), nil
}

func (e *testEnv) config(t testing.TB) scitt.Config {
	signer, err := note.NewSigner(e.logSKey)
	if err != nil {
		t.Fatal(err)
	}
	return scitt.Config{
		Dir:        e.dir,
		MySQLDSN:   e.mysqlDSN,
		LogSigner:  signer,
		ReceiptKey: e.receipt,
		Policy:     e.policy,
		Logger:     slog.New(slog.NewTextHandler(slogWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
}

// start opens a service on e's directory and serves it on httptest.
func (e *testEnv) start(t testing.TB) (*scitt.Service, *httptest.Server) {
	t.Helper()
	return e.startWith(t, e.config(t), scitt.HandlerOptions{})
}

func (e *testEnv) startWith(t testing.TB, cfg scitt.Config, hopts scitt.HandlerOptions) (*scitt.Service, *httptest.Server) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	svc, err := scitt.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(scitt.NewHandler(svc, hopts))
	if e.tls {
		// A P-256 certificate, as a TLS deployment of today would use
		// (httptest's own is RSA-2048, whose handshakes cost several
		// times as much CPU).
		srv.TLS = &tls.Config{Certificates: []tls.Certificate{testcert.New(t).TLS}}
		srv.StartTLS()
	} else {
		srv.Start()
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			srv.Close()
			_ = svc.Close(context.Background())
		}
	})
	return svc, srv
}

func stop(t testing.TB, svc *scitt.Service, srv *httptest.Server) {
	t.Helper()
	srv.Close()
	if err := svc.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func payload(kind scitt.Kind, n int) []byte {
	switch kind {
	case scitt.KindInventory:
		return fmt.Appendf(nil, `{"provider":"provider.example","customer":"acme","as_of":"2026-01-02T03:04:05Z","resources":[{"id":"vm-%d","type":"vm","region":"eu-west"}]}`, n)
	case scitt.KindConfiguration:
		return fmt.Appendf(nil, `{"resource":"vm-%d","as_of":"2026-01-02T03:04:05Z","config":{"ports":[22,443]}}`, n)
	default:
		return fmt.Appendf(nil, `{"target":{"log":"other.log","statement_sha256":"%064x"},"assertion":"reviewed %d","as_of":"2026-01-02T03:04:05Z"}`, n, n)
	}
}

func sign(t testing.TB, key *scitt.PrivateKey, kind scitt.Kind, n int, opts scitt.SignOptions) []byte {
	t.Helper()
	b, err := scitt.SignStatement(key, fmt.Sprintf("urn:vigil:test:%d", n), kind, payload(kind, n), opts)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type response struct {
	code    int
	header  http.Header
	body    []byte
	problem *scitt.Problem
}

var pollTick = time.NewTicker(20 * time.Millisecond)

// envMaker creates a test environment: POSIX in a temp dir, or MySQL.
type envMaker func(testing.TB) *testEnv

var noRedirect = &http.Client{
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	Timeout:       30 * time.Second,
}

func do(t testing.TB, method, url, ctype string, body []byte) response {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	return doReq(t, noRedirect, req)
}

// doAuth sends a body-less request with a bearer token.
func doAuth(t testing.TB, method, url, token string) response {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	return doReq(t, noRedirect, req)
}

func doReq(t testing.TB, c *http.Client, req *http.Request) response {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	r := response{code: resp.StatusCode, header: resp.Header, body: b}
	if resp.Header.Get("Content-Type") == scitt.ProblemContentType {
		if r.problem, err = scitt.ParseProblem(b); err != nil {
			t.Fatalf("problem body: %v", err)
		}
	}
	return r
}

// register POSTs a statement and follows the async flow until a receipt
// arrives, bounded by a deadline.
func register(t testing.TB, base string, stmt []byte) (id string, receipt []byte) {
	t.Helper()
	return follow(t, base, do(t, "POST", base+"/entries", "application/cose", stmt))
}

// follow follows a registration's 303/302 Locations until 200/201.
func follow(t testing.TB, base string, r response) (id string, receipt []byte) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		switch r.code {
		case http.StatusCreated, http.StatusOK:
			return r.header.Get("Location"), r.body
		case http.StatusSeeOther, http.StatusFound:
			if time.Now().After(deadline) {
				t.Fatalf("registration still pending after deadline")
			}
			if r.header.Get("Retry-After") == "" {
				t.Fatalf("status %d without Retry-After", r.code)
			}
			<-pollTick.C // the Location is polled, as a SCRAPI client must
			r = do(t, "GET", base+r.header.Get("Location"), "", nil)
		default:
			t.Fatalf("register: status %d, problem %v", r.code, r.problem)
		}
	}
}

func listenLoopback() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }
