package scitt_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigilnet/vigil/scitt"
)

// TestAuditAccess checks who may read GET /audit: nobody by default, the
// admin (with client addresses) by bearer token, and, when enabled, the
// public without addresses; pages are capped at MaxAuditPage.
func TestAuditAccess(t *testing.T) {
	e := newEnv(t)
	_, off := e.start(t)
	if r := do(t, "GET", off.URL+"/audit?limit=100000000", "", nil); r.code != 404 {
		t.Fatalf("GET /audit without an admin token configured: %d", r.code)
	}

	e2 := newEnv(t)
	svc, srv := e2.startWith(t, e2.config(t), scitt.HandlerOptions{AdminToken: "s3cret"})
	for i := range 3 {
		register(t, srv.URL, sign(t, e2.issuer, scitt.KindInventory, i, scitt.SignOptions{}))
	}
	for i := range 1500 {
		if err := svc.AuditLog().Append(scitt.AuditRecord{Time: time.Now(), Decision: "rejected", Reason: fmt.Sprint("filler ", i), Remote: "192.0.2.1"}); err != nil {
			t.Fatal(err)
		}
	}
	for _, tok := range []string{"", "wrong", "s3cret2", "S3CRET"} {
		r := doAuth(t, "GET", srv.URL+"/audit", tok)
		if r.code != 401 || r.header.Get("WWW-Authenticate") == "" {
			t.Fatalf("token %q: %d", tok, r.code)
		}
	}
	var page scitt.AuditPage
	var seen int
	for after, pages := uint64(0), 0; ; pages++ {
		r := doAuth(t, "GET", fmt.Sprintf("%s/audit?limit=100000000&after=%d", srv.URL, after), "s3cret")
		page = scitt.AuditPage{}
		if err := json.Unmarshal(r.body, &page); err != nil || r.code != 200 {
			t.Fatalf("admin GET /audit: %d %v", r.code, err)
		}
		if len(page.Records) > scitt.MaxAuditPage {
			t.Fatalf("page of %d records, cap %d", len(page.Records), scitt.MaxAuditPage)
		}
		for _, rec := range page.Records {
			if rec.Remote == "" {
				t.Fatalf("the admin does not see the address of %+v", rec)
			}
			if rec.Seq <= after {
				t.Fatalf("record %d on the page after %d", rec.Seq, after)
			}
		}
		seen += len(page.Records)
		if !page.More {
			break
		}
		after = page.Next
	}
	if seen != 1503 {
		t.Fatalf("paged through %d records, want 1503", seen)
	}
	stop(t, svc, srv)

	// The public view (opt-in) hides addresses.
	svc, srv = e2.startWith(t, e2.config(t), scitt.HandlerOptions{PublicAudit: true, AdminToken: "s3cret"})
	r := do(t, "GET", srv.URL+"/audit?decision=accepted", "", nil)
	page = scitt.AuditPage{}
	if err := json.Unmarshal(r.body, &page); err != nil || len(page.Records) != 3 {
		t.Fatalf("public GET /audit: %d %s", r.code, r.body)
	}
	for _, rec := range page.Records {
		if rec.Remote != "" {
			t.Fatalf("public view shows address %q", rec.Remote)
		}
	}
	stop(t, svc, srv)
}

// TestAuditRotationCap checks that the trail is rotated and the oldest
// records dropped to stay under its cap, that sequence numbers continue
// across rotations and restarts, and that queries see the newest records.
func TestAuditRotationCap(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.jsonl")
	const cap = 16 << 10
	a, err := scitt.OpenAuditLog(path, cap)
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("x", 4000) // clipped to 512 bytes per field
	for i := range 2000 {
		if err := a.Append(scitt.AuditRecord{Time: time.Now(), Decision: "rejected", Reason: long, Issuer: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
		if a.Size() > cap {
			t.Fatalf("trail of %d bytes after %d records, cap %d", a.Size(), i+1, cap)
		}
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if n := diskBytes(t, dir); n > cap {
		t.Fatalf("%d bytes on disk, cap %d", n, cap)
	}
	a, err = scitt.OpenAuditLog(path, cap)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if err := a.Append(scitt.AuditRecord{Time: time.Now(), Decision: "accepted"}); err != nil {
		t.Fatal(err)
	}
	page, err := a.Query(scitt.AuditQuery{})
	if err != nil || len(page.Records) == 0 {
		t.Fatalf("query: %v", err)
	}
	last := page.Records[len(page.Records)-1]
	if last.Seq != 2001 || last.Decision != "accepted" {
		t.Fatalf("last record %+v, want seq 2001 after the restart", last)
	}
	for i, r := range page.Records[1:] {
		if r.Seq != page.Records[i].Seq+1 {
			t.Fatalf("gap between %d and %d", page.Records[i].Seq, r.Seq)
		}
	}
	if page.Records[0].Seq == 1 {
		t.Fatal("the oldest records were not dropped")
	}
}

func diskBytes(t testing.TB, dir string) int64 {
	t.Helper()
	var n int64
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "audit.jsonl") {
			fi, err := e.Info()
			if err != nil {
				t.Fatal(err)
			}
			n += fi.Size()
		}
	}
	return n
}

// TestAuditReadsDoNotBlockWrites stalls a query in the middle of reading
// and checks that decisions are still recorded meanwhile.
func TestAuditReadsDoNotBlockWrites(t *testing.T) {
	a, err := scitt.OpenAuditLog(filepath.Join(t.TempDir(), "audit.jsonl"), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	inside, release := make(chan struct{}), make(chan struct{})
	scitt.SetAuditReadHook(func() { close(inside); <-release })
	defer scitt.SetAuditReadHook(nil)
	queried := make(chan error, 1)
	go func() { _, err := a.Query(scitt.AuditQuery{}); queried <- err }()
	<-inside
	appended := make(chan error, 1)
	go func() {
		for range 100 {
			if err := a.Append(scitt.AuditRecord{Decision: "accepted"}); err != nil {
				appended <- err
				return
			}
		}
		appended <- nil
	}()
	select {
	case err := <-appended:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Append blocked while a query was reading")
	}
	close(release)
	if err := <-queried; err != nil {
		t.Fatal(err)
	}
}

// TestAuditLegacyTrail checks that a trail written before records had seq
// is moved aside (kept, not served) and a new trail starts at seq 1.
func TestAuditLegacyTrail(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.jsonl")
	legacy := `{"time":"2026-01-01T00:00:00Z","decision":"rejected","reason":"old"}` + "\n"
	if err := os.WriteFile(path, []byte(legacy), 0o644); err != nil {
		t.Fatal(err)
	}
	a, err := scitt.OpenAuditLog(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if err := a.Append(scitt.AuditRecord{Decision: "accepted"}); err != nil {
		t.Fatal(err)
	}
	page, err := a.Query(scitt.AuditQuery{})
	if err != nil || len(page.Records) != 1 || page.Records[0].Seq != 1 {
		t.Fatalf("page %+v, %v", page, err)
	}
	moved, _ := filepath.Glob(path + ".legacy-*")
	if len(moved) != 1 {
		t.Fatalf("legacy trail not kept aside: %v", moved)
	}
	if b, _ := os.ReadFile(moved[0]); string(b) != legacy {
		t.Fatalf("legacy trail changed: %q", b)
	}
}
