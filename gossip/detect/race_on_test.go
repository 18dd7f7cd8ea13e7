//go:build race

package detect_test

// raceEnabled: the race detector slows the property test ~10×; it then
// plays 1,000 histories (the non-race run keeps 10,000).
const raceEnabled = true
