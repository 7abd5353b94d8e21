package parse

import (
	"bytes"
	"time"
)

// Format names (FieldFormat).
const (
	FormatWerkzeug  = "werkzeug"
	FormatGunicorn  = "gunicorn"
	FormatFlask     = "flask"
	FormatPython    = "python"
	FormatSpring    = "spring"
	FormatAlembic   = "alembic"
	FormatHibernate = "hibernate"
	FormatJSON      = "json"
	FormatLogfmt    = "logfmt"
	FormatPlain     = "plain"
)

// header is what the format scan learns about a line before any event detection. Slices point
// into the line; nothing is allocated.
type header struct {
	format  string
	t       time.Time
	hasTime bool
	msg     []byte // the log message (the whole line for unknown formats)
	level   []byte
	logger  []byte
	// access lines
	access bool
	ip     []byte
	method []byte
	path   []byte
	status int
}

// scan recognises the line's format from its first bytes and splits it into header and
// message. It never allocates.
func scan(line []byte, loc *time.Location) header {
	h := header{format: FormatPlain, msg: line}
	if len(line) == 0 {
		return h
	}
	c := line[0]
	switch {
	case c == '[':
		if scanFlask(line, loc, &h) {
			return h
		}
	case c == '{':
		h.format = FormatJSON
		return h
	case isDigit(c):
		if len(line) > 10 && line[4] == '-' {
			if t, n, ok := ParseISO(line, loc); ok {
				h.t, h.hasTime = t, true
				scanAfterISO(line, n, &h)
				return h
			}
		}
		if scanAccess(line, loc, &h) {
			return h
		}
	case c == 'H':
		if bytes.HasPrefix(line, []byte("Hibernate: ")) {
			h.format = FormatHibernate
			h.msg = line[len("Hibernate: "):]
			return h
		}
	case c >= 'A' && c <= 'Z':
		if scanAlembic(line, &h) {
			return h
		}
	}
	if !isDigit(c) && (isHexByte(c) || c == ':') && scanAccess(line, loc, &h) {
		return h
	}
	return h
}

func isHexByte(c byte) bool {
	return isDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

// scanFlask: `[2026-11-29 22:57:05,123] INFO in auth: message`.
func scanFlask(line []byte, loc *time.Location, h *header) bool {
	t, n, ok := ParseISO(line[1:], loc)
	if !ok || 1+n >= len(line) || line[1+n] != ']' {
		return false
	}
	h.format, h.t, h.hasTime = FormatFlask, t, true
	rest := line[2+n:]
	rest = bytes.TrimLeft(rest, " ")
	sp := bytes.IndexByte(rest, ' ')
	if sp < 0 {
		h.msg = rest
		return true
	}
	h.level = rest[:sp]
	rest = rest[sp+1:]
	if bytes.HasPrefix(rest, []byte("in ")) {
		rest = rest[3:]
		if c := bytes.Index(rest, []byte(": ")); c >= 0 {
			h.logger = rest[:c]
			rest = rest[c+2:]
		}
	}
	h.msg = rest
	return true
}

// scanAfterISO handles lines that start with an ISO timestamp: Spring Boot 2/3
// (`ts  LEVEL PID --- [app] [thread] logger : msg`) and Python's basic format
// (`ts LEVEL logger msg`, e.g. SQLAlchemy echo).
func scanAfterISO(line []byte, n int, h *header) {
	rest := bytes.TrimLeft(line[n:], " ")
	sp := bytes.IndexByte(rest, ' ')
	if sp < 0 {
		h.msg = rest
		return
	}
	h.level = rest[:sp]
	rest = rest[sp+1:]
	if d := bytes.Index(rest, []byte(" --- ")); d >= 0 && d < 32 {
		h.format = FormatSpring
		after := rest[d+5:]
		c := bytes.Index(after, []byte(" : "))
		if c < 0 {
			h.msg = after
			return
		}
		head := bytes.TrimRight(after[:c], " ")
		if s := bytes.LastIndexAny(head, " ]"); s >= 0 {
			h.logger = head[s+1:]
		} else {
			h.logger = head
		}
		h.msg = after[c+3:]
		return
	}
	h.format = FormatPython
	rest = bytes.TrimLeft(rest, " ")
	if sp = bytes.IndexByte(rest, ' '); sp >= 0 {
		h.logger = rest[:sp]
		h.msg = rest[sp+1:]
	} else {
		h.msg = rest
	}
}

// scanAlembic: `INFO  [alembic.runtime.migration] Running upgrade ...` (no timestamp).
func scanAlembic(line []byte, h *header) bool {
	sp := bytes.IndexByte(line, ' ')
	if sp < 0 || sp > 8 {
		return false
	}
	rest := bytes.TrimLeft(line[sp:], " ")
	if !bytes.HasPrefix(rest, []byte("[alembic")) {
		return false
	}
	end := bytes.IndexByte(rest, ']')
	if end < 0 {
		return false
	}
	h.format = FormatAlembic
	h.level = line[:sp]
	h.logger = rest[1:end]
	h.msg = bytes.TrimLeft(rest[end+1:], " ")
	return true
}

// scanAccess parses the common log format shared by Werkzeug and gunicorn:
// `host ident user [time] "METHOD path proto" status size ...`.
func scanAccess(line []byte, loc *time.Location, h *header) bool {
	sp := bytes.IndexByte(line, ' ')
	if sp <= 0 || sp > 64 {
		return false
	}
	open := bytes.IndexByte(line[sp:], '[')
	if open < 0 || open > 128 {
		return false
	}
	open += sp
	if bytes.Count(line[sp:open], []byte(" ")) != 3 {
		return false
	}
	cl := bytes.IndexByte(line[open:], ']')
	if cl < 0 {
		return false
	}
	cl += open
	t, ok := ParseCLF(line[open+1:cl], loc)
	if !ok {
		return false
	}
	rest := line[cl+1:]
	if len(rest) < 2 || rest[0] != ' ' || rest[1] != '"' {
		return false
	}
	rest = rest[2:]
	q := bytes.IndexByte(rest, '"')
	if q < 0 {
		return false
	}
	req := rest[:q]
	rest = rest[q+1:]
	if len(rest) < 4 || rest[0] != ' ' {
		return false
	}
	status, ok := digits(rest[1:], 3)
	if !ok {
		return false
	}
	h.format = FormatWerkzeug
	if line[cl-5] == '+' || line[cl-5] == '-' {
		h.format = FormatGunicorn
	}
	h.t, h.hasTime = t, true
	h.access = true
	h.ip = line[:sp]
	h.status = status
	if m := bytes.IndexByte(req, ' '); m > 0 {
		h.method = req[:m]
		p := req[m+1:]
		if e := bytes.IndexByte(p, ' '); e >= 0 {
			p = p[:e]
		}
		if qm := bytes.IndexByte(p, '?'); qm >= 0 {
			p = p[:qm]
		}
		h.path = p
	}
	h.msg = req
	return true
}

// stripANSI removes ANSI escape sequences (ESC [ ... final byte) from line into buf.
func stripANSI(buf, line []byte) []byte {
	buf = buf[:0]
	for i := 0; i < len(line); i++ {
		c := line[i]
		if c != 0x1b {
			buf = append(buf, c)
			continue
		}
		if i+1 < len(line) && line[i+1] == '[' {
			j := i + 2
			for j < len(line) && (line[j] < 0x40 || line[j] > 0x7e) {
				j++
			}
			i = j
			continue
		}
	}
	return buf
}
