package parse

import "bytes"

// maxPendingSQL bounds the text kept of a multi-line statement while it is read: the DELETE
// keyword, an alias, FROM and a (qualified) table name fit in it; a statement whose table
// does not is given up.
const maxPendingSQL = 192

// Phases of a multi-line statement.
const (
	sqlIdle    uint8 = iota
	sqlReading       // a header was seen; the statement's indented lines follow
	sqlTail          // decided (reported or not a DELETE): its remaining lines are skipped
)

// sqlState is an origin's SQL-echo state: the multi-line statement being read (Hibernate's
// format_sql puts the statement on the lines after `Hibernate:` or after an empty
// org.hibernate.SQL message) and the last statement reported, to count once a statement
// that show_sql and the org.hibernate.SQL logger both logged. Its size is bounded:
// buf never grows beyond maxPendingSQL and the strings are clipped.
type sqlState struct {
	phase   uint8
	channel uint8  // of the statement being read
	format  string // the header line's format (a constant)
	logger  string // the header line's logger and level, clipped
	level   string
	buf     []byte // the statement so far, whitespace-normalised

	// last is the table of the last DELETE reported (schema.table), lastFormat the format
	// of its line; "" once a line that is neither part of a statement nor an SQL delete came
	// between.
	last       string
	lastFormat string
}

// isContinuation: a statement line of format_sql output is indented.
func isContinuation(line []byte) bool {
	return len(line) > 0 && (line[0] == ' ' || line[0] == '\t')
}

// sqlHeader recognises the line a multi-line statement hangs from, a line whose message is
// empty: `Hibernate:` alone (show_sql with format_sql), a line ending with the
// org.hibernate.SQL logger's name (`... DEBUG 1 --- [main] org.hibernate.SQL : `,
// `... o.h.SQL - `), or SQLAlchemy's engine logger logging a statement that starts with a
// newline (`2025-08-27 14:20:20,530 INFO sqlalchemy.engine.Engine`, `INFO:sqlalchemy.engine.
// Engine:`, `... - sqlalchemy.engine.Engine - base -`, Flask's `[ts] INFO in base:`).
func sqlHeader(line []byte) (channel uint8, ok bool) {
	e := len(line)
	for e > 0 && (line[e-1] == ' ' || line[e-1] == '\t' || line[e-1] == '\r') {
		e--
	}
	if e == 0 {
		return 0, false
	}
	t := line[:e]
	switch t[e-1] {
	case ':':
		if string(t) == "Hibernate:" {
			return sqlStdout, true
		}
	case '-', 'L', 'e':
	default:
		return 0, false
	}
	t = bytes.TrimRight(t, " \t:-")
	switch {
	case bytes.HasSuffix(t, []byte("hibernate.SQL")), bytes.HasSuffix(t, []byte("o.h.SQL")),
		bytes.HasSuffix(t, []byte("] INFO in base")):
		return sqlLogger, true
	}
	// SQLAlchemy's logger name, followed at most by a level or module name.
	if i := bytes.LastIndex(t, []byte("sqlalchemy.engine")); i >= 0 && len(t)-i <= 48 &&
		bytes.Count(t[i:], []byte(" ")) <= 3 {
		return sqlLogger, true
	}
	return 0, false
}

// start begins reading a multi-line statement.
func (s *sqlState) start(channel uint8, format string, logger, level []byte) {
	if channel == sqlStdout {
		format = FormatHibernate
	}
	s.phase, s.channel, s.format = sqlReading, channel, format
	s.logger, s.level = clip(string(logger)), clip(string(level))
	s.buf = s.buf[:0]
}

// feed takes one indented line of the statement being read; when the line completes a
// DELETE's table name, r gets the event.
func (s *sqlState) feed(line []byte, r *result) {
	if s.phase != sqlReading {
		return
	}
	t := bytes.TrimSpace(line)
	if len(s.buf) == 0 && bytes.HasPrefix(t, []byte("/*")) {
		// use_sql_comments: `/* delete com.example.User */ delete` opens the statement.
		if e := bytes.Index(t, []byte("*/")); e >= 0 {
			t = bytes.TrimSpace(t[e+2:])
		}
	}
	if len(t) == 0 {
		return
	}
	if len(s.buf)+len(t)+1 > maxPendingSQL {
		s.phase, s.buf = sqlTail, s.buf[:0]
		return
	}
	s.buf = append(append(s.buf, t...), ' ')
	if len(s.buf) < 7 || !bytes.EqualFold(s.buf[:6], []byte("delete")) || isIdentByte(s.buf[6]) {
		s.phase, s.buf = sqlTail, s.buf[:0]
		return
	}
	st, complete, ok := parseDelete(s.buf, 0, false)
	if !ok {
		s.phase, s.buf = sqlTail, s.buf[:0]
		return
	}
	if !complete {
		return
	}
	s.phase, s.buf = sqlTail, s.buf[:0]
	setDelete(r, st)
	r.format = s.format
	if s.level != "" {
		r.set(FieldLevel, s.level)
	}
	if s.logger != "" {
		r.set(FieldLogger, s.logger)
	}
}

// tableKey names a deleted table with its schema.
func tableKey(table, schema string) string {
	if schema == "" {
		return table
	}
	return schema + "." + table
}
