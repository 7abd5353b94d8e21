package parse

import (
	"bytes"
	"time"
)

// Liquibase logs a changeset twice in its 4.x versions: `Running Changeset: id` as it starts
// and `ChangeSet id ran successfully in 12ms` when done. The two lines are one migration.
const (
	pairStart uint8 = 1
	pairDone  uint8 = 2
)

// Values of the "stage" field of Liquibase events.
const (
	stageStart = "start"
	stageDone  = "done"
)

func liquibasePair(f map[string]string) uint8 {
	switch f["stage"] {
	case stageStart:
		return pairStart
	case stageDone:
		return pairDone
	}
	return 0
}

// detectFlyway: "Migrating schema `x` to version "2 - add table"" in every Flyway layout
// (Spring Boot, the CLI and Maven plugin with or without quotes around the version), and
// repeatable migrations: `Migrating schema "public" with repeatable migration "views"`.
// msg starts with "Migrating schema ".
func detectFlyway(msg []byte, r *result) {
	rest := msg[len("Migrating schema "):]
	var schema, rev []byte
	if i := bytes.Index(rest, []byte(" to version ")); i >= 0 {
		schema, rev = rest[:i], rest[i+len(" to version "):]
	} else if i := bytes.Index(rest, []byte(" with repeatable migration ")); i >= 0 {
		schema, rev = rest[:i], rest[i+len(" with repeatable migration "):]
		r.set("repeatable", "true")
	} else {
		return
	}
	// Flyway may add ` [non-transactional]` after the version.
	rev = bytes.TrimSuffix(bytes.TrimSpace(rev), []byte(" [non-transactional]"))
	r.event, r.via = MigrationStarted, ViaMigration
	r.set(FieldTool, "flyway")
	r.set(FieldSchema, clip(string(unquoteIdent(schema))))
	r.set(FieldRevision, clip(string(unquoteIdent(rev))))
}

// detectLiquibase: "ChangeSet db/changelog/master.yaml::3::alice ran successfully in 15ms"
// after any prefix (Spring Boot, the 3.5 logger's `liquibase: file: id: ChangeSet ...`, the
// JUL two-line form's `INFO: ChangeSet ...`, Maven's `[INFO] ChangeSet ...`, Dropwizard).
// at is the offset of " ran successfully".
func detectLiquibase(msg []byte, at int, r *result) {
	head := msg[:at]
	s := bytes.LastIndex(head, []byte("ChangeSet "))
	if c := bytes.LastIndex(head, []byte("Changeset ")); c > s {
		s = c
	}
	if s < 0 {
		return
	}
	id := bytes.TrimSpace(head[s+len("ChangeSet "):])
	if len(id) == 0 || bytes.IndexAny(id, " \t") >= 0 {
		return
	}
	setChangeset(id, pairDone, r)
}

// setChangeset fills r with a Liquibase changeset id (`file::id::author`).
func setChangeset(id []byte, pair uint8, r *result) {
	if len(id) == 0 {
		return
	}
	r.event, r.via, r.pair = MigrationStarted, ViaMigration, pair
	r.set(FieldTool, "liquibase")
	r.set(FieldRevision, clip(string(id)))
	if pair == pairStart {
		r.set("stage", stageStart)
	} else {
		r.set("stage", stageDone)
	}
	if a := bytes.LastIndex(id, []byte("::")); a >= 0 {
		r.set(FieldActor, clip(string(id[a+2:])))
	}
}

// detectAlembic: "Running upgrade 3ab8b2dfb055 -> 28af9800143f, add users.last_login" under
// any logging prefix. msg starts with "Running ".
func detectAlembic(msg []byte, r *result) {
	var rest []byte
	down := false
	switch {
	case bytes.HasPrefix(msg, []byte("Running upgrade ")):
		rest = msg[len("Running upgrade "):]
	case bytes.HasPrefix(msg, []byte("Running downgrade ")):
		rest = msg[len("Running downgrade "):]
		down = true
	default:
		return
	}
	a := bytes.Index(rest, []byte("-> "))
	if a < 0 {
		return
	}
	r.event, r.via = MigrationStarted, ViaMigration
	r.set(FieldTool, "alembic")
	if down {
		r.set("direction", "downgrade")
	}
	to := rest[a+3:]
	if c := bytes.IndexByte(to, ','); c >= 0 {
		r.set("description", clip(string(bytes.TrimSpace(to[c+1:]))))
		to = to[:c]
	}
	r.set(FieldRevision, clip(string(bytes.TrimSpace(to))))
	if from := bytes.TrimSpace(rest[:a]); len(from) > 0 {
		r.set("from_revision", clip(string(from)))
	}
}

func unquoteIdent(b []byte) []byte {
	b = bytes.TrimSpace(b)
	return bytes.Trim(b, "`\"'")
}

// julTime reads the header line of java.util.logging's SimpleFormatter, which carries the
// time of the message on the next line (Liquibase's JUL two-line form):
// `Dec 05, 2026 3:46:28 PM liquibase.changelog.ChangeSet execute`.
func julTime(line []byte, loc *time.Location) (time.Time, bool) {
	if len(line) < 22 || line[3] != ' ' || line[6] != ',' || line[7] != ' ' {
		return time.Time{}, false
	}
	mo := month(line[:3])
	d, ok1 := digits(line[4:], 2)
	y, ok2 := digits(line[8:], 4)
	if mo == 0 || !ok1 || !ok2 || line[12] != ' ' {
		return time.Time{}, false
	}
	b := line[13:]
	hl := 1
	if len(b) > 1 && isDigit(b[1]) {
		hl = 2
	}
	h, ok := digits(b, hl)
	if !ok || len(b) < hl+9 || b[hl] != ':' || b[hl+3] != ':' || b[hl+6] != ' ' {
		return time.Time{}, false
	}
	mi, ok1 := digits(b[hl+1:], 2)
	s, ok2 := digits(b[hl+4:], 2)
	ampm := b[hl+7 : hl+9]
	if !ok1 || !ok2 || h < 1 || h > 12 {
		return time.Time{}, false
	}
	switch string(ampm) {
	case "AM":
		if h == 12 {
			h = 0
		}
	case "PM":
		if h != 12 {
			h += 12
		}
	default:
		return time.Time{}, false
	}
	if !validClock(mo, d, h, mi, s) {
		return time.Time{}, false
	}
	return makeTime(y, mo, d, h, mi, s, 0, false, 0, loc), true
}
