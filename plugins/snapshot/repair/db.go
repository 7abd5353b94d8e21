// Package repair puts back, from a restored copy of a database into the live one, exactly the
// rows an incident damaged, and leaves alone every row that changed legitimately since.
//
// A repair has three steps. Plan reads the rows in scope on both sides and decides, row by
// row: repair (the live row still holds what the incident wrote), skip (it changed again since
// the incident: a legitimate change wins, and the row is listed for a human), missing (the row
// was deleted: it is re-inserted, with the rows foreign keys require, parents before
// children), or same (nothing to do). Apply takes a pre-repair snapshot through its caller,
// then writes the whole plan in one transaction, each update guarded by the live values the
// plan saw, and verifies afterwards that the live rows hold the restored values. Values are
// copied as the driver read them: a password hash comes back byte for byte, never hashed again.
//
// PostgreSQL (pgx) and MySQL/MariaDB (go-sql-driver/mysql) are supported through database/sql
// and a small Dialect each.
package repair

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"strings"

	"github.com/go-sql-driver/mysql"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
)

// DB is one side of a repair: the restored source or the live database.
type DB struct {
	SQL     *sql.DB
	Dialect Dialect
	// Name says which database this is, for messages ("live app", "restored app_restored").
	Name string
}

// Close closes the connection pool.
func (d *DB) Close() error { return d.SQL.Close() }

// Open connects to a database given by a DSN:
//   - PostgreSQL: a URL (postgres://user:pass@host:5432/db) or libpq keyword/value pairs
//     (host=127.0.0.1 user=app dbname=app);
//   - MySQL or MariaDB: mysql://user:pass@host:3306/db, or the driver's own form
//     user:pass@tcp(host:3306)/db. Times are read as UTC (parseTime=true, loc=UTC).
//
// It pings the server so that a wrong address fails here, with name in the message.
func Open(ctx context.Context, dsn, name string) (*DB, error) {
	kind, driverDSN, err := driverFor(dsn)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	var d Dialect = Postgres{}
	driver := "pgx"
	if kind == "mysql" {
		d, driver = MySQL{}, "mysql"
	}
	db, err := sql.Open(driver, driverDSN)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	// A repair is one transaction and a few reads: a handful of connections is plenty.
	db.SetMaxOpenConns(4)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("%s: cannot connect: %w (check the address, user and password)", name, err)
	}
	return &DB{SQL: db, Dialect: d, Name: name}, nil
}

// driverFor returns "postgres" or "mysql" and the DSN the driver takes.
func driverFor(dsn string) (kind, driverDSN string, err error) {
	switch {
	case dsn == "":
		return "", "", fmt.Errorf("no database address given")
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		return "postgres", dsn, nil
	case strings.HasPrefix(dsn, "mysql://"), strings.HasPrefix(dsn, "mariadb://"):
		u, err := url.Parse(dsn)
		if err != nil {
			return "", "", fmt.Errorf("invalid MySQL address: %w", err)
		}
		cfg := mysql.NewConfig()
		cfg.User = u.User.Username()
		cfg.Passwd, _ = u.User.Password()
		cfg.Net = "tcp"
		cfg.Addr = u.Host
		if u.Port() == "" {
			cfg.Addr = u.Host + ":3306"
		}
		cfg.DBName = strings.TrimPrefix(u.Path, "/")
		return "mysql", mysqlDSN(cfg), nil
	case strings.Contains(dsn, "@tcp(") || strings.Contains(dsn, "@unix("):
		cfg, err := mysql.ParseDSN(dsn)
		if err != nil {
			return "", "", fmt.Errorf("invalid MySQL address: %w", err)
		}
		return "mysql", mysqlDSN(cfg), nil
	case strings.Contains(dsn, "="):
		return "postgres", dsn, nil
	}
	return "", "", fmt.Errorf("%q is not a database address: use postgres://..., host=... dbname=..., or mysql://user:pass@host:3306/db", redact(dsn))
}

// mysqlDSN fixes the settings a repair relies on: times as UTC time.Time values, and an
// UPDATE's affected rows counting the rows it matched (not only those whose bytes changed), so
// that a guarded update that found its row is never taken for a row changed since the plan.
func mysqlDSN(cfg *mysql.Config) string {
	cfg.ParseTime = true
	cfg.ClientFoundRows = true
	cfg.Loc = timeUTC
	return cfg.FormatDSN()
}

// redact hides what looks like a password in an address shown in a message.
func redact(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
			return u.String()
		}
	}
	if i := strings.Index(dsn, "password="); i >= 0 {
		j := strings.IndexByte(dsn[i:], ' ')
		if j < 0 {
			return dsn[:i] + "password=xxxxx"
		}
		return dsn[:i] + "password=xxxxx" + dsn[i+j:]
	}
	return dsn
}
