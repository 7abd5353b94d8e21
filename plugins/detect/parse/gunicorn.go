package parse

import (
	"bytes"
	"fmt"
	"strings"
	"time"
)

// gunicorn writes its access log with a Python %-format over "atoms" (access_log_format):
// https://docs.gunicorn.org/en/stable/settings.html#access-log-format. An AccessFormat is such
// a format string compiled into a matcher, so an app's custom access log is read field by
// field instead of guessed at.

type atomKind uint8

const (
	atomOther     atomKind = iota // any text (referer, user agent, other headers)
	atomHost                      // h: remote address
	atomToken                     // l, u, q, H: no spaces
	atomTime                      // t: [05/Dec/2026:15:46:28 +0000]
	atomRequest                   // r: request line
	atomMethod                    // m
	atomPath                      // U
	atomStatus                    // s
	atomNumber                    // B, T, M, D, L, p
	atomSize                      // b: number or '-'
	atomForwarded                 // {x-forwarded-for}i, {x-real-ip}i, {forwarded}i
)

// gunicornAtoms are the atoms of gunicorn's access_log_format.
var gunicornAtoms = map[string]atomKind{
	"h": atomHost, "l": atomToken, "u": atomToken, "t": atomTime, "r": atomRequest,
	"m": atomMethod, "U": atomPath, "q": atomToken, "H": atomToken, "s": atomStatus,
	"B": atomNumber, "b": atomSize, "f": atomOther, "a": atomOther, "T": atomNumber,
	"M": atomNumber, "D": atomNumber, "L": atomNumber, "p": atomOther,
}

const gunicornAtomList = "h l u t r m U q H s B b f a T M D L p {header}i {header}o {variable}e"

// maxFormatElems bounds a compiled format; a match takes at most three steps per element plus
// maxBacktrack steps of backtracking (a field followed by text that also occurs inside the
// field, like "a, b" before " ").
const (
	maxFormatElems = 64
	maxBacktrack   = 64
)

type formatElem struct {
	lit  []byte // literal text; empty for an atom
	kind atomKind
	name string // the atom, for errors and tests
}

// AccessFormat is a compiled gunicorn access_log_format.
type AccessFormat struct {
	Source string
	elems  []formatElem
}

// FormatError is a gunicorn format string that cannot be compiled. Offset is the byte offset
// in the format string where the problem is; Hint says what to write instead.
type FormatError struct {
	Offset int
	Msg    string
	Hint   string
}

func (e *FormatError) Error() string {
	return fmt.Sprintf("at character %d: %s", e.Offset+1, e.Msg)
}

// CompileGunicornFormat compiles a gunicorn access_log_format string (as written in the app's
// gunicorn config: `%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"`). The format
// must give the status (%(s)s) and the request (%(r)s, or %(m)s and %(U)s); two atoms must be
// separated by some text, or they could not be told apart.
func CompileGunicornFormat(format string) (*AccessFormat, error) {
	f := &AccessFormat{Source: format}
	var lit []byte
	has := map[atomKind]bool{}
	flush := func() {
		if len(lit) > 0 {
			f.elems = append(f.elems, formatElem{lit: lit})
			lit = nil
		}
	}
	for i := 0; i < len(format); {
		c := format[i]
		if c != '%' {
			lit = append(lit, c)
			i++
			continue
		}
		if i+1 < len(format) && format[i+1] == '%' {
			lit = append(lit, '%')
			i += 2
			continue
		}
		start := i
		if i+1 >= len(format) || format[i+1] != '(' {
			return nil, &FormatError{Offset: start, Msg: "a % not followed by (name)",
				Hint: "Gunicorn atoms are written %(name)s, e.g. %(h)s; write %% for a literal %"}
		}
		close := strings.IndexByte(format[i+2:], ')')
		if close < 0 {
			return nil, &FormatError{Offset: start, Msg: "unclosed %(", Hint: "Close the atom name: %(h)s"}
		}
		name := format[i+2 : i+2+close]
		i += 2 + close + 1
		// Conversion flags, width and precision, then the conversion character.
		for i < len(format) && strings.IndexByte("#0- +", format[i]) >= 0 {
			i++
		}
		for i < len(format) && (isDigit(format[i]) || format[i] == '.') {
			i++
		}
		if i >= len(format) || strings.IndexByte("sdr", format[i]) < 0 {
			got := "the end of the format"
			if i < len(format) {
				got = fmt.Sprintf("%q", format[i])
			}
			return nil, &FormatError{Offset: start, Msg: fmt.Sprintf("%%(%s) is followed by %s, not a conversion", name, got),
				Hint: fmt.Sprintf("End every atom with s: %%(%s)s", name)}
		}
		i++
		kind, ok := atomOf(name)
		if !ok {
			return nil, &FormatError{Offset: start, Msg: fmt.Sprintf("%%(%s)s is not a gunicorn atom", name),
				Hint: "The atoms are " + gunicornAtomList}
		}
		if len(lit) == 0 && len(f.elems) > 0 && f.elems[len(f.elems)-1].lit == nil {
			return nil, &FormatError{Offset: start, Msg: fmt.Sprintf("%%(%s)s follows another atom without any text between them", name),
				Hint: "Separate atoms with a space or other text, as gunicorn's default format does"}
		}
		flush()
		f.elems = append(f.elems, formatElem{kind: kind, name: name})
		has[kind] = true
		if len(f.elems) > maxFormatElems {
			return nil, &FormatError{Offset: start, Msg: "the format has too many atoms",
				Hint: fmt.Sprintf("At most %d atoms and texts", maxFormatElems)}
		}
	}
	flush()
	if !has[atomStatus] {
		return nil, &FormatError{Offset: 0, Msg: "the format has no %(s)s",
			Hint: "Detection needs the response status: add %(s)s"}
	}
	if !has[atomRequest] && !(has[atomMethod] && has[atomPath]) {
		return nil, &FormatError{Offset: 0, Msg: "the format has neither %(r)s nor %(m)s and %(U)s",
			Hint: "Detection needs the request's method and path: add \"%(r)s\""}
	}
	return f, nil
}

func atomOf(name string) (atomKind, bool) {
	if k, ok := gunicornAtoms[name]; ok {
		return k, true
	}
	if len(name) > 3 && name[0] == '{' && name[len(name)-2] == '}' && strings.IndexByte("ioe", name[len(name)-1]) >= 0 {
		if name[len(name)-1] == 'i' {
			switch strings.ToLower(name[1 : len(name)-2]) {
			case "x-forwarded-for", "x-real-ip", "x-client-ip", "true-client-ip", "cf-connecting-ip":
				return atomForwarded, true
			}
		}
		return atomOther, true
	}
	return 0, false
}

// scan matches line against the format and fills h. A line the format does not describe
// leaves h untouched.
func (f *AccessFormat) scan(line []byte, loc *time.Location, h *header) bool {
	line = bytes.TrimRight(line, "\r\n")
	var spans [maxFormatElems + 1][2]int
	steps := 0
	if !f.match(line, 0, 0, &spans, &steps, 3*len(f.elems)+maxBacktrack) {
		return false
	}
	var out header
	out.format = FormatGunicorn
	out.access = true
	out.msg = line
	var host, fwd []byte
	for i, e := range f.elems {
		if e.lit != nil {
			continue
		}
		v := line[spans[i][0]:spans[i][1]]
		switch e.kind {
		case atomHost:
			host = v
		case atomForwarded:
			if string(v) != "-" {
				fwd = v
			}
		case atomTime:
			out.t, out.hasTime = ParseCLF(v[1:len(v)-1], loc)
		case atomRequest:
			out.msg = v
			if sp := bytes.IndexByte(v, ' '); sp > 0 {
				out.method = v[:sp]
				t := v[sp+1:]
				if e := bytes.LastIndexByte(t, ' '); e >= 0 {
					t = t[:e]
				}
				out.path = requestPath(t)
			}
		case atomMethod:
			out.method = v
		case atomPath:
			out.path = requestPath(v)
		case atomStatus:
			out.status, _ = digits(v, 3)
		}
	}
	switch {
	case fwd != nil && host != nil:
		out.ip, out.peer = fwd, host
	case fwd != nil:
		out.ip = fwd
	default:
		out.ip = host
	}
	*h = out
	return true
}

// match matches f.elems[ei:] against line[pos:], recording each element's span. Fields are
// matched lazily: a field ends at the first occurrence of the text after it that leaves a
// valid field and a matching rest; steps bounds the attempts.
func (f *AccessFormat) match(line []byte, ei, pos int, spans *[maxFormatElems + 1][2]int, steps *int, budget int) bool {
	*steps++
	if *steps > budget {
		return false
	}
	if ei == len(f.elems) {
		return pos == len(line)
	}
	e := f.elems[ei]
	if e.lit != nil {
		if !bytes.HasPrefix(line[pos:], e.lit) {
			return false
		}
		spans[ei] = [2]int{pos, pos + len(e.lit)}
		return f.match(line, ei+1, pos+len(e.lit), spans, steps, budget)
	}
	if ei == len(f.elems)-1 {
		if !validAtom(e.kind, line[pos:]) {
			return false
		}
		spans[ei] = [2]int{pos, len(line)}
		return true
	}
	next := f.elems[ei+1].lit
	from := pos
	for from <= len(line) {
		k := bytes.Index(line[from:], next)
		if k < 0 {
			return false
		}
		end := from + k
		v := line[pos:end]
		if validAtom(e.kind, v) {
			spans[ei] = [2]int{pos, end}
			if f.match(line, ei+1, end, spans, steps, budget) {
				return true
			}
		} else if noSpaceAtom(e.kind) && bytes.IndexByte(v, ' ') >= 0 {
			return false // a longer field would not be valid either
		}
		from = end + 1
		*steps++
		if *steps > budget {
			return false
		}
	}
	return false
}

func noSpaceAtom(k atomKind) bool {
	switch k {
	case atomHost, atomToken, atomMethod, atomPath, atomStatus, atomNumber, atomSize:
		return true
	}
	return false
}

func validAtom(k atomKind, v []byte) bool {
	switch k {
	case atomHost, atomToken, atomPath:
		// No spaces; a host may be empty (gunicorn bound to a unix socket logs none).
		return bytes.IndexByte(v, ' ') < 0
	case atomTime:
		if len(v) < 22 || v[0] != '[' || v[len(v)-1] != ']' {
			return false
		}
		_, ok := ParseCLF(v[1:len(v)-1], time.UTC)
		return ok
	case atomRequest:
		sp := bytes.IndexByte(v, ' ')
		return sp > 0 && sp <= 16 && isMethod(v[:sp])
	case atomMethod:
		return len(v) <= 16 && isMethod(v)
	case atomStatus:
		_, ok := digits(v, 3)
		return ok && len(v) == 3
	case atomNumber, atomSize:
		if len(v) == 0 || (k == atomSize && string(v) == "-") {
			return len(v) > 0
		}
		for _, c := range v {
			if !isDigit(c) && c != '.' {
				return false
			}
		}
		return true
	case atomForwarded:
		if len(v) == 0 {
			return false
		}
		for _, c := range v {
			if !isChainByte(c) && !(c >= 'a' && c <= 'z') && c != '_' {
				return false
			}
		}
		return true
	}
	return true
}

// scanGunicornError reads gunicorn's error-log header, which the app's own log lines share
// when they go through gunicorn's logger: `[2026-12-05 15:46:28 +0000] [7] [INFO] message`.
// Its time then also dates the origin's later lines without one (access lines of a format
// without %(t)s, Alembic output).
func scanGunicornError(line []byte, h *header) bool {
	t, n, ok := ParseISO(line[1:], time.UTC)
	if !ok || n != 19 || len(line) < 1+n+8 || line[1+n] != ' ' {
		return false
	}
	off, zn, ok := zone(line[2+n:])
	if !ok || zn < 5 || 2+n+zn >= len(line) || line[2+n+zn] != ']' {
		return false
	}
	rest := line[3+n+zn:]
	if len(rest) < 4 || rest[0] != ' ' || rest[1] != '[' {
		return false
	}
	e := bytes.IndexByte(rest, ']')
	if e < 0 || e > 16 {
		return false
	}
	rest = rest[e+1:]
	if len(rest) < 3 || rest[0] != ' ' || rest[1] != '[' {
		return false
	}
	le := bytes.IndexByte(rest, ']')
	if le < 0 || le > 16 {
		return false
	}
	h.format = FormatGunicorn
	h.t, h.hasTime = t.Add(-time.Duration(off)*time.Second), true
	h.level = rest[2:le]
	h.msg = bytes.TrimLeft(rest[le+1:], " ")
	return true
}
