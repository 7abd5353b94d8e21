package parse

import (
	"fmt"

	"github.com/tda-dev/tda/sdk"
)

// LastIgnored returns why the last Apply recognised an event but did not emit it: the table
// policy excluded the deleted table, the origin reports that event type through audit lines,
// or the line repeats a statement or changeset the line before it already reported. It is ""
// when the last Apply emitted an event or recognised none.
func (p *Parser) LastIgnored() string { return p.ignored }

// suppress decides whether a recognised event is emitted; it returns the reason when not. It
// also keeps the origin's memory of what was reported (audit-speaking types, the last SQL
// delete and migration) up to date.
func (p *Parser) suppress(st *originState, r *result) string {
	// An origin whose app reports an event type through audit lines has it counted once:
	// framework lines (access lines, SQL echo, Spring Security) for that type are ignored.
	if bit := supersedeBit(r.event); bit != 0 {
		switch r.via {
		case ViaAudit:
			st.audit |= bit
		case ViaHTTP, ViaSQL, ViaSecurity:
			if st.audit&bit != 0 && (r.event != RowsDeleted || containsUser(r.get(FieldTable))) {
				return fmt.Sprintf("superseded: this origin reports %s through audit lines, which count it instead", r.event)
			}
		}
	}
	switch {
	case r.event == RowsDeleted && r.via == ViaSQL:
		// One execution logged by two channels (Hibernate's show_sql and org.hibernate.SQL;
		// SQLAlchemy's echo handler and the app's own) comes as two consecutive lines of
		// different formats. Two executions logged by one channel, even back to back from two
		// threads, have the same format and both count.
		key := tableKey(r.get(FieldTable), r.get(FieldSchema))
		sq := &st.sql
		if sq.last == key && sq.lastFormat != "" && sq.lastFormat != r.format {
			sq.last, sq.lastFormat = "", ""
			return fmt.Sprintf("duplicate: the same DELETE from %q was logged just before in another format (two loggers of one statement, such as show_sql and org.hibernate.SQL)", key)
		}
		sq.last, sq.lastFormat = key, r.format
		if why := p.tables.Ignores(r.get(FieldTable), r.get(FieldSchema)); why != "" {
			return why
		}
	case r.event == MigrationStarted && r.via == ViaMigration && r.pair != 0:
		rev := r.get(FieldRevision)
		if st.migLast == rev && st.migPair != 0 && st.migPair != r.pair {
			st.migLast, st.migPair = "", 0
			return fmt.Sprintf("duplicate: changeset %q was reported by the line before (Running Changeset / ran successfully)", rev)
		}
		st.migLast, st.migPair = rev, r.pair
	}
	return ""
}

func containsUser(table string) bool {
	for i := 0; i+4 <= len(table); i++ {
		if table[i:i+4] == "user" {
			return true
		}
	}
	return false
}

// sawParsed keeps an origin's memory in step with a line an upstream processor already
// parsed, so that this parser, seeing the lines the other did not emit, decides alike.
func (p *Parser) sawParsed(st *originState, ev *sdk.Event) {
	f := ev.Fields
	switch {
	case f[FieldEvent] == RowsDeleted && f[FieldVia] == ViaSQL:
		st.sql.last, st.sql.lastFormat = tableKey(f[FieldTable], f[FieldSchema]), f[FieldFormat]
		if st.sql.phase == sqlReading {
			st.sql.phase, st.sql.buf = sqlTail, st.sql.buf[:0]
		}
	default:
		st.sql.phase, st.sql.last, st.sql.lastFormat = sqlIdle, "", ""
	}
	if f[FieldEvent] == MigrationStarted && f[FieldVia] == ViaMigration && f[FieldTool] == "liquibase" {
		st.migLast, st.migPair = f[FieldRevision], liquibasePair(f)
	}
	if bit := supersedeBit(f[FieldEvent]); bit != 0 && f[FieldVia] == ViaAudit {
		st.audit |= bit
	}
}
