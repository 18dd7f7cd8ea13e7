// Package testnet runs Vigil networks on one machine: real nodes on
// loopback, scripted logs (honest and equivocating), faults and
// measurements. The demo that `make demo` runs is built from it.
package testnet
