package feed

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/vigilnet/vigil/roster"
	"github.com/vigilnet/vigil/tlog"
)

// recordSource is a Source shaped like the node's store: one record per
// checkpoint (size, root) holding the union of its valid signatures (a
// witness's newer cosignature replacing its older one), notes that never
// verified kept apart, and the witness's last cosigned note beside them.
type recordSource struct {
	mu      sync.Mutex
	r       *roster.Roster
	records map[groupKey]map[string]note.Signature
	bodies  map[groupKey][]byte
	bad     [][]byte
	ws      []byte
}

func (s *recordSource) Roster() *roster.Roster { return s.r }

// merge adds sigs to the record of cp and returns the record's note.
func (s *recordSource) merge(cp tlog.Checkpoint, sigs []note.Signature) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := groupKey{cp.Size, cp.Root}
	rec := s.records[k]
	if rec == nil {
		rec = map[string]note.Signature{}
		s.records[k] = rec
		s.bodies[k] = cp.Marshal()
	}
	for _, sig := range sigs {
		id := fmt.Sprintf("%s/%08x", sig.Name, sig.Hash)
		if old, ok := rec[id]; ok {
			ot, oerr := tlog.CosignatureTimestamp(old)
			nt, nerr := tlog.CosignatureTimestamp(sig)
			if oerr != nil || nerr != nil || nt <= ot {
				continue
			}
		}
		rec[id] = sig
	}
	return s.noteOfLocked(k)
}

func (s *recordSource) Checkpoints(_ context.Context, _ string, q CheckpointQuery) ([][]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	type sized struct {
		size uint64
		note []byte
	}
	var all []sized
	for k := range s.records {
		all = append(all, sized{k.size, s.noteOfLocked(k)})
	}
	for _, b := range s.bad {
		size, _ := peekSize(b)
		all = append(all, sized{size, b})
	}
	if s.ws != nil {
		size, _ := peekSize(s.ws)
		all = append(all, sized{size, s.ws})
	}
	var sizes []uint64
	for _, n := range all {
		if n.size >= q.MinSize && n.size <= q.MaxSize {
			sizes = append(sizes, n.size)
		}
	}
	slices.Sort(sizes)
	sizes = slices.Compact(sizes)
	if q.Newest {
		slices.Reverse(sizes)
	}
	sizes = sizes[:min(len(sizes), q.Limit)]
	var out [][]byte
	for _, n := range all {
		if slices.Contains(sizes, n.size) {
			out = append(out, n.note)
		}
	}
	return out, nil
}

func (s *recordSource) noteOfLocked(k groupKey) []byte {
	ids := make([]string, 0, len(s.records[k]))
	for id := range s.records[k] {
		ids = append(ids, id)
	}
	// The log's signature first, as a store record has it.
	slices.SortFunc(ids, func(a, b string) int {
		la, lb := strings.HasPrefix(a, "example.com/log"), strings.HasPrefix(b, "example.com/log")
		switch {
		case la && !lb:
			return -1
		case lb && !la:
			return 1
		}
		return strings.Compare(a, b)
	})
	var sigs []note.Signature
	for _, id := range ids {
		sigs = append(sigs, s.records[k][id])
	}
	msg, _ := tlog.FormatNote(s.bodies[k], sigs)
	return msg
}

func (s *recordSource) Evidence(context.Context) ([]Evidence, error) { return nil, nil }
func (s *recordSource) EvidenceFile(context.Context, string) (Evidence, []byte, error) {
	return Evidence{}, nil, ErrNotFound
}
func (s *recordSource) Peers(context.Context) ([]Peer, error)           { return nil, nil }
func (s *recordSource) Suspicions(context.Context) ([]Suspicion, error) { return nil, nil }

// sigLine signs body with s and returns the signature line.
func sigLine(t testing.TB, body []byte, s note.Signer) note.Signature {
	t.Helper()
	msg, err := note.Sign(&note.Note{Text: string(body)}, s)
	if err != nil {
		t.Fatal(err)
	}
	line := msg[bytes.LastIndex(msg[:len(msg)-1], []byte("\n"))+1 : len(msg)-1]
	f := strings.Fields(string(line))
	return note.Signature{Name: f[1], Hash: s.KeyHash(), Base64: f[2]}
}

// TestIncrementalViewEqualsBuild applies random sequences of gossiped
// records (growing, equivocating, with witnesses' cosignatures old and new,
// and forged) and own cosignatures (which gossip stores as records too, at
// once, later or never), announced as verified by gossip or not, to a view
// in memory, in rounds of random
// length, and after each round compares it with a view built from the
// source from scratch: every k's note, cosigners, quorum, freshness and
// ETag must be the same.
func TestIncrementalViewEqualsBuild(t *testing.T) { incrementalViewEqualsBuild(t, 0, 64) }

// TestSoakIncrementalViewEqualsBuild runs TestIncrementalViewEqualsBuild
// over many more histories (make soak).
func TestSoakIncrementalViewEqualsBuild(t *testing.T) {
	if os.Getenv("VIGIL_SOAK") == "" {
		t.Skip("set VIGIL_SOAK=1 (make soak)")
	}
	incrementalViewEqualsBuild(t, 64, 5000)
}

// incrementalViewEqualsBuild checks the histories of seeds [from, to).
func incrementalViewEqualsBuild(t *testing.T, from, to uint64) {
	const origin = "example.com/log0"
	lskey, lvkey, err := note.GenerateKey(rand.Reader, origin)
	if err != nil {
		t.Fatal(err)
	}
	logSigner, err := note.NewSigner(lskey)
	if err != nil {
		t.Fatal(err)
	}
	var clock uint64 = 1_700_000_000
	now := func() time.Time { return time.Unix(int64(clock), 0) }
	var policy strings.Builder
	fmt.Fprintf(&policy, "log %s\n", lvkey)
	var wits []*tlog.CosignatureSigner
	for i := range 3 {
		skey, vkey, err := tlog.GenerateCosignerKey(rand.Reader, fmt.Sprintf("w%d.example", i))
		if err != nil {
			t.Fatal(err)
		}
		s, err := tlog.NewCosignatureSigner(skey, now)
		if err != nil {
			t.Fatal(err)
		}
		wits = append(wits, s)
		fmt.Fprintf(&policy, "witness w%d %s\n", i, vkey)
	}
	policy.WriteString("group q 2 w0 w1 w2\nquorum q\n")
	r, err := roster.ParsePolicy([]byte(policy.String()))
	if err != nil {
		t.Fatal(err)
	}
	rl, _ := r.Log(origin)
	oskey, ovkey, err := tlog.GenerateCosignerKey(rand.Reader, "own.example")
	if err != nil {
		t.Fatal(err)
	}
	own, err := tlog.NewCosignatureSigner(oskey, now)
	if err != nil {
		t.Fatal(err)
	}
	ownKey, err := tlog.NewCosignatureVerifier(ovkey)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	for seed := from; seed < to; seed++ {
		rng := mrand.New(mrand.NewPCG(seed, 7))
		src := &recordSource{r: r, records: map[groupKey]map[string]note.Signature{}, bodies: map[groupKey][]byte{}}
		f, err := New(Config{Source: src, OwnKey: ownKey, Now: now})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.views.byID(ctx, tlog.LogID(origin)); err != nil {
			t.Fatal(err)
		}
		var newest, ownSize uint64
		type ownRecord struct {
			step int
			cp   tlog.Checkpoint
			sigs []note.Signature
		}
		var later []ownRecord
		// gossiped announces a record gossip merged, as verified by
		// gossip or not.
		gossiped := func(rec []byte) {
			if rng.IntN(2) == 0 {
				f.CheckpointVerified(rl, rec)
			} else {
				f.CheckpointAdded(origin, rec)
			}
		}
		updates := 0
		for step := range 80 {
			clock += uint64(rng.IntN(3))
			size := newest + uint64(rng.IntN(3))
			if newest > 0 && rng.IntN(3) == 0 {
				size = 1 + uint64(rng.IntN(int(newest))) // an older checkpoint
			}
			newest = max(newest, size)
			root := sha256.Sum256(fmt.Appendf(nil, "%d", size))
			if rng.IntN(8) == 0 {
				root = sha256.Sum256(fmt.Appendf(nil, "fork %d", size)) // equivocation
			}
			cp := tlog.Checkpoint{Origin: origin, Size: size, Root: root}
			body := cp.Marshal()
			sigs := []note.Signature{sigLine(t, body, logSigner)}
			switch op := rng.IntN(10); {
			case op < 2 && size >= ownSize: // this node's witness cosigned it
				ownSize = size
				sigs = append(sigs, sigLine(t, body, own))
				witnessCosigned(t, f, src, rl, body, sigs)
				// Gossip stores the cosigned note as a record too: at
				// once, some steps later (after the witness may have
				// moved on), or never.
				switch rng.IntN(3) {
				case 0:
					gossiped(src.merge(cp, sigs))
				case 1:
					later = append(later, ownRecord{step + 1 + rng.IntN(6), cp, sigs})
				}
			case op < 3: // a forged cosignature: the whole note is dropped
				bad := sigLine(t, body, wits[rng.IntN(3)])
				b := []byte(bad.Base64)
				b[30] = map[bool]byte{true: 'B', false: 'A'}[b[30] == 'A']
				bad.Base64 = string(b)
				msg, err := tlog.FormatNote(body, append(sigs, bad))
				if err != nil {
					t.Fatal(err)
				}
				src.mu.Lock()
				src.bad = append(src.bad, msg)
				src.mu.Unlock()
				f.CheckpointAdded(origin, msg)
			default: // gossip merged cosignatures into the record
				for _, w := range wits {
					if rng.IntN(2) == 0 {
						sigs = append(sigs, sigLine(t, body, w))
					}
				}
				gossiped(src.merge(cp, sigs))
			}
			for i := 0; i < len(later); i++ {
				if later[i].step <= step {
					gossiped(src.merge(later[i].cp, later[i].sigs))
					later = slices.Delete(later, i, i+1)
					i--
				}
			}
			if rng.IntN(3) != 0 && step != 79 {
				continue // let a round collect several notes
			}
			f.views.update(ctx, origin)
			updates++
			got, err := f.views.byID(ctx, tlog.LogID(origin))
			if err != nil {
				t.Fatal(err)
			}
			fresh, err := New(Config{Source: src, OwnKey: ownKey, Now: now})
			if err != nil {
				t.Fatal(err)
			}
			want, err := fresh.views.byID(ctx, tlog.LogID(origin))
			if err != nil {
				t.Fatal(err)
			}
			for k := range want.byK {
				if d := entryDiff(got.byK[k], want.byK[k]); d != "" {
					t.Fatalf("seed %d step %d k=%d: in memory vs built: %s", seed, step, k, d)
				}
			}
		}
		if updates == 0 {
			t.Fatalf("seed %d: no round", seed)
		}
	}
}

func entryDiff(a, b *entry) string {
	switch {
	case a == nil && b == nil:
		return ""
	case a == nil || b == nil:
		return fmt.Sprintf("%v vs %v", a != nil, b != nil)
	case !bytes.Equal(a.note, b.note):
		return fmt.Sprintf("note\n%s\nvs\n%s", a.note, b.note)
	case !slices.Equal(a.cosigners, b.cosigners):
		return fmt.Sprintf("cosigners %v vs %v", a.cosigners, b.cosigners)
	case a.quorum != b.quorum || !a.cosignedAt.Equal(b.cosignedAt) || a.etag != b.etag:
		return fmt.Sprintf("quorum %v/%v cosignedAt %v/%v etag %s/%s", a.quorum, b.quorum, a.cosignedAt, b.cosignedAt, a.etag, b.etag)
	}
	return ""
}

// TestAddsWithoutVerifying: a note is skipped unverified only if it is older
// than a checkpoint every witness cosigned, or if each of its signature
// lines is one the view holds, byte for byte, for the same checkpoint text.
// It is merged unverified (addsKnown) if each line is one the view holds in
// a record or the witness's note, or, for a note its caller verified
// (CheckpointVerified), one of the log's or a roster witness's key.
func TestAddsWithoutVerifying(t *testing.T) {
	const origin = "example.com/log0"
	skey, vkey, err := note.GenerateKey(rand.Reader, origin)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	wskey, wvkey, err := tlog.GenerateCosignerKey(rand.Reader, "w0.example")
	if err != nil {
		t.Fatal(err)
	}
	wit, err := tlog.NewCosignatureSigner(wskey, func() time.Time { return time.Unix(1_700_000_000, 0) })
	if err != nil {
		t.Fatal(err)
	}
	oskey, _, err := tlog.GenerateCosignerKey(rand.Reader, "own.example")
	if err != nil {
		t.Fatal(err)
	}
	own, err := tlog.NewCosignatureSigner(oskey, func() time.Time { return time.Unix(1_700_000_000, 0) })
	if err != nil {
		t.Fatal(err)
	}
	r, err := roster.ParsePolicy(fmt.Appendf(nil, "log %s\nwitness w0 %s\n", vkey, wvkey))
	if err != nil {
		t.Fatal(err)
	}
	l, _ := r.Log(origin)
	by := &rosterIndex{r: r}
	cp := tlog.Checkpoint{Origin: origin, Size: 10, Root: sha256.Sum256([]byte("10"))}
	body := cp.Marshal()
	held := sigLine(t, body, signer)
	wsOwn := sigLine(t, body, own)
	other := tlog.Checkpoint{Origin: cp.Origin, Size: 10, Root: sha256.Sum256([]byte("fork"))}
	st := &viewState{groups: map[groupKey]*group{{cp.Size, cp.Root}: {cp: cp, logSigs: []note.Signature{held},
		ws: &verified{ok: true, cp: cp, own: &cosig{sig: wsOwn}}}}}
	format := func(body []byte, sigs ...note.Signature) []byte {
		msg, err := tlog.FormatNote(body, sigs)
		if err != nil {
			t.Fatal(err)
		}
		return msg
	}
	unheld := held
	unheld.Base64 = "AAAA" + held.Base64[4:]
	newer := tlog.Checkpoint{Origin: origin, Size: 11, Root: sha256.Sum256([]byte("11"))}
	older := tlog.Checkpoint{Origin: cp.Origin, Size: 3, Root: sha256.Sum256([]byte("3"))}
	all := &entry{cp: tlog.Checkpoint{Size: 5}}
	for _, tc := range []struct {
		name string
		raw  []byte
		byK  []*entry
		by   *rosterIndex
		want int
	}{
		{"held line", format(body, held), []*entry{nil, nil}, nil, addsNothing},
		{"unheld line", format(body, held, unheld), []*entry{nil, nil}, nil, mayAdd},
		{"other root", format(other.Marshal(), held), []*entry{nil, nil}, nil, mayAdd},
		{"no signatures", append(slices.Clone(body), '\n'), []*entry{nil, nil}, nil, mayAdd},
		{"not a note", []byte("garbage"), []*entry{nil, nil}, nil, mayAdd},
		{"older than all-cosigned", format(older.Marshal(), unheld), []*entry{nil, all}, nil, addsNothing},
		{"newer than all-cosigned", format(body, unheld), []*entry{nil, all}, nil, mayAdd},
		{"the witness's own line", format(body, held, wsOwn), []*entry{nil, nil}, nil, addsKnown},
		{"the witness's own line alone", format(body, wsOwn), []*entry{nil, nil}, nil, mayAdd},
		{"verified: a witness's line", format(body, held, sigLine(t, body, wit)), []*entry{nil, nil}, by, addsKnown},
		{"unverified: a witness's line", format(body, held, sigLine(t, body, wit)), []*entry{nil, nil}, nil, mayAdd},
		{"verified: a new checkpoint", format(newer.Marshal(), sigLine(t, newer.Marshal(), signer), sigLine(t, newer.Marshal(), wit)), []*entry{nil, nil}, by, addsKnown},
		{"verified: no log signature", format(newer.Marshal(), sigLine(t, newer.Marshal(), wit)), []*entry{nil, nil}, by, mayAdd},
		{"verified: an unlisted key's line", format(newer.Marshal(), sigLine(t, newer.Marshal(), signer), sigLine(t, newer.Marshal(), own)), []*entry{nil, nil}, by, mayAdd},
	} {
		if got, _ := st.adds(tc.raw, &logView{byK: tc.byK}, l, tc.by); got != tc.want {
			t.Errorf("%s: adds = %d, want %d", tc.name, got, tc.want)
		}
	}
}

// benchView is a feed over one log with 100 sizes each cosigned by two of
// three roster witnesses, and the notes of 1,000 more that this node's
// witness cosigns, one per iteration.
func benchView(b *testing.B) (*Feed, *recordSource, *roster.Log, [][]byte) {
	const origin = "example.com/log0"
	lskey, lvkey, _ := note.GenerateKey(rand.Reader, origin)
	logSigner, _ := note.NewSigner(lskey)
	now := func() time.Time { return time.Unix(1_700_000_000, 0) }
	policy := fmt.Sprintf("log %s\n", lvkey)
	var wits []*tlog.CosignatureSigner
	for i := range 3 {
		skey, vkey, _ := tlog.GenerateCosignerKey(rand.Reader, fmt.Sprintf("w%d.example", i))
		s, _ := tlog.NewCosignatureSigner(skey, now)
		wits = append(wits, s)
		policy += fmt.Sprintf("witness w%d %s\n", i, vkey)
	}
	r, err := roster.ParsePolicy([]byte(policy))
	if err != nil {
		b.Fatal(err)
	}
	rl, _ := r.Log(origin)
	oskey, ovkey, _ := tlog.GenerateCosignerKey(rand.Reader, "own.example")
	own, _ := tlog.NewCosignatureSigner(oskey, now)
	ownKey, _ := tlog.NewCosignatureVerifier(ovkey)
	src := &recordSource{r: r, records: map[groupKey]map[string]note.Signature{}, bodies: map[groupKey][]byte{}}
	for size := uint64(1); size <= 100; size++ {
		cp := tlog.Checkpoint{Origin: origin, Size: size, Root: sha256.Sum256(fmt.Appendf(nil, "%d", size))}
		body := cp.Marshal()
		src.merge(cp, []note.Signature{sigLine(b, body, logSigner), sigLine(b, body, wits[0]), sigLine(b, body, wits[1])})
	}
	var cosigned [][]byte
	for size := uint64(101); size <= 1100; size++ {
		cp := tlog.Checkpoint{Origin: origin, Size: size, Root: sha256.Sum256(fmt.Appendf(nil, "%d", size))}
		body := cp.Marshal()
		msg, _ := tlog.FormatNote(body, []note.Signature{sigLine(b, body, logSigner), sigLine(b, body, own)})
		cosigned = append(cosigned, msg)
	}
	f, err := New(Config{Source: src, OwnKey: ownKey, Now: now})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := f.views.byID(context.Background(), tlog.LogID(origin)); err != nil {
		b.Fatal(err)
	}
	return f, src, rl, cosigned
}

// BenchmarkViewUpdate: one note this node's witness cosigned, merged into
// the view in memory (what each cosignature costs the feed).
func BenchmarkViewUpdate(b *testing.B) {
	f, src, rl, cosigned := benchView(b)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		msg := cosigned[i%len(cosigned)]
		if i%len(cosigned) == 0 && i > 0 {
			b.StopTimer()
			f, src, rl, _ = benchView(b) // sizes only grow
			b.StartTimer()
		}
		src.mu.Lock()
		src.ws = msg
		src.mu.Unlock()
		f.Cosigned(rl, msg)
		f.views.update(ctx, rl.Origin)
	}
}

// verifyCounter counts the verifications that reach a wrapped verifier.
type verifyCounter struct {
	note.Verifier
	n *int
}

func (v verifyCounter) Verify(msg, sig []byte) bool {
	*v.n++
	return v.Verifier.Verify(msg, sig)
}

// TestOwnRecordAfterMoveOn: gossip's record of a checkpoint this node's
// witness cosigned, arriving after the witness cosigned a newer one (so its
// own cosignature left the older checkpoint's group), carries nothing the
// feed has not verified or made: it is merged back without a single
// signature verification. The same record with a forged own line is
// verified and dropped.
func TestOwnRecordAfterMoveOn(t *testing.T) {
	const origin = "example.com/log0"
	lskey, lvkey, _ := note.GenerateKey(rand.Reader, origin)
	logSigner, _ := note.NewSigner(lskey)
	now := func() time.Time { return time.Unix(1_700_000_000, 0) }
	// A roster witness that cosigns nothing keeps the older groups held.
	_, wvkey, _ := tlog.GenerateCosignerKey(rand.Reader, "w0.example")
	r, err := roster.ParsePolicy(fmt.Appendf(nil, "log %s\nwitness w0 %s\n", lvkey, wvkey))
	if err != nil {
		t.Fatal(err)
	}
	rl, _ := r.Log(origin)
	oskey, ovkey, _ := tlog.GenerateCosignerKey(rand.Reader, "own.example")
	own, _ := tlog.NewCosignatureSigner(oskey, now)
	ownKey, _ := tlog.NewCosignatureVerifier(ovkey)
	verifies := 0
	wrap := func(_ *roster.Roster, vs ...note.Verifier) []note.Verifier {
		out := make([]note.Verifier, len(vs))
		for i, v := range vs {
			out[i] = verifyCounter{v, &verifies}
		}
		return out
	}
	src := &recordSource{r: r, records: map[groupKey]map[string]note.Signature{}, bodies: map[groupKey][]byte{}}
	f, err := New(Config{Source: src, OwnKey: ownKey, Now: now, WrapVerifiers: wrap})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := f.views.byID(ctx, tlog.LogID(origin)); err != nil {
		t.Fatal(err)
	}
	cosign := func(size uint64) (tlog.Checkpoint, []note.Signature, []byte) {
		cp := tlog.Checkpoint{Origin: origin, Size: size, Root: sha256.Sum256(fmt.Appendf(nil, "%d", size))}
		body := cp.Marshal()
		sigs := []note.Signature{sigLine(t, body, logSigner), sigLine(t, body, own)}
		msg := witnessCosigned(t, f, src, rl, body, sigs)
		f.views.update(ctx, origin)
		return cp, sigs, msg
	}
	cp1, sigs1, _ := cosign(1)
	cosign(2)
	st := f.views.slot(origin).st
	g1 := st.groups[groupKey{cp1.Size, cp1.Root}]
	if g1 == nil || g1.own != nil {
		t.Fatalf("after the witness moved on, group 1 = %+v, want one without the own cosignature", g1)
	}

	forged := slices.Clone(sigs1)
	b := []byte(forged[1].Base64)
	b[30] ^= 1
	forged[1].Base64 = string(b)
	bad, err := tlog.FormatNote(cp1.Marshal(), forged)
	if err != nil {
		t.Fatal(err)
	}
	verifies = 0
	f.CheckpointAdded(origin, bad)
	f.views.update(ctx, origin)
	if verifies == 0 || g1.own != nil {
		t.Errorf("forged own line: %d verifications, own %v; want some, none", verifies, g1.own)
	}

	verifies = 0
	f.CheckpointAdded(origin, src.merge(cp1, sigs1))
	f.views.update(ctx, origin)
	if verifies != 0 {
		t.Errorf("the record of an own cosignature took %d verifications, want 0", verifies)
	}
	if g1.own == nil || g1.own.sig != sigs1[1] {
		t.Errorf("group 1 own cosignature = %v, want %v back", g1.own, sigs1[1])
	}
}

// witnessCosigned plays this node's witness cosigning body: the source's
// witness state becomes the note, and the feed hears of it as the witness's
// AfterCosign hook tells it.
func witnessCosigned(t testing.TB, f *Feed, src *recordSource, rl *roster.Log, body []byte, sigs []note.Signature) []byte {
	t.Helper()
	msg, err := tlog.FormatNote(body, sigs)
	if err != nil {
		t.Fatal(err)
	}
	src.mu.Lock()
	src.ws = msg
	src.mu.Unlock()
	f.Cosigned(rl, msg)
	return msg
}
