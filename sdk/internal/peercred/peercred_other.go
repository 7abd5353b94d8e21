//go:build !linux

package peercred

import (
	"errors"
	"net"
)

// Supported reports whether the kernel reports peers of Unix sockets here.
const Supported = false

// Of reads the credentials of the process at the other end of a Unix socket connection; not
// here.
func Of(net.Conn) (Cred, error) {
	return Cred{}, errors.New("peer credentials are not available on this system")
}
