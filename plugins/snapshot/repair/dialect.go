package repair

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
)

var timeUTC = time.UTC

// ForeignKey is a single-column foreign key: Table.Column references RefTable.RefColumn.
type ForeignKey struct {
	Table, Column, RefTable, RefColumn string
}

// Dialect is what differs between the SQL databases a repair works on.
type Dialect interface {
	// Kind is "postgres" or "mysql".
	Kind() string
	// Quote quotes an identifier.
	Quote(ident string) string
	// Placeholder is the n-th (1-based) bind parameter.
	Placeholder(n int) string
	// NullSafeEqual compares column col with parameter p, NULL equal to NULL.
	NullSafeEqual(col, p string) string
	// AsText casts an expression to text, to compare keys given as strings.
	AsText(expr string) string
	// Columns lists a table's columns in order (an error when the table does not exist).
	Columns(ctx context.Context, db *sql.DB, table string) ([]string, error)
	// PrimaryKey lists a table's primary key columns.
	PrimaryKey(ctx context.Context, db *sql.DB, table string) ([]string, error)
	// ForeignKeys lists the single-column foreign keys of the current schema.
	ForeignKeys(ctx context.Context, db *sql.DB) ([]ForeignKey, error)
}

// Postgres is the PostgreSQL dialect; tables are looked up in the current schema.
type Postgres struct{}

func (Postgres) Kind() string { return "postgres" }
func (Postgres) Quote(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}
func (Postgres) Placeholder(n int) string           { return fmt.Sprintf("$%d", n) }
func (Postgres) NullSafeEqual(col, p string) string { return col + " IS NOT DISTINCT FROM " + p }
func (Postgres) AsText(expr string) string          { return "CAST(" + expr + " AS TEXT)" }

func (Postgres) Columns(ctx context.Context, db *sql.DB, table string) ([]string, error) {
	return queryStrings(ctx, db, `SELECT column_name FROM information_schema.columns
WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position`, table)
}

func (Postgres) PrimaryKey(ctx context.Context, db *sql.DB, table string) ([]string, error) {
	return queryStrings(ctx, db, `SELECT a.attname FROM pg_index i
JOIN pg_class c ON c.oid = i.indrelid
JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = current_schema()
JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
WHERE c.relname = $1 AND i.indisprimary ORDER BY array_position(i.indkey, a.attnum)`, table)
}

func (Postgres) ForeignKeys(ctx context.Context, db *sql.DB) ([]ForeignKey, error) {
	rows, err := db.QueryContext(ctx, `SELECT tc.relname, a.attname, rc.relname, ra.attname
FROM pg_constraint c
JOIN pg_class tc ON tc.oid = c.conrelid
JOIN pg_namespace n ON n.oid = tc.relnamespace AND n.nspname = current_schema()
JOIN pg_class rc ON rc.oid = c.confrelid
JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
JOIN pg_attribute ra ON ra.attrelid = c.confrelid AND ra.attnum = c.confkey[1]
WHERE c.contype = 'f' AND cardinality(c.conkey) = 1
ORDER BY 1, 2`)
	if err != nil {
		return nil, err
	}
	return scanForeignKeys(rows)
}

// MySQL is the MySQL and MariaDB dialect; tables are looked up in the connection's database.
type MySQL struct{}

func (MySQL) Kind() string { return "mysql" }
func (MySQL) Quote(s string) string {
	return "`" + strings.ReplaceAll(s, "`", "``") + "`"
}
func (MySQL) Placeholder(int) string             { return "?" }
func (MySQL) NullSafeEqual(col, p string) string { return col + " <=> " + p }
func (MySQL) AsText(expr string) string          { return "CAST(" + expr + " AS CHAR)" }

func (MySQL) Columns(ctx context.Context, db *sql.DB, table string) ([]string, error) {
	return queryStrings(ctx, db, `SELECT COLUMN_NAME FROM information_schema.COLUMNS
WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION`, table)
}

func (MySQL) PrimaryKey(ctx context.Context, db *sql.DB, table string) ([]string, error) {
	return queryStrings(ctx, db, `SELECT COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE
WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND CONSTRAINT_NAME = 'PRIMARY'
ORDER BY ORDINAL_POSITION`, table)
}

func (MySQL) ForeignKeys(ctx context.Context, db *sql.DB) ([]ForeignKey, error) {
	// Composite keys have several rows per constraint; only single-column ones are kept.
	rows, err := db.QueryContext(ctx, `SELECT k.TABLE_NAME, k.COLUMN_NAME, k.REFERENCED_TABLE_NAME, k.REFERENCED_COLUMN_NAME
FROM information_schema.KEY_COLUMN_USAGE k
WHERE k.TABLE_SCHEMA = DATABASE() AND k.REFERENCED_TABLE_NAME IS NOT NULL
AND (SELECT COUNT(*) FROM information_schema.KEY_COLUMN_USAGE k2
     WHERE k2.CONSTRAINT_SCHEMA = k.CONSTRAINT_SCHEMA AND k2.TABLE_NAME = k.TABLE_NAME
     AND k2.CONSTRAINT_NAME = k.CONSTRAINT_NAME) = 1
ORDER BY 1, 2`)
	if err != nil {
		return nil, err
	}
	return scanForeignKeys(rows)
}

func scanForeignKeys(rows *sql.Rows) ([]ForeignKey, error) {
	defer rows.Close()
	var out []ForeignKey
	for rows.Next() {
		var fk ForeignKey
		if err := rows.Scan(&fk.Table, &fk.Column, &fk.RefTable, &fk.RefColumn); err != nil {
			return nil, err
		}
		out = append(out, fk)
	}
	return out, rows.Err()
}

func queryStrings(ctx context.Context, db *sql.DB, q string, args ...any) ([]string, error) {
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}
