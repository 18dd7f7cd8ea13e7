//go:build !unix

package load

import "net"

// newWire returns the connection itself as the wire: raw descriptor calls
// (wire_unix.go) are for Unix.
func newWire(c net.Conn) wire { return connWire{c} }
