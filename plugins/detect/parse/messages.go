package parse

import "bytes"

// detectMessage recognises the framework messages that are detection events by key phrases
// anywhere in msg, so the logging prefix before them does not matter (Python's basicConfig
// `INFO:logger:`, `ts - logger - LEVEL -`, logback and log4j patterns, a JUL or Maven
// `[INFO]` prefix, Dropwizard's `LEVEL [ts] logger:`). Each phrase is found with one
// bytes.Index, so a line that is no event costs a few short searches and no allocation.
// hibernate says the line is show_sql output (`Hibernate: ...`).
func detectMessage(line, msg []byte, hibernate bool, r *result) {
	if i := bytes.Index(msg, []byte("Authentication event AuthenticationFailure")); i >= 0 {
		detectSpringSecurity(msg[i:], r)
		return
	}
	if i := bytes.Index(msg, []byte("AuditEvent [")); i >= 0 {
		detectAuditEvent(msg[i:], r)
		if r.event != "" {
			return
		}
	}
	if i := bytes.Index(msg, []byte("Migrating schema ")); i >= 0 {
		detectFlyway(msg[i:], r)
		if r.event != "" {
			return
		}
	}
	if i := bytes.Index(msg, []byte(" ran successfully")); i >= 0 {
		detectLiquibase(msg, i, r)
		if r.event != "" {
			return
		}
	}
	if i := bytes.Index(msg, []byte("Running ")); i >= 0 {
		detectRunning(msg[i:], r)
		if r.event != "" {
			return
		}
	}
	if findDelete(msg) >= 0 {
		detectSQLDelete(msg, hibernate || sqlHint(line), r)
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
