package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigilnet/vigil/feed"
	"github.com/vigilnet/vigil/gossip/evidence"
	vpb "github.com/vigilnet/vigil/proto"
	"github.com/vigilnet/vigil/store"
	"github.com/vigilnet/vigil/testnet/scriptlog"
)

// splitView returns a log of origin and a different-size split view of it:
// checkpoint a of a fork at size 9 (6 shared entries), checkpoint b of the
// log at size 16, and the log's consistency proof from 9 to 16.
func splitView(t *testing.T, origin string) (l *scriptlog.Log, a, b []byte, proof [][]byte) {
	t.Helper()
	l, err := scriptlog.New(origin)
	if err != nil {
		t.Fatal(err)
	}
	l.AppendN(6, "common")
	fork, err := l.Fork(6)
	if err != nil {
		t.Fatal(err)
	}
	l.AppendN(10, "a")
	fork.AppendN(3, "b")
	a, _ = fork.CheckpointAt(9)
	b, _ = l.CheckpointAt(16)
	proof, _ = l.ConsistencyProof(9, 16)
	return l, a, b, proof
}

// splitViewEvidence writes a roster and a valid different-size evidence
// file into dir and returns their paths and the evidence.
func splitViewEvidence(t *testing.T, dir string) (rosterPath, evPath string, e *vpb.Evidence) {
	t.Helper()
	l, a, b, p := splitView(t, "example.com/cli-log")
	e = &vpb.Evidence{Kind: vpb.Kind_KIND_LOG_EQUIVOCATION_DIFFERENT_SIZES, CheckpointA: a, CheckpointB: b, ConsistencyProof: p, Observer: "node-7"}
	file, err := evidence.MarshalFile(e)
	if err != nil {
		t.Fatal(err)
	}
	rosterPath, evPath = filepath.Join(dir, "roster"), filepath.Join(dir, "x.evidence")
	if err := os.WriteFile(rosterPath, fmt.Appendf(nil, "log %s\n", l.VerifierKey()), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(evPath, file, 0o644); err != nil {
		t.Fatal(err)
	}
	return rosterPath, evPath, e
}

func runCLI(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = vigilMain(args, &o, &e)
	return code, o.String(), e.String()
}

func TestVerifyCommand(t *testing.T) {
	dir := t.TempDir()
	rosterPath, evPath, e := splitViewEvidence(t, dir)
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	sameFile, _ := evidence.MarshalFile(&vpb.Evidence{Kind: vpb.Kind_KIND_LOG_EQUIVOCATION_SAME_SIZE, CheckpointA: e.CheckpointB, CheckpointB: e.CheckpointB})
	impostor, _ := scriptlog.New("example.com/cli-log")
	otherRoster := write("other-roster", fmt.Appendf(nil, "log %s\n", impostor.VerifierKey()))
	tests := []struct {
		name string
		args []string
		code int
		out  string
	}{
		{"valid", []string{"verify", evPath, "--roster", rosterPath}, 0, "VALID log-equivocation-different-sizes"},
		{"flags first", []string{"verify", "--roster", rosterPath, evPath}, 0, "proves: log \"example.com/cli-log\" signed size 9"},
		{"agreeing checkpoints", []string{"verify", write("same", sameFile), "--roster", rosterPath}, 1, "INVALID"},
		{"wrong log key", []string{"verify", evPath, "--roster", otherRoster}, 1, "INVALID"},
		{"not evidence", []string{"verify", write("junk", []byte("hello\n")), "--roster", rosterPath}, 1, "not an evidence file"},
		{"no roster", []string{"verify", evPath}, 2, ""},
		{"two files", []string{"verify", evPath, evPath, "--roster", rosterPath}, 2, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(tt.args...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tt.code, stdout, stderr)
			}
			if !strings.Contains(stdout+stderr, tt.out) {
				t.Fatalf("output does not contain %q:\n%s%s", tt.out, stdout, stderr)
			}
		})
	}
}

func TestEvidenceCommandFromDataDir(t *testing.T) {
	dir := t.TempDir()
	rosterPath, _, e := splitViewEvidence(t, dir)
	data := filepath.Join(dir, "data")
	db, err := store.Open(data, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := vpb.MarshalEvidence(e)
	id := evidence.ID(e)
	if _, err := db.PutEvidence(context.Background(), store.EvidenceRecord{ID: id, Kind: vpb.KindName(e.Kind), Origin: "example.com/cli-log", Statement: "a statement", Data: raw}); err != nil {
		t.Fatal(err)
	}
	db.Close()

	code, out, errOut := runCLI("evidence", "list", "--data", data)
	if code != 0 || !strings.Contains(out, id) || !strings.Contains(out, "a statement") {
		t.Fatalf("list: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = runCLI("evidence", "show", id, "--data", data)
	if code != 0 || !strings.Contains(out, "checkpoint A:\n  example.com/cli-log\n  9\n") {
		t.Fatalf("show: exit %d\n%s%s", code, out, errOut)
	}
	exported := filepath.Join(dir, "exported.evidence")
	if code, out, errOut = runCLI("evidence", "export", id, "-o", exported, "--data", data); code != 0 {
		t.Fatalf("export: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut = runCLI("verify", exported, "--roster", rosterPath); code != 0 {
		t.Fatalf("verify exported: exit %d\n%s%s", code, out, errOut)
	}
	if code, _, _ = runCLI("evidence", "show", "nope", "--data", data); code != 1 {
		t.Fatalf("show of a missing ID: exit %d, want 1", code)
	}
	if code, _, _ = runCLI("evidence", "frobnicate", "--data", data); code != 2 {
		t.Fatalf("unknown subcommand: exit %d, want 2", code)
	}
}

func TestEvidenceCommandFromFeed(t *testing.T) {
	dir := t.TempDir()
	rosterPath, _, e := splitViewEvidence(t, dir)
	id := evidence.ID(e)
	file, _ := evidence.MarshalFile(e)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/evidence", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(feed.EvidenceList{Evidence: []feed.Evidence{{ID: id, Kind: "log-equivocation-different-sizes", Origin: "example.com/cli-log", Detected: time.Unix(1700000000, 0), Summary: "feed summary"}}})
	})
	mux.HandleFunc("GET /v1/evidence/{id}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("id") != id || r.URL.Query().Get("format") != "raw" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", feed.EvidenceMediaType)
		w.Write(file)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	code, out, errOut := runCLI("evidence", "list", "--feed", srv.URL)
	if code != 0 || !strings.Contains(out, id) || !strings.Contains(out, "feed summary") || !strings.Contains(out, "2023-11-14T22:13:20Z") {
		t.Fatalf("list: exit %d\n%s%s", code, out, errOut)
	}
	exported := filepath.Join(dir, "from-feed.evidence")
	if code, out, errOut = runCLI("evidence", "export", id, "--feed", srv.URL, "-o", exported); code != 0 {
		t.Fatalf("export: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut = runCLI("verify", exported, "--roster", rosterPath); code != 0 || !strings.Contains(out, "VALID") {
		t.Fatalf("verify: exit %d\n%s%s", code, out, errOut)
	}
	if code, _, _ = runCLI("evidence", "show", "0000", "--feed", srv.URL); code != 1 {
		t.Fatalf("show of a missing ID: exit %d, want 1", code)
	}
}
