// Package gossip is Vigil's peer-to-peer layer: a libp2p host (TCP by
// default, QUIC if configured; Noise and TLS) running gossipsub with strict
// message signing and tuned peer scoring, the validators every message
// passes before it is stored or forwarded, the split-view detector, and the
// spreading of evidence.
//
// Nodes publish sightings (checkpoints they pulled, were pushed or cosigned)
// on /vigil/1/<network>/checkpoints and evidence on
// /vigil/1/<network>/evidence. Every accepted sighting is merged into the
// store (the union of valid roster cosignatures per checkpoint) and compared
// with what the node already holds; a provable split view becomes evidence,
// stored forever and published at once. Offline verification of evidence is
// package gossip/evidence. docs/gossip.md documents the protocol.
package gossip
