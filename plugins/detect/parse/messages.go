package parse

import "bytes"

// detectMessage recognises the framework messages that are detection events by key phrases
// anywhere in msg, so the logging prefix before them does not matter (Python's basicConfig
// `INFO:logger:`, `ts - logger - LEVEL -`, logback and log4j patterns, a JUL or Maven
// `[INFO]` prefix, Dropwizard's `LEVEL [ts] logger:`). prefix holds what comes before the
// message (where a logger is named), for the SQL-logger hint; hibernate says the line is
// show_sql output (`Hibernate: ...`).
//
// Every phrase starts with one of five upper-case letters (`Authentication event`,
// `AuditEvent [`, `Migrating schema`, `ChangeSet`/`Changeset ... ran successfully`, `Running`,
// `DELETE`), found with bytes.IndexByte and checked where they stand, so a line that is no
// event costs five vectorised byte searches and no allocation. A lower-case `delete` is SQL
// only on a line naming an SQL-echo logger.
func detectMessage(prefix, msg []byte, hibernate bool, r *result) {
	// A hostile line full of phrase starts costs at most maxPhraseTries checks, each of at
	// most phraseWindow bytes.
	tries := 0
	for _, a := range phraseAnchors {
		for off := 0; off < len(msg) && tries < maxPhraseTries; {
			i := bytes.IndexByte(msg[off:], a)
			if i < 0 {
				break
			}
			i += off
			off = i + 1
			rest := msg[i:]
			if len(rest) > phraseWindow {
				rest = rest[:phraseWindow]
			}
			if phraseAt(rest, hibernate, prefix, msg, r) {
				tries++
			}
			if r.event != "" {
				return
			}
		}
	}
	// A lower-case statement (Hibernate's): only on a line naming an SQL-echo logger, which may
	// be named before the message (`... org.hibernate.SQL : delete ...`) or in it.
	if bytes.Index(msg, []byte("delete")) < 0 {
		return
	}
	if hibernate || sqlHint(prefix) || sqlHint(msg) {
		detectSQLDelete(msg, true, r)
	}
}

// prefixOf returns what comes before msg in line when msg is line's tail (as the header scan
// gives it), else the whole line: where a logger may be named.
func prefixOf(line, msg []byte) []byte {
	n := len(line) - len(msg)
	if len(msg) > 0 && n >= 0 && &line[n] == &msg[0] {
		return line[:n]
	}
	return line
}

// phraseWindow bounds the text a phrase's detector reads after the phrase's start; statements,
// changeset ids and security details fit in it.
const phraseWindow = 4096

// maxPhraseTries bounds the phrase starts checked in one line.
const maxPhraseTries = 8

// phraseAnchors are the first letters of the key phrases.
var phraseAnchors = [...]byte{'A', 'M', 'R', 'C', 'D'}

// phraseAt checks the key phrase that may start rest (at an anchor letter) and reports
// whether one did. msg is the whole message, for the SQL-logger hint.
func phraseAt(rest []byte, hibernate bool, prefix, msg []byte, r *result) bool {
	switch rest[0] {
	case 'A':
		if bytes.HasPrefix(rest, []byte("Authentication event AuthenticationFailure")) {
			detectSpringSecurity(rest, r)
			return true
		}
		if bytes.HasPrefix(rest, []byte("AuditEvent [")) {
			detectAuditEvent(rest, r)
			return true
		}
	case 'M':
		if bytes.HasPrefix(rest, []byte("Migrating schema ")) {
			detectFlyway(rest, r)
			return true
		}
	case 'C':
		if bytes.HasPrefix(rest, []byte("ChangeSet ")) || bytes.HasPrefix(rest, []byte("Changeset ")) {
			if at := bytes.Index(rest, []byte(" ran successfully")); at >= 0 {
				detectLiquibase(rest, at, r)
			}
			return true
		}
	case 'R':
		if bytes.HasPrefix(rest, []byte("Running ")) {
			detectRunning(rest, r)
			return true
		}
		if bytes.HasPrefix(rest, []byte("Rolling Back Changeset: ")) {
			setChangeset(changesetID(rest[len("Rolling Back Changeset: "):]), pairStart, r)
			if r.event != "" {
				r.set("direction", "rollback")
			}
			return true
		}
	case 'D':
		if bytes.HasPrefix(rest, []byte("DELETE ")) || bytes.HasPrefix(rest, []byte("Delete ")) {
			detectSQLDelete(rest, hibernate || sqlHint(prefix) || sqlHint(msg), r)
			return true
		}
	}
	return false
}

// detectRunning: Alembic's `Running upgrade a -> b, msg` / `Running downgrade ...` and
// Liquibase 4's `Running Changeset: db/changelog.xml::1::bob`. (Liquibase's rollback,
// `Rolling Back Changeset: ...`, is read in phraseAt.)
func detectRunning(msg []byte, r *result) {
	rest := msg[len("Running "):]
	switch {
	case bytes.HasPrefix(rest, []byte("upgrade ")), bytes.HasPrefix(rest, []byte("downgrade ")):
		detectAlembic(msg, r)
	case bytes.HasPrefix(rest, []byte("Changeset: ")), bytes.HasPrefix(rest, []byte("changeset: ")):
		setChangeset(changesetID(rest[len("Changeset: "):]), pairStart, r)
	}
}

// changesetID is the first word of b: `db/changelog.xml::1::bob`.
func changesetID(b []byte) []byte {
	id := bytes.TrimSpace(b)
	if e := bytes.IndexAny(id, " \t"); e >= 0 {
		id = id[:e]
	}
	return id
}
