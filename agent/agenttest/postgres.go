package agenttest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"testing"

	"github.com/jackc/pgx/v5"
)

// Postgres is a reachable local PostgreSQL server for the agent's integration tests, with a
// login role (CREATEDB) of their own. It is found the way the snapshot packages' tests find
// theirs: TCP on 127.0.0.1, TDA_TEST_PGPORT for another port than 5432, roles made through
// `runuser -u postgres -- psql` (peer authentication).
type Postgres struct {
	Host     string
	Port     int
	User     string
	Password string
}

// RequirePostgres returns the local server, or skips the test without one (fails under
// TDA_REQUIRE_INTEGRATION=1).
func RequirePostgres(t testing.TB) Postgres {
	t.Helper()
	unavailable := func(reason string) {
		t.Helper()
		if os.Getenv("TDA_REQUIRE_INTEGRATION") == "1" {
			t.Fatalf("PostgreSQL required (TDA_REQUIRE_INTEGRATION=1): %s", reason)
		}
		t.Skipf("PostgreSQL not available: %s (start it with `pg_ctlcluster 15 main start`)", reason)
	}
	for _, tool := range []string{"pg_dump", "pg_restore", "psql"} {
		if _, err := exec.LookPath(tool); err != nil {
			unavailable(tool + " is not installed")
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
	const role, password = "tda_agent_test", "tda-agent-test"
	sql := fmt.Sprintf(`DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '%[1]s') THEN
    CREATE ROLE %[1]s LOGIN CREATEDB;
  END IF;
END $$;
ALTER ROLE %[1]s LOGIN CREATEDB PASSWORD '%[2]s';`, role, password)
	out, err := psqlSuperuser(port, sql)
	if err != nil {
		out, err = psqlSuperuser(port, sql) // another package created the role at the same moment
	}
	if err != nil {
		unavailable(fmt.Sprintf("cannot run psql as the postgres superuser: %v: %s", err, out))
	}
	pg := Postgres{Host: "127.0.0.1", Port: port, User: role, Password: password}
	conn, err := pgx.Connect(context.Background(), pg.ConnString("postgres"))
	if err != nil {
		unavailable(fmt.Sprintf("cannot connect to 127.0.0.1:%d as %s: %v", port, role, err))
	}
	conn.Close(context.Background())
	return pg
}

// ConnString returns a keyword/value connection string for database.
func (p Postgres) ConnString(database string) string {
	return fmt.Sprintf("host=%s port=%d user=%s password=%s dbname=%s sslmode=disable", p.Host, p.Port, p.User, p.Password, database)
}

// Connect opens a connection to database, closed when the test ends.
func (p Postgres) Connect(t testing.TB, database string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), p.ConnString(database))
	if err != nil {
		t.Fatalf("connect to %s: %v", database, err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// CreateDatabase creates an empty database prefix_<random>, dropped when the test ends.
func (p Postgres) CreateDatabase(t testing.TB, prefix string) string {
	t.Helper()
	name := prefix + "_" + randomHex(6)
	conn := p.Connect(t, "postgres")
	if _, err := conn.Exec(context.Background(), "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	p.DropOnCleanup(t, name)
	return name
}

// DropOnCleanup drops database, if it exists, when the test ends (as the superuser: a restore
// run by another role owns what it created).
func (p Postgres) DropOnCleanup(t testing.TB, database string) {
	t.Cleanup(func() {
		if out, err := psqlSuperuser(p.Port, "DROP DATABASE IF EXISTS "+pgx.Identifier{database}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Logf("drop %s: %v: %s", database, err, out)
		}
	})
}

// CreateRole creates a login role prefix_<random> (CREATEDB) with password, dropped when the
// test ends; create it before the databases it gets privileges on.
func (p Postgres) CreateRole(t testing.TB, prefix, password string) string {
	t.Helper()
	name := prefix + "_" + randomHex(6)
	if out, err := psqlSuperuser(p.Port, fmt.Sprintf(`CREATE ROLE %s LOGIN CREATEDB PASSWORD '%s'`, name, password)); err != nil {
		t.Fatalf("create role %s: %v: %s", name, err, out)
	}
	t.Cleanup(func() {
		if out, err := psqlSuperuser(p.Port, "DROP ROLE IF EXISTS "+name); err != nil {
			t.Logf("drop role %s: %v: %s", name, err, out)
		}
	})
	return name
}

// SetPassword changes a role's password as the superuser.
func (p Postgres) SetPassword(t testing.TB, role, password string) {
	t.Helper()
	if out, err := psqlSuperuser(p.Port, fmt.Sprintf(`ALTER ROLE %s PASSWORD '%s'`, pgx.Identifier{role}.Sanitize(), password)); err != nil {
		t.Fatalf("alter role %s: %v: %s", role, err, out)
	}
}

// psqlSuperuser runs sql with psql as the OS user postgres over the unix socket.
func psqlSuperuser(port int, sql string) ([]byte, error) {
	args := []string{"-X", "-q", "-v", "ON_ERROR_STOP=1", "-p", strconv.Itoa(port), "-d", "postgres", "-c", sql}
	var cmd *exec.Cmd
	if os.Geteuid() == 0 {
		cmd = exec.Command("runuser", append([]string{"-u", "postgres", "--", "psql"}, args...)...)
	} else {
		cmd = exec.Command("psql", args...)
	}
	return cmd.CombinedOutput()
}

func randomHex(n int) string {
	b := make([]byte, (n+1)/2)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)[:n]
}
