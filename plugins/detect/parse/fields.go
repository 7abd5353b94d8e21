// Package parse turns raw log lines into typed detection events. It recognises the formats of
// Flask and Spring applications out of the box (Werkzeug and gunicorn access lines, the Flask
// app logger, Spring Boot 2 and 3, Alembic, Flyway, Liquibase, Spring Security's LoggerListener
// and Actuator audit events, Hibernate and SQLAlchemy SQL echo, Spring Boot's structured JSON,
// JSON lines, logfmt and the `event key=value` audit-line contract; framework messages under
// any logging prefix) and runs user regex parsers declared in HCL. Which tables' SQL deletes
// count is a TablePolicy; LastIgnored says why a recognised line was not emitted.
//
// A parsed line keeps its raw bytes; the parser sets Event.Time to the line's own time and,
// when the line is a detection event, Event.Fields to the event type and what the line says
// about it. Lines that are not detection events get no fields at all, so the common case costs
// no allocation and nothing on the wire between processors.
package parse

// Field names set on parsed events. They are the vocabulary of rule conditions (`unless`,
// `where`, `group_by`).
const (
	// FieldEvent holds the event type (one of the Event constants or a type named by a user
	// parser). Its presence marks a line as parsed: later processors reuse the fields and
	// Event.Time instead of parsing again.
	FieldEvent = "event"
	// FieldVia says what kind of evidence produced the event: "audit" (the app's own audit
	// line, also as JSON or logfmt), "http" (an access line), "sql" (SQL echo), "security"
	// (Spring Security), "migration" (Alembic, Flyway, Liquibase) or "regex" (a user parser).
	FieldVia = "via"
	// FieldFormat names the line format that was recognised (werkzeug, gunicorn, flask, spring,
	// python, alembic, hibernate, json, logfmt, plain) or the user parser's name.
	FieldFormat    = "format"
	FieldActor     = "actor"
	FieldActorRole = "actor_role"
	FieldIP        = "ip"
	FieldUserID    = "user_id"
	FieldUsername  = "username"
	FieldRevision  = "revision"
	FieldReason    = "reason"
	FieldTTL       = "ttl"
	FieldMethod    = "method"
	FieldPath      = "path"
	FieldStatus    = "status"
	FieldTable     = "table"
	FieldLevel     = "level"
	FieldLogger    = "logger"
	FieldTool      = "tool"
	FieldSchema    = "schema"
)

// Event types the built-in parsers yield.
const (
	PasswordChanged  = "password_changed"
	UserCreated      = "user_created"
	UserDeleted      = "user_deleted"
	LoginFailed      = "login_failed"
	MigrationStarted = "migration_started"
	OverrideEnabled  = "override_enabled"
	OverrideDisabled = "override_disabled"
	// RowsDeleted is a DELETE statement seen in SQL echo (Hibernate, SQLAlchemy); the table
	// is in FieldTable.
	RowsDeleted = "rows_deleted"
)

// Values of FieldVia.
const (
	ViaAudit     = "audit"
	ViaHTTP      = "http"
	ViaSQL       = "sql"
	ViaSecurity  = "security"
	ViaMigration = "migration"
	ViaRegex     = "regex"
)

// AuditEvents are the event words of the audit-line contract, recognised as the first word of
// a log message (`password_changed user_id=42 actor=alice ...`), as `event=...` in logfmt and
// as "event" in JSON lines.
var AuditEvents = []string{PasswordChanged, UserCreated, UserDeleted, LoginFailed,
	MigrationStarted, OverrideEnabled, OverrideDisabled}

// supersedeBit maps the event types that both an audit line and framework lines can report to
// a bit in an origin's "speaks audit" mask.
func supersedeBit(event string) uint8 {
	switch event {
	case PasswordChanged:
		return 1
	case UserCreated:
		return 2
	case UserDeleted, RowsDeleted:
		return 4
	case LoginFailed:
		return 8
	}
	return 0
}
