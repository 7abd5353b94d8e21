package parse

import (
	"bytes"
	"strings"
)

// SQL echo: DELETE statements that ORMs log (SQLAlchemy's engine logger under any logging
// prefix, Hibernate's show_sql and org.hibernate.SQL), on one line or over several
// (Hibernate's format_sql, SQLAlchemy statements starting with a newline; see sqlstate.go).

// SQL channels: where a multi-line statement hangs from, show_sql (stdout, format
// "hibernate") or a logger (org.hibernate.SQL, sqlalchemy.engine).
const (
	sqlLogger uint8 = 1
	sqlStdout uint8 = 2
)

// sqlHint reports whether the line names an SQL-echo logger (or carries MyBatis's statement
// marker), so that a lower-case or aliased
// `delete ...` is read as a statement and not as prose. A cheap check, run only on lines that
// contain "delete".
func sqlHint(line []byte) bool {
	return bytes.Contains(line, []byte("sqlalchemy")) || bytes.Contains(line, []byte("ibernate")) ||
		bytes.Contains(line, []byte("o.h.SQL")) || bytes.Contains(line, []byte(" in base: ")) ||
		bytes.Contains(line, []byte("==>  Preparing: ")) // MyBatis
}

// findDelete returns the offset of the first `delete` (any case) in msg that starts a word,
// or -1.
func findDelete(msg []byte) int {
	off := 0
	for off+6 <= len(msg) {
		i := indexLetters(msg[off:], "elete", "ELETE")
		if i < 0 {
			return -1
		}
		s := off + i - 1
		off += i + 5
		if s < 0 || (msg[s]|0x20) != 'd' {
			continue
		}
		if s > 0 && isIdentByte(msg[s-1]) {
			continue
		}
		if off < len(msg) && isIdentByte(msg[off]) {
			continue
		}
		return s
	}
	return -1
}

// indexLetters finds word (lower-case letters) in b written in lower case or upper, as lower
// and upper (the same word upper-cased) give it.
func indexLetters(b []byte, lower, upper string) int {
	i := bytes.Index(b, []byte(lower))
	j := bytes.Index(b, []byte(upper))
	switch {
	case i < 0:
		return j
	case j < 0 || i < j:
		return i
	}
	return j
}

func isIdentByte(c byte) bool {
	return c == '_' || c == '$' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || isDigit(c)
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipSpace(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

// wordEnd returns the end of the identifier-ish token at b[i:] (letters, digits, _ and $).
func wordEnd(b []byte, i int) int {
	for i < len(b) && isIdentByte(b[i]) {
		i++
	}
	return i
}

// tableName reads a possibly schema-qualified, possibly quoted table name at b[i:]
// (`users`, `public.users`, `"public"."users"`, "`shop`.`users`", `[dbo].[users]`). It returns
// the lower-cased table and schema and the offset after the name; ok is false when there is
// no name.
func tableName(b []byte, i int) (table, schema string, end int, ok bool) {
	var parts [3]string
	n := 0
	// At most catalog.schema.table and one more: a longer dotted run is not a name, and
	// its parts are not lowered one by one.
	for k := 0; ; k++ {
		if i >= len(b) {
			break
		}
		if k == 4 {
			return "", "", i, false
		}
		var part []byte
		switch c := b[i]; c {
		case '"', '`', '[':
			cl := c
			if c == '[' {
				cl = ']'
			}
			e := bytes.IndexByte(b[i+1:], cl)
			if e < 0 {
				return "", "", i, false
			}
			part = b[i+1 : i+1+e]
			i += e + 2
		default:
			e := wordEnd(b, i)
			if e == i {
				return "", "", i, false
			}
			part = b[i:e]
			i = e
		}
		if n == len(parts) {
			copy(parts[:], parts[1:])
			n--
		}
		if len(part) > maxFieldLen {
			part = part[:maxFieldLen]
		}
		parts[n] = strings.ToLower(string(part))
		n++
		if i < len(b) && b[i] == '.' {
			i++
			continue
		}
		break
	}
	if n == 0 || parts[n-1] == "" {
		return "", "", i, false
	}
	table = clip(parts[n-1]) // ToLower may lengthen some runes
	if n >= 2 {
		schema = clip(parts[n-2])
	}
	return table, schema, i, true
}

// isSQLKeyword: words that cannot be a table alias.
func isSQLKeyword(w []byte) bool {
	switch strings.ToLower(string(w)) {
	case "where", "using", "returning", "order", "limit", "from", "as", "output", "with", "join", "inner", "left":
		return true
	}
	return false
}

// deleteStmt is what a DELETE statement says about itself.
type deleteStmt struct {
	table, schema string
	unbounded     bool
}

// parseDelete reads `delete [alias] from <table> [alias] [where ...]` at b[s:] (s is the
// offset of "delete"; any case; any whitespace, newlines included). final says b holds the
// whole statement; otherwise (a multi-line statement still being read) the end of b ends
// nothing, and complete is false until the table name is followed by another byte. ok is
// false when the text is not a DELETE statement. unbounded (no WHERE) is only known when
// final.
func parseDelete(b []byte, s int, final bool) (st deleteStmt, complete, ok bool) {
	i := s + len("delete")
	j := skipSpace(b, i)
	if j >= len(b) {
		return st, false, !final
	}
	if j == i {
		return st, true, false
	}
	// `delete from t` or Hibernate 6 on MySQL: `delete p1_0 from products p1_0`.
	e := wordEnd(b, j)
	if e == j {
		return st, true, false
	}
	if !bytes.EqualFold(b[j:e], []byte("from")) {
		if isSQLKeyword(b[j:e]) {
			return st, true, false
		}
		k := skipSpace(b, e)
		if k >= len(b) {
			return st, false, !final
		}
		f := wordEnd(b, k)
		if k == e || !bytes.EqualFold(b[k:f], []byte("from")) {
			return st, true, false
		}
		e = f
	}
	j = skipSpace(b, e)
	if j >= len(b) {
		return st, false, !final
	}
	if j == e {
		return st, true, false
	}
	table, schema, end, ok := tableName(b, j)
	if !ok {
		return st, true, false
	}
	if end == len(b) && !final {
		return st, false, true
	}
	st.table, st.schema = table, schema
	st.unbounded = final && !containsWordFold(b[end:], "where")
	return st, true, true
}

// containsWordFold reports whether b contains word (lower-case letters) in any case as a
// whole word.
func containsWordFold(b []byte, word string) bool {
	for i := 0; i+len(word) <= len(b); i++ {
		if (b[i]|0x20) != word[0] || !bytes.EqualFold(b[i:i+len(word)], []byte(word)) {
			continue
		}
		if (i == 0 || !isIdentByte(b[i-1])) && (i+len(word) == len(b) || !isIdentByte(b[i+len(word)])) {
			return true
		}
	}
	return false
}

// detectSQLDelete finds a one-line DELETE statement in msg. hinted says the line comes from
// an SQL-echo logger; without it only an upper-case `DELETE FROM <table>` starting the
// message or following a logging prefix counts, so prose ("delete from cache requested")
// does not.
func detectSQLDelete(msg []byte, hinted bool, r *result) {
	// The first `delete` may be in a comment (use_sql_comments: `/* delete com.example.User */
	// delete from users ...`) or prose before the statement: try the next ones, a few at most.
	off := 0
	for tries := 0; tries < 4 && off < len(msg); tries++ {
		s := findDelete(msg[off:])
		if s < 0 {
			return
		}
		s += off
		off = s + len("delete")
		if !hinted && !bytes.HasPrefix(msg[s:], []byte("DELETE FROM ")) {
			continue
		}
		st, complete, ok := parseDelete(msg, s, true)
		if !ok || !complete || st.table == "" {
			continue
		}
		setDelete(r, st)
		return
	}
}

func setDelete(r *result, st deleteStmt) {
	r.event, r.via = RowsDeleted, ViaSQL
	r.set(FieldTable, st.table)
	if st.schema != "" {
		r.set(FieldSchema, st.schema)
	}
	if st.unbounded {
		r.set("unbounded", "true")
	}
}
