package peercred

import (
	"errors"
	"net"
	"syscall"
)

// Supported reports whether the kernel reports peers of Unix sockets here.
const Supported = true

// Of reads the credentials of the process at the other end of a Unix socket connection.
func Of(conn net.Conn) (Cred, error) {
	uc, ok := conn.(*net.UnixConn)
	if !ok {
		return Cred{}, errors.New("not a Unix socket connection: the kernel cannot name its peer")
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return Cred{}, err
	}
	var u *syscall.Ucred
	var uerr error
	if err := raw.Control(func(fd uintptr) {
		u, uerr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	}); err != nil {
		return Cred{}, err
	}
	if uerr != nil {
		return Cred{}, uerr
	}
	return Cred{Pid: u.Pid, Uid: u.Uid, Gid: u.Gid}, nil
}
