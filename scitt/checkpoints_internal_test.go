package scitt

import (
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"github.com/vigilnet/vigil/tlog"
)

func signedCheckpoint(t *testing.T, signer note.Signer, size uint64) []byte {
	t.Helper()
	c := tlog.Checkpoint{Origin: signer.Name(), Size: size}
	c.Root[0] = byte(size)
	b, err := note.Sign(&note.Note{Text: string(c.Marshal())}, signer)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestCheckpointStore: checkpoints are kept in size order across reopening,
// smaller or equal sizes are skipped, and a torn last record is cut off.
func TestCheckpointStore(t *testing.T) {
	skey, _, err := note.GenerateKey(rand.Reader, "log.vigil.test")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "checkpoints")
	s, err := openCheckpointStore(path, signer.Name())
	if err != nil {
		t.Fatal(err)
	}
	for _, size := range []uint64{1, 5, 5, 3, 9, 20} {
		if err := s.record(signedCheckpoint(t, signer, size)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.record([]byte("other.log\n1\nAAAA\n\n— x y\n")); err == nil {
		t.Error("a checkpoint of another origin was stored")
	}
	check := func(s *checkpointStore) {
		t.Helper()
		if s.count() != 4 {
			t.Fatalf("%d checkpoints stored, want 4 (1, 5, 9, 20)", s.count())
		}
		for _, tc := range []struct {
			at     uint64
			latest bool
			want   uint64
		}{{0, false, 1}, {2, false, 5}, {5, false, 5}, {6, false, 9}, {20, false, 20}, {2, true, 20}} {
			get := s.first
			if tc.latest {
				get = s.latest
			}
			cp, err := get(tc.at, nil)
			if err != nil {
				t.Fatal(err)
			}
			if size, _, _ := parseCheckpoint(cp, signer.Name()); size != tc.want {
				t.Errorf("at %d (latest %v): size %d, want %d", tc.at, tc.latest, size, tc.want)
			}
		}
		if _, err := s.first(21, nil); err != errNoCheckpoint {
			t.Errorf("beyond the largest: %v", err)
		}
		only9 := func(cp []byte) bool { size, _, _ := parseCheckpoint(cp, signer.Name()); return size == 9 }
		if cp, err := s.first(2, only9); err != nil || !only9(cp) {
			t.Errorf("first passing the test: %v", err)
		}
		if cp, err := s.latest(2, only9); err != nil || !only9(cp) {
			t.Errorf("latest passing the test: %v", err)
		}
	}
	check(s)
	if err := s.close(); err != nil {
		t.Fatal(err)
	}
	// A crash in the middle of an append leaves a torn record.
	full, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	torn := signedCheckpoint(t, signer, 30)
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "\x00\x00\x01\x00%s", torn[:10])
	f.Close()
	s, err = openCheckpointStore(path, signer.Name())
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	check(s)
	if st, err := os.Stat(path); err != nil || st.Size() != int64(len(full)) {
		t.Errorf("torn record not cut off: %v bytes, want %d", st.Size(), len(full))
	}
	if err := s.record(signedCheckpoint(t, signer, 30)); err != nil {
		t.Fatal(err)
	}
	if cp, err := s.latest(0, nil); err != nil || string(cp) != string(signedCheckpoint(t, signer, 30)) {
		t.Errorf("append after the cut: %v", err)
	}
}
