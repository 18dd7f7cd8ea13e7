package gossip

import (
	"bytes"
	"crypto/rand"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// TestP2PKeyVerifiesAsLibp2p checks that the Ed25519 peer keys pubsub
// unmarshals are the faster ones and that they accept and reject exactly
// what libp2p's own key does, while marshalling, comparing and naming peers
// as before.
func TestP2PKeyVerifiesAsLibp2p(t *testing.T) {
	priv, pub, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, other, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	marshalled, err := crypto.MarshalPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	got, err := crypto.UnmarshalPublicKey(marshalled)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := got.(ed25519PublicKey); !ok {
		t.Fatalf("unmarshalled %T, want the expanded key", got)
	}
	if !got.Equals(pub) || !pub.Equals(got) {
		t.Fatal("the expanded key does not equal libp2p's")
	}
	if again, _ := crypto.MarshalPublicKey(got); !bytes.Equal(again, marshalled) {
		t.Fatal("the expanded key marshals differently")
	}
	id1, _ := peer.IDFromPublicKey(pub)
	id2, _ := peer.IDFromPublicKey(got)
	if id1 != id2 {
		t.Fatalf("peer IDs differ: %s, %s", id1, id2)
	}
	fromID, err := id1.ExtractPublicKey()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := fromID.(ed25519PublicKey); !ok {
		t.Fatalf("key extracted from a peer ID is %T", fromID)
	}

	msg := []byte("pubsub message")
	sig, err := priv.Sign(msg)
	if err != nil {
		t.Fatal(err)
	}
	flip := func(b []byte, i int) []byte { c := bytes.Clone(b); c[i%len(c)] ^= 1; return c }
	for _, tc := range []struct {
		name     string
		key      crypto.PubKey
		msg, sig []byte
	}{
		{"valid", pub, msg, sig},
		{"other message", pub, flip(msg, 3), sig},
		{"signature R changed", pub, msg, flip(sig, 5)},
		{"signature S changed", pub, msg, flip(sig, 40)},
		{"short signature", pub, msg, sig[:63]},
		{"empty signature", pub, msg, nil},
		{"other key", other, msg, sig},
	} {
		raw, _ := crypto.MarshalPublicKey(tc.key)
		fast, err := crypto.UnmarshalPublicKey(raw)
		if err != nil {
			t.Fatal(err)
		}
		want, wantErr := tc.key.Verify(tc.msg, tc.sig)
		have, haveErr := fast.Verify(tc.msg, tc.sig)
		if have != want || (haveErr != nil) != (wantErr != nil) {
			t.Errorf("%s: expanded key says %v (%v), libp2p's %v (%v)", tc.name, have, haveErr, want, wantErr)
		}
		if tc.name == "valid" && !have {
			t.Error("a valid signature does not verify")
		}
	}
}
