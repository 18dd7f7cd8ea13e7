package feed

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/vigilnet/vigil/gossip"
	"github.com/vigilnet/vigil/roster"
	"github.com/vigilnet/vigil/tlog"
)

// gossipLog is one log watched by nw roster witnesses and this node's
// witness (own, not listed), with a feed over a recordSource.
type gossipLog struct {
	origin string
	r      *roster.Roster
	rl     *roster.Log
	policy string
	log    note.Signer
	wits   []*tlog.CosignatureSigner
	own    *tlog.CosignatureSigner
	ownKey note.Verifier
	src    *recordSource
	f      *Feed
}

func newGossipLog(tb testing.TB, nw int, wrap func(*roster.Roster, ...note.Verifier) []note.Verifier) *gossipLog {
	tb.Helper()
	g := &gossipLog{origin: "example.com/log0"}
	now := func() time.Time { return time.Unix(1_700_000_000, 0) }
	lskey, lvkey, err := note.GenerateKey(rand.Reader, g.origin)
	if err != nil {
		tb.Fatal(err)
	}
	if g.log, err = note.NewSigner(lskey); err != nil {
		tb.Fatal(err)
	}
	var policy strings.Builder
	fmt.Fprintf(&policy, "log %s\n", lvkey)
	for i := range nw {
		skey, vkey, err := tlog.GenerateCosignerKey(rand.Reader, fmt.Sprintf("w%d.example", i))
		if err != nil {
			tb.Fatal(err)
		}
		s, err := tlog.NewCosignatureSigner(skey, now)
		if err != nil {
			tb.Fatal(err)
		}
		g.wits = append(g.wits, s)
		fmt.Fprintf(&policy, "witness w%d %s\n", i, vkey)
	}
	g.policy = policy.String()
	if g.r, err = roster.ParsePolicy([]byte(g.policy)); err != nil {
		tb.Fatal(err)
	}
	g.rl, _ = g.r.Log(g.origin)
	oskey, ovkey, err := tlog.GenerateCosignerKey(rand.Reader, "own.example")
	if err != nil {
		tb.Fatal(err)
	}
	if g.own, err = tlog.NewCosignatureSigner(oskey, now); err != nil {
		tb.Fatal(err)
	}
	if g.ownKey, err = tlog.NewCosignatureVerifier(ovkey); err != nil {
		tb.Fatal(err)
	}
	g.src = &recordSource{r: g.r, records: map[groupKey]map[string]note.Signature{}, bodies: map[groupKey][]byte{}}
	if g.f, err = New(Config{Source: g.src, OwnKey: g.ownKey, Now: now, WrapVerifiers: wrap}); err != nil {
		tb.Fatal(err)
	}
	if _, err := g.f.views.byID(context.Background(), tlog.LogID(g.origin)); err != nil {
		tb.Fatal(err)
	}
	return g
}

// cosign plays this node's witness cosigning the checkpoint of size, and
// returns its text and the log's and own signatures.
func (g *gossipLog) cosign(tb testing.TB, size uint64) (tlog.Checkpoint, []note.Signature) {
	cp := tlog.Checkpoint{Origin: g.origin, Size: size, Root: sha256.Sum256(fmt.Appendf(nil, "%d", size))}
	body := cp.Marshal()
	sigs := []note.Signature{sigLine(tb, body, g.log), sigLine(tb, body, g.own)}
	witnessCosigned(tb, g.f, g.src, g.rl, body, sigs)
	g.f.views.update(context.Background(), g.origin)
	return cp, sigs
}

// TestVerifiedRecordNotVerifiedAgain: gossip's record of a checkpoint this
// node's witness cosigned, with a roster witness's cosignature gossip
// verified, is merged with no signature verification when announced as
// verified (CheckpointVerified), and verified when announced as a note from
// outside (CheckpointAdded) or for a roster entry that is no longer the
// feed's. A forged line announced from outside is dropped.
func TestVerifiedRecordNotVerifiedAgain(t *testing.T) {
	verifies := 0
	wrap := func(_ *roster.Roster, vs ...note.Verifier) []note.Verifier {
		out := make([]note.Verifier, len(vs))
		for i, v := range vs {
			out[i] = verifyCounter{v, &verifies}
		}
		return out
	}
	ctx := context.Background()
	for _, tc := range []struct {
		name     string
		announce func(g *gossipLog, rec []byte)
		forge    bool
		verified bool // no verification expected
		merged   bool
	}{
		{"verified by gossip", func(g *gossipLog, rec []byte) { g.f.CheckpointVerified(g.rl, rec) }, false, true, true},
		{"from outside", func(g *gossipLog, rec []byte) { g.f.CheckpointAdded(g.origin, rec) }, false, false, true},
		{"forged, from outside", func(g *gossipLog, rec []byte) { g.f.CheckpointAdded(g.origin, rec) }, true, false, false},
		{"verified against an older roster", func(g *gossipLog, rec []byte) {
			old, err := roster.ParsePolicy([]byte(g.policy))
			if err != nil {
				t.Fatal(err)
			}
			ol, _ := old.Log(g.origin)
			g.f.CheckpointVerified(ol, rec)
		}, false, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newGossipLog(t, 2, wrap)
			cp, sigs := g.cosign(t, 5)
			w0 := sigLine(t, cp.Marshal(), g.wits[0])
			if tc.forge {
				b := []byte(w0.Base64)
				b[30] ^= 1
				w0.Base64 = string(b)
			}
			rec, err := tlog.FormatNote(cp.Marshal(), append(slices.Clone(sigs), w0))
			if err != nil {
				t.Fatal(err)
			}
			verifies = 0
			tc.announce(g, rec)
			g.f.views.update(ctx, g.origin)
			if got := verifies == 0; got != tc.verified {
				t.Errorf("%d signature verifications", verifies)
			}
			v, err := g.f.views.byID(ctx, tlog.LogID(g.origin))
			if err != nil {
				t.Fatal(err)
			}
			if merged := v.byK[1] != nil && v.byK[1].cp == cp; merged != tc.merged {
				t.Errorf("w0's cosignature merged: %v, want %v", merged, tc.merged)
			}
		})
	}
}

// BenchmarkViewGossipRecords: one checkpoint's life in the view of a log
// with 16 roster witnesses: this node's witness cosigns it, then gossip
// merges each witness's cosignature into its record, one record note per
// witness, as gossip announces them to the feed. The signature cache is
// the node's (gossip.SignatureCache), already holding every signature as
// gossip verified them before storing. "outside" announces the records as
// notes to verify (CheckpointAdded), "verified" as verified by gossip
// (CheckpointVerified).
func BenchmarkViewGossipRecords(b *testing.B) {
	const nw = 16
	for _, mode := range []string{"outside", "verified"} {
		b.Run(mode, func(b *testing.B) {
			cache := gossip.NewSignatureCache()
			g := newGossipLog(b, nw, cache.Wrap)
			ctx := context.Background()
			warm := cache.Wrap(g.r, append([]note.Verifier{g.rl.Verifier}, g.r.WitnessVerifiers()...)...)
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				b.StopTimer()
				size := uint64(i + 1)
				cp := tlog.Checkpoint{Origin: g.origin, Size: size, Root: sha256.Sum256(fmt.Appendf(nil, "%d", size))}
				body := cp.Marshal()
				sigs := []note.Signature{sigLine(b, body, g.log), sigLine(b, body, g.own)}
				own, _ := tlog.FormatNote(body, sigs)
				var recs [][]byte
				for _, w := range g.wits {
					sigs = append(sigs, sigLine(b, body, w))
					rec, _ := tlog.FormatNote(body, sigs)
					recs = append(recs, rec)
				}
				// Gossip verified them before storing the records.
				if _, _, err := tlog.VerifyCheckpoint(recs[len(recs)-1], g.origin, warm[:1], warm[1:]...); err != nil {
					b.Fatal(err)
				}
				g.src.mu.Lock()
				g.src.ws = own
				g.src.mu.Unlock()
				b.StartTimer()
				g.f.Cosigned(g.rl, own)
				g.f.views.update(ctx, g.origin)
				for _, rec := range recs {
					if mode == "verified" {
						g.f.CheckpointVerified(g.rl, rec)
					} else {
						g.f.CheckpointAdded(g.origin, rec)
					}
					g.f.views.update(ctx, g.origin)
				}
			}
			b.StopTimer()
			v, _ := g.f.views.byID(ctx, tlog.LogID(g.origin))
			if e := v.byK[nw]; e == nil || e.cp.Size != uint64(b.N) {
				b.Fatalf("the newest checkpoint with %d cosigners is %v, want size %d", nw, e, b.N)
			}
		})
	}
}
