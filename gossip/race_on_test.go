//go:build race

package gossip_test

// raceEnabled: the race detector slows the network tests ~5×; the long
// honest run is then shortened (the non-race run keeps the full count).
const raceEnabled = true
