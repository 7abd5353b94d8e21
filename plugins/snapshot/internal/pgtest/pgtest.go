// Package pgtest gives the snapshot packages' tests a real PostgreSQL server: a login role with
// a password (reached over TCP on 127.0.0.1) and throw-away databases. When no server is
// running the tests are skipped, unless TDA_REQUIRE_INTEGRATION=1 makes that a failure.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// Role is the login role the tests use; it may create databases.
const Role = "tda_snapshot_test"

// Server is a reachable PostgreSQL server.
type Server struct {
	Host     string
	Port     int
	User     string
	Password string
}

// Unavailable skips the test with reason, or fails it when TDA_REQUIRE_INTEGRATION=1.
func Unavailable(t testing.TB, reason string) {
	t.Helper()
	if os.Getenv("TDA_REQUIRE_INTEGRATION") == "1" {
		t.Fatalf("PostgreSQL required (TDA_REQUIRE_INTEGRATION=1): %s", reason)
	}
	t.Skipf("PostgreSQL not available: %s (start it with `pg_ctlcluster 15 main start`)", reason)
}

// Require returns the local server with the test role set up, or skips the test.
// TDA_TEST_PGPORT selects another port than 5432.
func Require(t testing.TB) Server {
	t.Helper()
	for _, tool := range []string{"pg_dump", "pg_restore", "psql"} {
		if _, err := exec.LookPath(tool); err != nil {
			Unavailable(t, tool+" is not installed")
		}
	}
	port := 5432
	if p := os.Getenv("TDA_TEST_PGPORT"); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil {
			t.Fatalf("TDA_TEST_PGPORT=%q: %v", p, err)
		}
		port = n
	}
	// A fixed password: test packages run in parallel and must not change it under each other.
	const password = "tda-snapshot-test"
	sql := fmt.Sprintf(`DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '%[1]s') THEN
    CREATE ROLE %[1]s LOGIN CREATEDB;
  END IF;
END $$;
ALTER ROLE %[1]s LOGIN CREATEDB PASSWORD '%[2]s';`, Role, password)
	out, err := superuser(port, sql)
	if err != nil && strings.Contains(string(out), "already exists") {
		out, err = superuser(port, sql) // another package created the role at the same moment
	}
	if err != nil {
		Unavailable(t, fmt.Sprintf("cannot run psql as the postgres superuser: %v: %s", err, out))
	}
	s := Server{Host: "127.0.0.1", Port: port, User: Role, Password: password}
	conn, err := pgx.Connect(context.Background(), s.ConnString("postgres"))
	if err != nil {
		Unavailable(t, fmt.Sprintf("cannot connect to 127.0.0.1:%d as %s: %v", port, Role, err))
	}
	conn.Close(context.Background())
	return s
}

// superuser runs sql with psql as the OS user postgres over the unix socket (peer
// authentication), the way a fresh Debian install allows.
func superuser(port int, sql string) ([]byte, error) {
	args := []string{"-X", "-q", "-v", "ON_ERROR_STOP=1", "-p", strconv.Itoa(port), "-d", "postgres", "-c", sql}
	var cmd *exec.Cmd
	if os.Geteuid() == 0 {
		cmd = exec.Command("runuser", append([]string{"-u", "postgres", "--", "psql"}, args...)...)
	} else {
		cmd = exec.Command("psql", args...)
	}
	return cmd.CombinedOutput()
}

// ConnString returns a keyword/value connection string for database.
func (s Server) ConnString(database string) string {
	return fmt.Sprintf("host=%s port=%d user=%s password=%s dbname=%s sslmode=disable",
		s.Host, s.Port, s.User, s.Password, database)
}

// Connect opens a connection to database, closed when the test ends.
func (s Server) Connect(t testing.TB, database string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), s.ConnString(database))
	if err != nil {
		t.Fatalf("connect to %s: %v", database, err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// CreateDatabase creates an empty database named prefix_<random>, dropped when the test ends.
func (s Server) CreateDatabase(t testing.TB, prefix string) string {
	t.Helper()
	name := prefix + "_" + Random(6)
	conn := s.Connect(t, "postgres")
	if _, err := conn.Exec(context.Background(), "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	s.DropOnCleanup(t, name)
	return name
}

// DropOnCleanup drops database (if it exists) when the test ends.
func (s Server) DropOnCleanup(t testing.TB, database string) {
	t.Cleanup(func() {
		conn, err := pgx.Connect(context.Background(), s.ConnString("postgres"))
		if err != nil {
			t.Logf("drop %s: %v", database, err)
			return
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+
			pgx.Identifier{database}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Logf("drop %s: %v", database, err)
		}
	})
}

// Random returns n random lowercase hex characters.
func Random(n int) string {
	b := make([]byte, (n+1)/2)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return strings.ToLower(hex.EncodeToString(b))[:n]
}
