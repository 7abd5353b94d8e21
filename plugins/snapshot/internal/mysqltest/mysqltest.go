// Package mysqltest gives the snapshot packages' tests a real MariaDB (or MySQL) server: a
// throw-away server started in a temporary directory, listening on 127.0.0.1 only, one per
// test binary, stopped by Stop (and by the kernel when the test binary dies first). When the
// server binaries are not installed the tests are skipped, unless TDA_REQUIRE_INTEGRATION=1
// makes that a failure.
package mysqltest

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/tda-dev/tda/plugins/snapshot/internal/pgtest"
)

// Server is a running server: user root without a password (grant tables are skipped), over
// TCP on 127.0.0.1.
type Server struct {
	Host string
	Port int
	User string
	dir  string
	cmd  *exec.Cmd
	done chan struct{}
}

var (
	once    sync.Once
	started *Server
	failure string
)

// Unavailable skips the test with reason, or fails it when TDA_REQUIRE_INTEGRATION=1.
func Unavailable(t testing.TB, reason string) {
	t.Helper()
	if os.Getenv("TDA_REQUIRE_INTEGRATION") == "1" {
		t.Fatalf("MariaDB required (TDA_REQUIRE_INTEGRATION=1): %s", reason)
	}
	t.Skipf("MariaDB not available: %s (Debian: apt-get install mariadb-server)", reason)
}

// Require returns the test binary's server, starting it on first use (about 10 s).
func Require(t testing.TB) *Server {
	t.Helper()
	once.Do(func() { started, failure = start() })
	if started == nil {
		Unavailable(t, failure)
	}
	return started
}

// Stop stops the server if one was started; call it from TestMain after m.Run.
func Stop() {
	if started == nil {
		return
	}
	_ = started.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-started.done:
	case <-time.After(30 * time.Second):
		_ = started.cmd.Process.Kill()
		<-started.done
	}
	_ = os.RemoveAll(started.dir)
	started = nil
}

func start() (*Server, string) {
	install, err := lookAny("mariadb-install-db", "mysql_install_db")
	if err != nil {
		return nil, "mariadb-install-db is not installed"
	}
	server, err := lookAny("mariadbd", "mysqld")
	if err != nil {
		return nil, "mariadbd is not installed"
	}
	dir, err := os.MkdirTemp("", "tda-mariadb-")
	if err != nil {
		return nil, err.Error()
	}
	user := "mysql"
	if u := os.Getenv("USER"); os.Geteuid() != 0 && u != "" {
		user = u
	}
	if os.Geteuid() == 0 {
		user = "root"
	}
	data := filepath.Join(dir, "data")
	out, err := exec.Command(install, "--no-defaults", "--datadir="+data, "--user="+user,
		"--auth-root-authentication-method=normal", "--skip-test-db").CombinedOutput()
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Sprintf("mariadb-install-db: %v: %s", err, tail(out))
	}
	port, err := freePort()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err.Error()
	}
	logf, err := os.Create(filepath.Join(dir, "server.log"))
	if err != nil {
		os.RemoveAll(dir)
		return nil, err.Error()
	}
	cmd := exec.Command(server, "--no-defaults", "--datadir="+data, "--user="+user,
		"--socket="+filepath.Join(dir, "sock"), "--port="+strconv.Itoa(port), "--bind-address=127.0.0.1",
		"--skip-grant-tables", "--skip-log-bin", "--innodb-buffer-pool-size=16M",
		"--innodb-flush-log-at-trx-commit=2", "--pid-file="+filepath.Join(dir, "pid"))
	cmd.Stdout, cmd.Stderr = logf, logf
	// The server dies with the test binary, even when the binary is killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, err.Error()
	}
	s := &Server{Host: "127.0.0.1", Port: port, User: "root", dir: dir, cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); logf.Close(); close(s.done) }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		db, err := sql.Open("mysql", s.DSN(""))
		if err == nil {
			err = db.Ping()
			db.Close()
		}
		if err == nil {
			return s, ""
		}
		select {
		case <-s.done:
			b, _ := os.ReadFile(filepath.Join(dir, "server.log"))
			os.RemoveAll(dir)
			return nil, "mariadbd exited: " + tail(b)
		default:
		}
		if time.Now().After(deadline) {
			started = s
			Stop()
			return nil, "mariadbd did not accept connections within 60s: " + err.Error()
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// DSN returns the driver's DSN for database ("" for none), times as UTC time.Time.
func (s *Server) DSN(database string) string {
	cfg := mysql.NewConfig()
	cfg.User, cfg.Net, cfg.Addr, cfg.DBName = s.User, "tcp", net.JoinHostPort(s.Host, strconv.Itoa(s.Port)), database
	cfg.ParseTime, cfg.Loc = true, time.UTC
	return cfg.FormatDSN()
}

// URL returns a mysql:// address of database.
func (s *Server) URL(database string) string {
	return fmt.Sprintf("mysql://%s@%s:%d/%s", s.User, s.Host, s.Port, database)
}

// CreateDatabase creates an empty database named prefix_<random>, dropped when the test ends.
func (s *Server) CreateDatabase(t testing.TB, prefix string) string {
	t.Helper()
	name := prefix + "_" + pgtest.Random(6)
	s.Exec(t, "", "CREATE DATABASE `"+name+"`")
	t.Cleanup(func() {
		db, err := sql.Open("mysql", s.DSN(""))
		if err == nil {
			_, err = db.Exec("DROP DATABASE IF EXISTS `" + name + "`")
			db.Close()
		}
		if err != nil {
			t.Logf("drop %s: %v", name, err)
		}
	})
	return name
}

// Exec runs statements in database, failing the test on error.
func (s *Server) Exec(t testing.TB, database string, stmts ...string) {
	t.Helper()
	db, err := sql.Open("mysql", s.DSN(database))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range stmts {
		if _, err := db.ExecContext(context.Background(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

func lookAny(names ...string) (string, error) {
	var err error
	for _, n := range names {
		var p string
		if p, err = exec.LookPath(n); err == nil {
			return p, nil
		}
		for _, dir := range []string{"/usr/sbin", "/usr/local/sbin"} {
			if _, serr := os.Stat(filepath.Join(dir, n)); serr == nil {
				return filepath.Join(dir, n), nil
			}
		}
	}
	return "", err
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func tail(b []byte) string {
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}
