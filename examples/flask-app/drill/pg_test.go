package drill

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// pgServer is the local PostgreSQL server with the drill's login role.
type pgServer struct {
	host, user, password string
	port                 int
}

const drillRole, drillPassword = "tda_drill", "tda-drill-password"

// requirePostgres sets up the drill's role (CREATEDB, with a password, over TCP on 127.0.0.1)
// through psql as the postgres superuser, as DEVELOPERS.md describes.
func requirePostgres(t *testing.T) pgServer {
	t.Helper()
	for _, tool := range []string{"psql", "pg_dump", "pg_restore"} {
		if _, err := exec.LookPath(tool); err != nil {
			unavailable(t, tool+" is not installed (apt-get install postgresql postgresql-client)")
		}
	}
	port := 5432
	if p := os.Getenv("TDA_TEST_PGPORT"); p != "" {
		port, _ = strconv.Atoi(p)
	}
	s := pgServer{host: "127.0.0.1", port: port, user: drillRole, password: drillPassword}
	sql := fmt.Sprintf(`DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '%[1]s') THEN CREATE ROLE %[1]s LOGIN CREATEDB; END IF;
END $$;
ALTER ROLE %[1]s LOGIN CREATEDB PASSWORD '%[2]s';`, drillRole, drillPassword)
	if out, err := s.superuser(sql); err != nil {
		unavailable(t, fmt.Sprintf("cannot run psql as the postgres superuser: %v: %s", err, out))
	}
	return s
}

func (s pgServer) superuser(sql string, flags ...string) ([]byte, error) {
	args := append([]string{"-X", "-q", "-v", "ON_ERROR_STOP=1", "-p", strconv.Itoa(s.port), "-d", "postgres"}, flags...)
	args = append(args, "-c", sql)
	var cmd *exec.Cmd
	if os.Geteuid() == 0 {
		cmd = exec.Command("runuser", append([]string{"-u", "postgres", "--", "psql"}, args...)...)
	} else {
		cmd = exec.Command("psql", args...)
	}
	return cmd.CombinedOutput()
}

// createDatabase creates a database owned by the drill's role, dropped (with every database
// whose name starts with it, such as restores) when the test ends.
func (s pgServer) createDatabase(t *testing.T, prefix string) string {
	t.Helper()
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	name := prefix + "_" + hex.EncodeToString(b)
	if out, err := s.superuser("CREATE DATABASE " + name + " OWNER " + drillRole); err != nil {
		t.Fatalf("create database: %v: %s", err, out)
	}
	t.Cleanup(func() {
		// DROP DATABASE cannot run inside a DO block: list the names, then drop each.
		out, err := s.superuser(fmt.Sprintf("SELECT datname FROM pg_database WHERE datname LIKE '%s%%'", name), "-At")
		if err != nil {
			t.Logf("list the drill's databases: %v: %s", err, out)
			return
		}
		for _, d := range strings.Fields(string(out)) {
			if out, err := s.superuser(fmt.Sprintf(`DROP DATABASE IF EXISTS %q WITH (FORCE)`, d)); err != nil {
				t.Logf("drop %s: %v: %s", d, err, out)
			}
		}
	})
	return name
}

func (s pgServer) url(database string) string {
	return fmt.Sprintf("postgresql://%s:%s@%s:%d/%s", s.user, s.password, s.host, s.port, database)
}
