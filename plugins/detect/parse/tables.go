package parse

import (
	"fmt"
	"path"
	"strings"
)

// DefaultTableExclude are the tables whose SQL deletes are routine housekeeping, not data
// loss: sessions (Flask-Session, Spring Session, Django), tokens (refresh tokens deleted at
// logout, password-reset and remember-me tokens), caches, task-queue results (Celery, the
// Kombu SQL transport, Quartz), migration bookkeeping and locks.
var DefaultTableExclude = []string{
	"*session*", "*token*", "*cache*", "spring_session*", "persistent_logins",
	"oauth2_authorization*", "celery_*", "kombu_*", "qrtz_*", "shedlock",
	"alembic_version", "databasechangeloglock",
}

// DefaultTableInclude counts deletes from every other table.
var DefaultTableInclude = []string{"*"}

// TablePolicy decides which tables' SQL deletes become rows_deleted events: a table counts
// when its name matches an Include pattern and no Exclude pattern. Patterns are globs (`*`,
// `?`, `[a-z]`) matched case-insensitively against the bare table name and against
// schema.table.
type TablePolicy struct {
	Include []string
	Exclude []string
}

// DefaultTablePolicy is the policy of a parser configured without one.
func DefaultTablePolicy() *TablePolicy {
	return &TablePolicy{Include: DefaultTableInclude, Exclude: DefaultTableExclude}
}

// NewTablePolicy checks the patterns (lower-casing them). Nil lists take the defaults.
func NewTablePolicy(include, exclude []string) (*TablePolicy, error) {
	if include == nil {
		include = DefaultTableInclude
	}
	if exclude == nil {
		exclude = DefaultTableExclude
	}
	p := &TablePolicy{}
	for _, l := range []struct {
		in  []string
		out *[]string
	}{{include, &p.Include}, {exclude, &p.Exclude}} {
		for _, pat := range l.in {
			pat = strings.ToLower(strings.TrimSpace(pat))
			if pat == "" {
				return nil, fmt.Errorf("an empty table pattern matches nothing: remove it, or write \"*\" for every table")
			}
			if _, err := path.Match(pat, ""); err != nil {
				return nil, fmt.Errorf("table pattern %q is not a valid glob (use *, ? and [a-z]): %v", pat, err)
			}
			*l.out = append(*l.out, pat)
		}
	}
	return p, nil
}

// Ignores returns why a delete from table (lower case; schema may be "") does not count, or
// "" when it does.
func (p *TablePolicy) Ignores(table, schema string) string {
	if p == nil {
		return ""
	}
	if pat, ok := matchTable(p.Exclude, table, schema); ok {
		return fmt.Sprintf("table policy: %q matches exclude %q", tableKey(table, schema), pat)
	}
	if _, ok := matchTable(p.Include, table, schema); !ok {
		return fmt.Sprintf("table policy: %q matches no include pattern", tableKey(table, schema))
	}
	return ""
}

func matchTable(pats []string, table, schema string) (string, bool) {
	for _, pat := range pats {
		if ok, _ := path.Match(pat, table); ok {
			return pat, true
		}
		if schema != "" {
			if ok, _ := path.Match(pat, schema+"."+table); ok {
				return pat, true
			}
		}
	}
	return "", false
}
