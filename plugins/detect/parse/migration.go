package parse

import (
	"bytes"
)

// detectFlyway: "Migrating schema `x` to version "2 - add table"" (also Flyway's CLI).
func detectFlyway(msg []byte, r *result) {
	rest := msg[len("Migrating schema "):]
	i := bytes.Index(rest, []byte(" to version "))
	if i < 0 {
		return
	}
	r.event, r.via = MigrationStarted, ViaMigration
	r.set(FieldTool, "flyway")
	r.set("schema", clip(string(unquoteIdent(rest[:i]))))
	rev := rest[i+len(" to version "):]
	r.set(FieldRevision, clip(string(unquoteIdent(rev))))
}

// detectLiquibase: "ChangeSet db/changelog/master.yaml::3::alice ran successfully in 15ms".
func detectLiquibase(msg []byte, r *result) {
	rest := msg[len("ChangeSet "):]
	e := bytes.Index(rest, []byte(" ran successfully"))
	if e < 0 {
		return
	}
	id := rest[:e]
	r.event, r.via = MigrationStarted, ViaMigration
	r.set(FieldTool, "liquibase")
	r.set(FieldRevision, clip(string(id)))
	if a := bytes.LastIndex(id, []byte("::")); a >= 0 {
		r.set(FieldActor, clip(string(id[a+2:])))
	}
}

// detectAlembic: "Running upgrade 3ab8b2dfb055 -> 28af9800143f, add users.last_login".
func detectAlembic(msg []byte, r *result) {
	var rest []byte
	switch {
	case bytes.HasPrefix(msg, []byte("Running upgrade ")):
		rest = msg[len("Running upgrade "):]
	case bytes.HasPrefix(msg, []byte("Running downgrade ")):
		rest = msg[len("Running downgrade "):]
		r.set("direction", "downgrade")
	default:
		return
	}
	r.event, r.via = MigrationStarted, ViaMigration
	r.set(FieldTool, "alembic")
	if a := bytes.Index(rest, []byte("-> ")); a >= 0 {
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
}
