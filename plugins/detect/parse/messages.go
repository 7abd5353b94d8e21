package parse

import "bytes"

// detectMessage recognises the framework messages that are detection events by key phrases
// anywhere in msg, so the logging prefix before them does not matter (Python's basicConfig
// `INFO:logger:`, `ts - logger - LEVEL -`, logback and log4j patterns, a JUL or Maven
// `[INFO]` prefix, Dropwizard's `LEVEL [ts] logger:`). prefix holds what comes before the
// message (where a logger is named), for the SQL-logger hint; hibernate says the line is
// show_sql output (`Hibernate: ...`).
//
// Every phrase starts with an upper-case letter (`Authentication event`, `AuditEvent [`,
// `Migrating schema`, `ChangeSet`/`Changeset ... ran successfully`, `Running`, `DELETE`), so
// one pass looks only at upper-case bytes: a line that is no event costs that pass and no
// allocation. A lower-case `delete` is SQL only on a line naming an SQL-echo logger.
func detectMessage(prefix, msg []byte, hibernate bool, r *result) {
	hint := hibernate
	for i := 0; i < len(msg); i++ {
		c := msg[i]
		if c < 'A' || c > 'Z' {
			continue
		}
		rest := msg[i:]
		switch c {
		case 'A':
			if bytes.HasPrefix(rest, []byte("Authentication event AuthenticationFailure")) {
				detectSpringSecurity(rest, r)
			} else if bytes.HasPrefix(rest, []byte("AuditEvent [")) {
				detectAuditEvent(rest, r)
			}
		case 'M':
			if bytes.HasPrefix(rest, []byte("Migrating schema ")) {
				detectFlyway(rest, r)
			}
		case 'C':
			if bytes.HasPrefix(rest, []byte("ChangeSet ")) || bytes.HasPrefix(rest, []byte("Changeset ")) {
				if at := bytes.Index(rest, []byte(" ran successfully")); at >= 0 {
					detectLiquibase(msg, i+at, r)
				}
			}
		case 'R':
			if bytes.HasPrefix(rest, []byte("Running ")) {
				detectRunning(rest, r)
			}
		case 'D':
			if bytes.HasPrefix(rest, []byte("DELETE ")) || bytes.HasPrefix(rest, []byte("Delete ")) {
				detectSQLDelete(msg, hint || sqlHint(prefix), r)
			}
		case 'H':
			hint = hint || bytes.HasPrefix(rest, []byte("Hibernate"))
		case 'S':
			hint = hint || bytes.HasPrefix(rest, []byte("SQL")) && (bytes.HasSuffix(msg[:i], []byte("hibernate.")) || bytes.HasSuffix(msg[:i], []byte("o.h.")))
		}
		if r.event != "" {
			return
		}
	}
	// A lower-case statement (Hibernate's): only on a line naming an SQL-echo logger, which may
	// be named before the message (`... org.hibernate.SQL : delete ...`).
	if bytes.Index(msg, []byte("delete")) < 0 {
		return
	}
	if !hint {
		hint = sqlHint(prefix)
	}
	if hint {
		detectSQLDelete(msg, true, r)
	}
}

// detectRunning: Alembic's `Running upgrade a -> b, msg` / `Running downgrade ...` and
// Liquibase 4's `Running Changeset: db/changelog.xml::1::bob`.
func detectRunning(msg []byte, r *result) {
	rest := msg[len("Running "):]
	switch {
	case bytes.HasPrefix(rest, []byte("upgrade ")), bytes.HasPrefix(rest, []byte("downgrade ")):
		detectAlembic(msg, r)
	case bytes.HasPrefix(rest, []byte("Changeset: ")), bytes.HasPrefix(rest, []byte("changeset: ")):
		id := bytes.TrimSpace(rest[len("Changeset: "):])
		if e := bytes.IndexAny(id, " \t"); e >= 0 {
			id = id[:e]
		}
		setChangeset(id, pairStart, r)
	}
}
