//go:build linux

package peercred

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// pair returns both ends of a real Unix socket connection of this process.
func pair(t testing.TB) (client, server net.Conn) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "s")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := l.Accept()
		accepted <- c
	}()
	client, err = net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	server = <-accepted
	if server == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

// TestHandshake: the peer the kernel reports is this process (both ends are ours); a check
// that names another process or user refuses the connection and closes it, a connection that
// is not a Unix socket is refused, and a missing check admits nothing.
func TestHandshake(t *testing.T) {
	uid, pid := uint32(os.Getuid()), os.Getpid()
	tests := []struct {
		name    string
		check   Check
		wantErr string
	}{
		{"this user and process", SameUser(uid, func() int { return pid }), ""},
		{"this user, any process", SameUser(uid, nil), ""},
		{"another process", SameUser(uid, func() int { return pid + 1 }), "is not process"},
		{"not started yet", SameUser(uid, func() int { return -1 }), "is not process"},
		{"another user", SameUser(uid+1, nil), "runs as uid"},
		{"no check", nil, "no check"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, side := range []string{"server", "client"} {
				client, server := pair(t)
				c := Credentials{Check: tt.check}
				var conn net.Conn
				var err error
				if side == "server" {
					conn, _, err = c.ServerHandshake(server)
				} else {
					conn, _, err = c.ClientHandshake(t.Context(), "", client)
				}
				if tt.wantErr == "" {
					if err != nil || conn == nil {
						t.Fatalf("%s: refused: %v", side, err)
					}
					continue
				}
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("%s: want an error with %q, got %v", side, tt.wantErr, err)
				}
				// The refused connection is closed: the other end reads EOF.
				other := client
				if side == "client" {
					other = server
				}
				if _, rerr := other.Read(make([]byte, 1)); rerr == nil {
					t.Fatalf("%s: the refused connection is still open", side)
				}
			}
		})
	}
	t.Run("not a unix socket", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		go func() {
			if c, err := l.Accept(); err == nil {
				defer c.Close()
				c.Read(make([]byte, 1))
			}
		}()
		conn, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := (Credentials{Check: SameUser(uid, nil)}).ClientHandshake(t.Context(), "", conn); err == nil ||
			!strings.Contains(err.Error(), "not a Unix socket") {
			t.Fatalf("tcp connection: %v", err)
		}
	})
}

// TestOfReportsThisProcess: the kernel names this process at both ends of its own socket.
func TestOfReportsThisProcess(t *testing.T) {
	client, server := pair(t)
	for _, c := range []net.Conn{client, server} {
		got, err := Of(c)
		if err != nil {
			t.Fatal(err)
		}
		if int(got.Pid) != os.Getpid() || got.Uid != uint32(os.Getuid()) || got.Gid != uint32(os.Getgid()) {
			t.Fatalf("got %+v, want pid %d uid %d gid %d", got, os.Getpid(), os.Getuid(), os.Getgid())
		}
	}
}
