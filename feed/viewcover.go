package feed

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"

	"golang.org/x/mod/sumdb/note"

	"github.com/vigilnet/vigil/roster"
	"github.com/vigilnet/vigil/tlog"
)

// Reading an announced note against a view's state without verifying it:
// which of its signature lines the state holds already (verified, or made
// by this node's witness), and which its caller verified.

const (
	addsNothing = iota
	mayAdd
	// addsKnown: every line of the note is a signature st verified (or
	// this node's witness made) for the same checkpoint text, but not all
	// are in its records: nothing in it needs verifying.
	addsKnown
)

// maxNoteSigs is note.Open's limit on signature lines; a longer note is
// left to verify, which rejects it.
const maxNoteSigs = 100

// heldNote is a note all of whose lines st holds, as verified signatures.
type heldNote struct {
	cp   tlog.Checkpoint
	sigs []note.Signature
}

// adds tells, without verifying anything, whether raw can change v: not if
// its checkpoint is older than one every witness cosigned (which outranks
// it for every k), nor if every signature line of raw is, byte for byte, a
// verified signature st's records hold for the same checkpoint text. If
// every line is one st holds in a record, in the witness's note or in the
// note dropWS took out (a gossiped record of what this node's witness
// cosigned, typically), raw is addsKnown and held has its signatures.
//
// If by is not nil, the caller verified raw's lines of l's key and of by's
// roster witnesses (CheckpointVerified): those count as held too.
func (st *viewState) adds(raw []byte, v *logView, l *roster.Log, by *rosterIndex) (int, heldNote) {
	i := bytes.Index(raw, []byte("\n\n"))
	if i < 0 {
		return mayAdd, heldNote{}
	}
	cp, err := tlog.ParseCheckpoint(raw[:i+1])
	if err != nil {
		return mayAdd, heldNote{}
	}
	if all := v.byK[len(v.byK)-1]; all != nil && cp.Size < all.cp.Size {
		return addsNothing, heldNote{}
	}
	if by != nil && (cp.Origin != l.Origin || !bytes.Equal(raw[:i+1], cp.Marshal())) {
		// Not the text gossip signs and stores: verify it.
		by = nil
	}
	return st.covers(raw[i+2:], cp, l, by)
}

// covers tells whether every line of rest (a note's signature lines) is a
// signature st's records hold for cp (addsNothing), or one st holds in a
// record or a witness's note, or one by vouches for (addsKnown, with the
// signatures), or neither (mayAdd).
func (st *viewState) covers(rest []byte, cp tlog.Checkpoint, l *roster.Log, by *rosterIndex) (int, heldNote) {
	g := st.groups[groupKey{cp.Size, cp.Root}]
	if g != nil && g.cp != cp {
		return mayAdd, heldNote{}
	}
	if g == nil {
		if by == nil {
			return mayAdd, heldNote{}
		}
		g = &group{cp: cp}
	}
	if len(rest) == 0 {
		return mayAdd, heldNote{}
	}
	covered := g.cover(rest, l, by, nil)
	if covered != addsKnown {
		return covered, heldNote{}
	}
	held := heldNote{cp: cp, sigs: make([]note.Signature, 0, bytes.Count(rest, []byte("\n")))}
	g.cover(rest, l, by, &held.sigs)
	return addsKnown, held
}

// cover is covers' reading of a note's lines against g; with sigs it
// appends their signatures there.
func (g *group) cover(rest []byte, l *roster.Log, by *rosterIndex, sigs *[]note.Signature) int {
	covered := addsNothing
	logSigned := false
	for n := 0; len(rest) > 0; n++ {
		j := bytes.IndexByte(rest, '\n')
		if j < 0 || n == maxNoteSigs {
			return mayAdd
		}
		line := rest[:j]
		rest = rest[j+1:]
		sig, ok := bytes.CutPrefix(line, []byte("\u2014 "))
		if !ok {
			return mayAdd
		}
		name, b64, ok := bytes.Cut(sig, []byte(" "))
		if !ok {
			return mayAdd
		}
		s, inRecord := g.record(name, b64)
		if !inRecord {
			if s, ok = g.ws.holds(name, b64); !ok {
				if s, ok = g.dropped.holds(name, b64); !ok {
					if s, ok = by.vouches(l, name, b64); !ok {
						return mayAdd
					}
				}
			}
			covered = addsKnown
		}
		if s.Name == l.Verifier.Name() && s.Hash == l.Verifier.KeyHash() {
			logSigned = true
		}
		if sigs != nil {
			*sigs = append(*sigs, s)
		}
	}
	if covered == addsKnown && !logSigned {
		// Verifying would reject it: a checkpoint needs the log's signature.
		return mayAdd
	}
	return covered
}

// vouches returns the signature line (name, b64) if its key is l's or a
// roster witness's of idx (nil for none): a line of a note the caller
// verified with those keys (see CheckpointVerified).
func (idx *rosterIndex) vouches(l *roster.Log, name, b64 []byte) (note.Signature, bool) {
	if idx == nil || len(b64) < 8 {
		return note.Signature{}, false
	}
	var head [6]byte
	if _, err := base64.StdEncoding.Decode(head[:], b64[:8]); err != nil {
		return note.Signature{}, false
	}
	hash := binary.BigEndian.Uint32(head[:4])
	ok := string(name) == l.Verifier.Name() && hash == l.Verifier.KeyHash()
	if !ok {
		_, ok = idx.r.WitnessByKey(string(name), hash)
	}
	if !ok {
		return note.Signature{}, false
	}
	return note.Signature{Name: string(name), Hash: hash, Base64: string(b64)}, true
}

// record returns the signature line (name, b64) if g's records hold it.
func (g *group) record(name, b64 []byte) (note.Signature, bool) {
	for _, s := range g.logSigs {
		if s.Name == string(name) && s.Base64 == string(b64) {
			return s, true
		}
	}
	for _, cs := range g.cosigs {
		if cs.sig.Name == string(name) && cs.sig.Base64 == string(b64) {
			return cs.sig, true
		}
	}
	if g.own != nil && g.own.sig.Name == string(name) && g.own.sig.Base64 == string(b64) {
		return g.own.sig, true
	}
	return note.Signature{}, false
}

// holds returns the signature line (name, b64) if vn (nil for none) has it.
func (vn *verified) holds(name, b64 []byte) (note.Signature, bool) {
	if vn == nil {
		return note.Signature{}, false
	}
	for _, s := range vn.logSigs {
		if s.Name == string(name) && s.Base64 == string(b64) {
			return s, true
		}
	}
	for _, cs := range vn.cosigs {
		if cs.sig.Name == string(name) && cs.sig.Base64 == string(b64) {
			return cs.sig, true
		}
	}
	if vn.own != nil && vn.own.sig.Name == string(name) && vn.own.sig.Base64 == string(b64) {
		return vn.own.sig, true
	}
	return note.Signature{}, false
}
