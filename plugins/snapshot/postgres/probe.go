package postgres

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/tda-dev/tda/plugins/snapshot/provider"
)

var _ provider.Prober = (*Provider)(nil)

// unreadableQuery lists what pg_dump could not read as the connected role: schemas without
// USAGE, then tables, views, materialized views and sequences without SELECT (at most 5).
const unreadableQuery = `
SELECT kind, name FROM (
  SELECT 1 AS ord, 'schema' AS kind, quote_ident(n.nspname) AS name
    FROM pg_namespace n
   WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
     AND n.nspname NOT LIKE 'pg\_temp\_%' AND n.nspname NOT LIKE 'pg\_toast\_temp\_%'
     AND NOT has_schema_privilege(n.oid, 'USAGE')
  UNION ALL
  SELECT 2, CASE c.relkind WHEN 'S' THEN 'sequence' ELSE 'table' END,
         quote_ident(n.nspname) || '.' || quote_ident(c.relname)
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S')
     AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
     AND n.nspname NOT LIKE 'pg\_temp\_%'
     AND NOT has_table_privilege(c.oid, 'SELECT')
) x ORDER BY ord, name LIMIT 5`

// Probe implements provider.Provider: pg_dump and pg_restore are installed, the database
// accepts the configured credentials, the role can read everything pg_dump reads, it may
// create the databases restores create, and the dump directory is writable. It changes
// nothing.
func (p *Provider) Probe(ctx context.Context) error {
	op := "probe database " + p.cfg.Database
	for _, tool := range []string{"pg_dump", "pg_restore"} {
		if _, err := p.tool(tool); err != nil {
			return err
		}
	}
	conn, err := pgx.Connect(ctx, p.connString(p.cfg.Database))
	if err != nil {
		return p.probeConnectError(op, err)
	}
	defer conn.Close(context.Background())

	rows, err := conn.Query(ctx, unreadableQuery)
	if err != nil {
		return &provider.Error{Op: op, Err: fmt.Errorf("read privileges: %w", err)}
	}
	var missing []string
	var schemas, tables int
	for rows.Next() {
		var kind, name string
		if err := rows.Scan(&kind, &name); err != nil {
			rows.Close()
			return &provider.Error{Op: op, Err: err}
		}
		missing = append(missing, kind+" "+name)
		if kind == "schema" {
			schemas++
		} else {
			tables++
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return &provider.Error{Op: op, Err: fmt.Errorf("read privileges: %w", err)}
	}
	user := p.role(ctx, conn)
	if len(missing) > 0 {
		grant := fmt.Sprintf("GRANT SELECT ON ALL TABLES IN SCHEMA <schema> TO %s (and ON ALL SEQUENCES)", user)
		if schemas > 0 {
			grant = fmt.Sprintf("GRANT USAGE ON SCHEMA <schema> TO %s, then ", user) + grant
		}
		return &provider.Error{Op: op, Class: provider.ErrInvalid,
			Err:    fmt.Errorf("role %s cannot read %s, so pg_dump would fail", user, strings.Join(missing, ", ")),
			Advice: grant + ", or use a role that can read the whole database"}
	}
	var createdb, superuser bool
	if err := conn.QueryRow(ctx, `SELECT rolcreatedb, rolsuper FROM pg_roles WHERE rolname = current_user`).
		Scan(&createdb, &superuser); err != nil {
		return &provider.Error{Op: op, Err: fmt.Errorf("read the role's attributes: %w", err)}
	}
	if !createdb && !superuser {
		return &provider.Error{Op: op, Class: provider.ErrInvalid,
			Err:    fmt.Errorf("role %s lacks CREATEDB, so restores could not create the new database", user),
			Advice: fmt.Sprintf("ALTER ROLE %s CREATEDB, or use a role that has it", user)}
	}
	if err := writable(p.cfg.Dir); err != nil {
		return &provider.Error{Op: op, Class: provider.ErrInvalid, Err: err,
			Advice: "make the dump directory writable by the agent's user, or set dir in the postgres block"}
	}
	return nil
}

// role is the connected role's name, quoted for SQL when it needs it.
func (p *Provider) role(ctx context.Context, conn *pgx.Conn) string {
	var user string
	if err := conn.QueryRow(ctx, `SELECT current_user`).Scan(&user); err != nil || user == "" {
		user = p.cfg.User
	}
	return sqlName(user)
}

// plainNameRE matches names SQL takes without quotes.
var plainNameRE = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

// sqlName is name as an operator types it in SQL: quoted only when it must be.
func sqlName(name string) string {
	if plainNameRE.MatchString(name) {
		return name
	}
	return pgx.Identifier{name}.Sanitize()
}

// probeConnectError says what to fix for a failed connection: credentials, the database's
// name, or the server's address.
func (p *Provider) probeConnectError(op string, err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "28P01", "28000": // invalid_password, invalid_authorization_specification
			return &provider.Error{Op: op, Class: provider.ErrInvalid, Err: errors.New(pgErr.Message),
				Advice: "fix user and password in the postgres block (or the environment variable it reads)"}
		case "3D000": // invalid_catalog_name
			return &provider.Error{Op: op, Class: provider.ErrNotFound, Err: errors.New(pgErr.Message),
				Advice: "fix database in the postgres block"}
		case "42501": // insufficient_privilege (CONNECT revoked)
			return &provider.Error{Op: op, Class: provider.ErrInvalid, Err: errors.New(pgErr.Message),
				Advice: fmt.Sprintf("GRANT CONNECT ON DATABASE %s to the role", sqlName(p.cfg.Database))}
		}
	}
	return &provider.Error{Op: op, Class: provider.ErrBusy, Err: err,
		Advice: "check that PostgreSQL is running and that host and port in the postgres block reach it"}
}

// writable checks that dir exists or can be made, and that a file can be created in it.
func writable(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("dump directory: %w", err)
	}
	f, err := os.CreateTemp(dir, ".probe-*")
	if err != nil {
		return fmt.Errorf("dump directory %s is not writable: %w", dir, err)
	}
	name := f.Name()
	f.Close()
	return os.Remove(name)
}
