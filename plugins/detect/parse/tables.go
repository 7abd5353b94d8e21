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
	// include and exclude are the patterns compiled (see glob); nil until NewTablePolicy.
	include, exclude []glob
}

// DefaultTablePolicy is the policy of a parser configured without one.
func DefaultTablePolicy() *TablePolicy {
	p, err := NewTablePolicy(nil, nil)
	if err != nil {
		panic(err) // the defaults are valid globs
	}
	return p
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
	p.include, p.exclude = compileGlobs(p.Include), compileGlobs(p.Exclude)
	return p, nil
}

// glob is a compiled pattern: the common shapes (`x`, `x*`, `*x`, `*x*`, `*`) are string
// tests; any other goes to path.Match.
type glob struct {
	pat, lit string
	kind     uint8
}

const (
	globMatch uint8 = iota
	globExact
	globPrefix
	globSuffix
	globContains
	globAll
)

func compileGlobs(pats []string) []glob {
	out := make([]glob, 0, len(pats))
	for _, pat := range pats {
		g := glob{pat: pat, kind: globMatch}
		inner := strings.Trim(pat, "*")
		if !strings.ContainsAny(inner, "*?[\\") {
			lead, trail := strings.HasPrefix(pat, "*"), strings.HasSuffix(pat, "*")
			switch {
			case inner == "" && pat != "":
				g.kind = globAll
			case lead && trail:
				g.kind, g.lit = globContains, inner
			case lead:
				g.kind, g.lit = globSuffix, inner
			case trail:
				g.kind, g.lit = globPrefix, inner
			default:
				g.kind, g.lit = globExact, inner
			}
		}
		out = append(out, g)
	}
	return out
}

func (g glob) match(name string) bool {
	switch g.kind {
	case globAll:
		return true
	case globExact:
		return name == g.lit
	case globPrefix:
		return strings.HasPrefix(name, g.lit)
	case globSuffix:
		return strings.HasSuffix(name, g.lit)
	case globContains:
		return strings.Contains(name, g.lit)
	}
	ok, _ := path.Match(g.pat, name)
	return ok
}

// Ignores returns why a delete from table (lower case; schema may be "") does not count, or
// "" when it does.
func (p *TablePolicy) Ignores(table, schema string) string {
	if p == nil {
		return ""
	}
	if p.include == nil && p.exclude == nil {
		p.include, p.exclude = compileGlobs(p.Include), compileGlobs(p.Exclude)
	}
	if pat, ok := matchTable(p.exclude, table, schema); ok {
		return fmt.Sprintf("table policy: %q matches exclude %q", tableKey(table, schema), pat)
	}
	if _, ok := matchTable(p.include, table, schema); !ok {
		return fmt.Sprintf("table policy: %q matches no include pattern", tableKey(table, schema))
	}
	return ""
}

func matchTable(globs []glob, table, schema string) (string, bool) {
	for _, g := range globs {
		if g.match(table) || schema != "" && g.match(schema+"."+table) {
			return g.pat, true
		}
	}
	return "", false
}
