package tlogproof_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"github.com/vigilnet/vigil/roster"
	"github.com/vigilnet/vigil/tlog"
	"github.com/vigilnet/vigil/tlog/tlogproof"
)

func policy(t *testing.T, text string) *roster.Roster {
	t.Helper()
	r, err := roster.ParsePolicy([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func parse(t *testing.T, b []byte) *tlogproof.Proof {
	t.Helper()
	p, err := tlogproof.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// The spec's computed vectors verify against their policy.
func TestVerifyVectors(t *testing.T) {
	r := policy(t, string(readFile(t, "example.policy")))
	for _, tc := range []struct {
		file, entry string
	}{
		{"index3.tlog-proof", "leaf 3"},
		{"index0-extra.tlog-proof", "leaf 0"},
		{"index6.tlog-proof", "leaf 6"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			res, err := tlogproof.Verify(parse(t, readFile(t, tc.file)), tlogproof.LeafHash([]byte(tc.entry)), r)
			if err != nil {
				t.Fatal(err)
			}
			if res.Checkpoint.Size != 7 || strings.Join(res.Cosigners, ",") != "w1" {
				t.Errorf("got %+v", res)
			}
		})
	}
	leaf3 := tlogproof.LeafHash([]byte("leaf 3"))
	if got := "WL0UluFoSqySAcLmh+565PUclqiw2B7zWDYouT0800U="; !bytes.Equal([]byte(got), []byte(b64(leaf3[:]))) {
		t.Errorf("leaf hash of %q = %s, the spec says %s", "leaf 3", b64(leaf3[:]), got)
	}
}

func TestVerifyRejects(t *testing.T) {
	good := string(readFile(t, "index3.tlog-proof"))
	pol := string(readFile(t, "example.policy"))
	logLine := "— example.com/log 1FXFIXn5WNO0nmB8jpaNKWoqfB//pR44E4k8CO4SmN1B50zYwNAr2omDcPg3jHsVO5RoDZ3k9OJRhEsiuhDyOm4Ktgw=\n"
	wLine := "— witness.example/w1 IDJKvgAAAABlU/EAdmzUw1pItfMvHFyF/EilC4Xz+dLXIuByIqUj+94vGvXlxGRv29FzD1xGZRc5au0NWlmpZ1YpokOHmYzEU9LPDg==\n"
	_, otherVkey, err := note.GenerateKey(rand.Reader, "other.example/log")
	if err != nil {
		t.Fatal(err)
	}
	otherLog := "log " + otherVkey + "\n"
	_, w2Vkey, err := tlog.GenerateCosignerKey(rand.Reader, "witness2.example")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		proof  string
		policy string
		entry  string
		want   error
	}{
		{"wrong entry", good, pol, "leaf 4", tlogproof.ErrInclusion},
		{"wrong index", strings.Replace(good, "index 3", "index 2", 1), pol, "leaf 3", tlogproof.ErrInclusion},
		{"index beyond size", strings.Replace(good, "index 3", "index 7", 1), pol, "leaf 3", tlogproof.ErrInclusion},
		{"proof hash changed", strings.Replace(good, "qze6NNHf", "rze6NNHf", 1), pol, "leaf 3", tlogproof.ErrInclusion},
		{"proof line dropped", strings.Replace(good, "AVcbVXvHBnJlDUZ8e62DN+CafzVKcgUfI7Q6eCwPSOY=\n", "", 1), pol, "leaf 3", tlogproof.ErrInclusion},
		{"cosignature dropped", strings.Replace(good, wLine, "", 1), pol, "leaf 3", tlogproof.ErrQuorum},
		{"cosignature corrupted", strings.Replace(good, "LPDg==", "LPDA==", 1), pol, "leaf 3", tlog.ErrBadSignature},
		{"log signature dropped", strings.Replace(good, logLine, "", 1), pol, "leaf 3", tlog.ErrUnsigned},
		{"log signature corrupted", strings.Replace(good, "uhDyOm4Ktgw=", "uhDyOm4Ktgg=", 1), pol, "leaf 3", tlog.ErrBadSignature},
		{"root changed", strings.Replace(good, "WmH8K1T5", "XmH8K1T5", 1), pol, "leaf 3", tlogproof.ErrLogSignature},
		{"unknown origin", good, strings.Replace(pol, "log example.com/log+d455c521+AQOhB7/zzhC+HXDdGOdLwJln5NYwm6UNXx3chmQSVTG4\n", otherLog, 1), "leaf 3", tlogproof.ErrUnknownLog},
		{"two-witness quorum", good, pol + "witness w2 " + w2Vkey + "\ngroup both all w1 w2\n", "leaf 3", tlogproof.ErrQuorum},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The two-witness policy sets its quorum after w1's.
			text := tc.policy
			if strings.Contains(text, "group both") {
				text = strings.Replace(text, "quorum w1\n", "", 1) + "quorum both\n"
			}
			r := policy(t, text)
			res, err := tlogproof.Verify(parse(t, []byte(tc.proof)), tlogproof.LeafHash([]byte(tc.entry)), r)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Verify = %+v, %v; want %v", res, err, tc.want)
			}
		})
	}
}

// With no quorum in the policy the log signature and the inclusion proof
// suffice (tlog-policy "quorum none").
func TestVerifyQuorumNone(t *testing.T) {
	good := string(readFile(t, "index3.tlog-proof"))
	wLine := "— witness.example/w1 IDJKvgAAAABlU/EAdmzUw1pItfMvHFyF/EilC4Xz+dLXIuByIqUj+94vGvXlxGRv29FzD1xGZRc5au0NWlmpZ1YpokOHmYzEU9LPDg==\n"
	r := policy(t, strings.Replace(string(readFile(t, "example.policy")), "quorum w1", "quorum none", 1))
	res, err := tlogproof.Verify(parse(t, []byte(strings.Replace(good, wLine, "", 1))), tlogproof.LeafHash([]byte("leaf 3")), r)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Cosigners) != 0 {
		t.Errorf("cosigners %v", res.Cosigners)
	}
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
