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
	ip     []byte // host field or forwarded chain, as written
	peer   []byte // the peer address when the line has a forwarded chain as well
	method []byte
	path   []byte
	status int
}

// scan recognises the line's format from its first bytes and splits it into header and
// message; then it looks for an access line anywhere in the line, so that one wrapped in a
// logging prefix (`INFO:werkzeug:...`, `[ts] INFO in _internal: ...`) is found too. It never
// allocates.
func scan(line []byte, loc *time.Location) header {
	var h header
	scanInto(line, loc, &h)
	return h
}

// scanInto is scan writing into h (which must be zero), sparing the copies of a header.
func scanInto(line []byte, loc *time.Location, h *header) {
	scanHeader(line, loc, h)
	if h.format != FormatJSON {
		findAccess(line, loc, h)
	}
}

// scanHeader splits the line by the logging layout its first bytes announce.
func scanHeader(line []byte, loc *time.Location, h *header) {
	h.format, h.msg = FormatPlain, line
	if len(line) == 0 {
		return
	}
	c := line[0]
	switch {
	case c == '[':
		if scanFlask(line, loc, h) || scanGunicornError(line, h) {
			return
		}
	case c == '{':
		h.format = FormatJSON
		return
	case isDigit(c):
		if len(line) > 10 && line[4] == '-' {
			if t, n, ok := ParseISO(line, loc); ok {
				h.t, h.hasTime = t, true
				scanAfterISO(line, n, h)
				return
			}
		}
	case c == 'H':
		if bytes.HasPrefix(line, []byte("Hibernate: ")) {
			h.format = FormatHibernate
			h.msg = line[len("Hibernate: "):]
			return
		}
	case c >= 'A' && c <= 'Z':
		scanAlembic(line, h)
	}
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

// scanLine scans a line: the app's gunicorn formats first, then the built-in formats.
func (p *Parser) scanLine(line []byte, h *header) {
	for _, f := range p.accessFormats {
		if f.scan(line, p.loc, h) {
			return
		}
	}
	scanInto(line, p.loc, h)
}
