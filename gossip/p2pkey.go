package gossip

import (
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/crypto/pb"

	"github.com/vigilnet/vigil/tlog"
)

// pubsub checks the libp2p signature on every message it receives (StrictSign)
// with the author's key, which it unmarshals from the message's peer ID
// through crypto.PubKeyUnmarshallers each time; libp2p's Ed25519 key then
// verifies with crypto/ed25519, which decompresses the key and builds its
// table on every call. That was about 10 % of a 50-node network's CPU.
// Vigil's Ed25519 keys get the expanded key of tlog.Ed25519Key instead (the
// same verification rules as crypto/ed25519, tested and fuzzed against it
// in tlog), expanded once per peer. Registering it in init, before any
// libp2p goroutine runs, keeps the map free of concurrent writes; every
// other key type and every other method of the key are libp2p's own.
func init() {
	crypto.PubKeyUnmarshallers[pb.KeyType_Ed25519] = unmarshalEd25519PublicKey
}

// p2pKeys are the expanded keys of the peers seen lately.
var p2pKeys = newLRU[[32]byte, *tlog.Ed25519Key](4096)

// ed25519PublicKey is libp2p's Ed25519 public key with a faster Verify.
type ed25519PublicKey struct {
	crypto.PubKey
	fast *tlog.Ed25519Key
}

func (k ed25519PublicKey) Verify(data, sig []byte) (bool, error) {
	return k.fast.Verify(data, sig), nil
}

func unmarshalEd25519PublicKey(data []byte) (crypto.PubKey, error) {
	pk, err := crypto.UnmarshalEd25519PublicKey(data)
	if err != nil {
		return nil, err
	}
	raw := [32]byte(data)
	fast, ok := p2pKeys.get(raw)
	if !ok {
		if fast, err = tlog.NewEd25519Key(data); err != nil {
			return nil, err
		}
		p2pKeys.update(raw, func(*tlog.Ed25519Key, bool) *tlog.Ed25519Key { return fast })
	}
	return ed25519PublicKey{PubKey: pk, fast: fast}, nil
}
