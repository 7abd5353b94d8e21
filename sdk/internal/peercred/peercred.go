// Package peercred authenticates the local channel between an agent and a plugin process it
// started by what the kernel says about the process at the other end of the Unix socket
// (SO_PEERCRED), instead of TLS. Both ends are processes of one machine and the bytes never
// leave the kernel, so encryption buys nothing; what matters is that only the agent that
// started a plugin talks to it, and that the agent talks to the plugin it started and not to
// a process that took its socket's place. TLS with a fresh P-521 certificate per process
// (go-plugin's AutoMTLS) proves that too, at the price of a key pair per start and AES-GCM
// over every byte of every batch, twice per hop.
//
// Where the kernel cannot say (sockets other than Unix ones, systems without SO_PEERCRED),
// Supported is false and the host keeps AutoMTLS.
package peercred

import (
	"context"
	"fmt"
	"net"

	"google.golang.org/grpc/credentials"
)

// Cred is what the kernel reports about the process at the other end of a Unix socket: the
// process that connected (seen by the listener) or that listened (seen by the dialer), as it
// was at that moment.
type Cred struct {
	Pid int32
	Uid uint32
	Gid uint32
}

// Check judges the peer; an error refuses the connection.
type Check func(Cred) error

// Credentials is gRPC transport credentials that pass the bytes as they are and admit a
// connection only when Check accepts its peer. Invariant: no connection reaches gRPC whose
// peer was not read from the kernel and accepted.
type Credentials struct {
	Check Check
}

// AuthInfo is the peer of an admitted connection.
type AuthInfo struct {
	credentials.CommonAuthInfo
	Peer Cred
}

// AuthType implements credentials.AuthInfo.
func (AuthInfo) AuthType() string { return "peercred" }

// ClientHandshake implements credentials.TransportCredentials.
func (c Credentials) ClientHandshake(_ context.Context, _ string, conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return c.handshake(conn)
}

// ServerHandshake implements credentials.TransportCredentials.
func (c Credentials) ServerHandshake(conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return c.handshake(conn)
}

func (c Credentials) handshake(conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	peer, err := Of(conn)
	if err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("peer credentials: %w", err)
	}
	if c.Check == nil {
		conn.Close()
		return nil, nil, fmt.Errorf("peer credentials: no check configured")
	}
	if err := c.Check(peer); err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("peer credentials: %w", err)
	}
	// The bytes stay in the kernel between two processes of one user: as private as the
	// user's own memory.
	return conn, AuthInfo{CommonAuthInfo: credentials.CommonAuthInfo{SecurityLevel: credentials.PrivacyAndIntegrity}, Peer: peer}, nil
}

// Info implements credentials.TransportCredentials.
func (Credentials) Info() credentials.ProtocolInfo {
	return credentials.ProtocolInfo{SecurityProtocol: "peercred"}
}

// Clone implements credentials.TransportCredentials.
func (c Credentials) Clone() credentials.TransportCredentials { return c }

// OverrideServerName implements credentials.TransportCredentials (no names are checked).
func (Credentials) OverrideServerName(string) error { return nil }

// SameUser accepts a peer of the given user and, when pid is not 0, only the process pid.
func SameUser(uid uint32, pid func() int) Check {
	return func(c Cred) error {
		if c.Uid != uid {
			return fmt.Errorf("peer process %d runs as uid %d, not %d: refused", c.Pid, c.Uid, uid)
		}
		if pid != nil {
			if want := pid(); want != 0 && int(c.Pid) != want {
				return fmt.Errorf("peer process %d is not process %d: refused", c.Pid, want)
			}
		}
		return nil
	}
}
