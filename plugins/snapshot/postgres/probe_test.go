package postgres

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tda-dev/tda/plugins/snapshot/internal/pgtest"
	"github.com/tda-dev/tda/plugins/snapshot/provider"
)

// TestProbe checks every way a real server can refuse what snapshots and restores need, and
// that each refusal names what to fix.
func TestProbe(t *testing.T) {
	srv := pgtest.Require(t)
	ctx := context.Background()
	// Roles first: the databases are dropped before them when the test ends.
	reader := srv.CreateRole(t, "tda_probe_reader", "reader-password", "NOCREATEDB")
	blind := srv.CreateRole(t, "tda_probe_blind", "blind-password", "CREATEDB")
	db := srv.CreateDatabase(t, "tda_probe")
	conn := srv.Connect(t, db)
	if _, err := conn.Exec(ctx, `CREATE TABLE users (id int PRIMARY KEY, hashed_password text);
		CREATE TABLE secrets (id int PRIMARY KEY);
		GRANT SELECT ON ALL TABLES IN SCHEMA public TO `+reader+`;
		GRANT SELECT ON users TO `+blind); err != nil {
		t.Fatal(err)
	}
	notADir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notADir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := func(mod func(*Config)) Config {
		c := Config{Host: srv.Host, Port: srv.Port, User: srv.User, Password: srv.Password, Database: db,
			SSLMode: "disable", Dir: t.TempDir()}
		mod(&c)
		return c
	}
	for _, tc := range []struct {
		name  string
		cfg   Config
		class error
		want  []string
	}{
		{"the test role owns the database", cfg(func(*Config) {}), nil, nil},
		{"wrong password", cfg(func(c *Config) { c.Password = "wrong" }), provider.ErrInvalid,
			[]string{`password authentication failed for user "` + srv.User + `"`, "fix user and password in the postgres block"}},
		{"no such database", cfg(func(c *Config) { c.Database = db + "_missing" }), provider.ErrNotFound,
			[]string{"does not exist", "fix database in the postgres block"}},
		{"nothing listens", cfg(func(c *Config) { c.Port = 1 }), provider.ErrBusy,
			[]string{"check that PostgreSQL is running"}},
		{"a table the role cannot read", cfg(func(c *Config) { c.User, c.Password = blind, "blind-password" }), provider.ErrInvalid,
			[]string{"cannot read table public.secrets", "pg_dump would fail", "GRANT SELECT ON ALL TABLES IN SCHEMA"}},
		{"no CREATEDB", cfg(func(c *Config) { c.User, c.Password = reader, "reader-password" }), provider.ErrInvalid,
			[]string{"lacks CREATEDB", "ALTER ROLE " + reader + " CREATEDB"}},
		{"dump directory is a file", cfg(func(c *Config) { c.Dir = filepath.Join(notADir, "dumps") }), provider.ErrInvalid,
			[]string{"dump directory", "writable"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := New(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close(ctx)
			c, cancel := context.WithTimeout(ctx, 20*time.Second)
			defer cancel()
			err = p.Probe(c)
			if tc.class == nil {
				if err != nil {
					t.Fatalf("probe: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("probe passed")
			}
			if !errors.Is(err, tc.class) {
				t.Errorf("class of %v is not %v", err, tc.class)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q lacks %q", err, w)
				}
			}
			if strings.Contains(err.Error(), tc.cfg.Password) && tc.cfg.Password != "" {
				t.Errorf("the password is in the message: %q", err)
			}
		})
	}
}
