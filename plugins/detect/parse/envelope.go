package parse

import (
	"bytes"
	"time"
	"unicode/utf8"

	"github.com/tda-dev/tda/sdk"
)

// Wrappers a container runtime or the host's logger puts around an app's line, found when
// tailing their files. The wrapper is removed before any format detection, so the inner line
// is recognised as if the app's own output had been read; the wrapper's time is the event
// time when the inner line has none.
const (
	WrapperDocker  = "docker"  // Docker's json-file driver: {"log":"...\n","stream":"stdout","time":"..."}
	WrapperCRI     = "cri"     // containerd / CRI-O: <rfc3339nano> stdout F <line>
	WrapperSyslog  = "syslog"  // RFC 3164 / journalctl short: Dec  5 15:46:28 host app[123]: <line>
	WrapperRFC5424 = "rfc5424" // <165>1 2026-12-05T15:46:28.003Z host app 123 ID47 - <line>
)

// Bounds of CRI partial lines (`P`) held until their final part (`F`): per origin and across
// all origins. Text beyond is dropped from detection (the raw lines still pass unchanged).
const (
	maxPartialLine    = 64 << 10
	maxPartialPending = 4 << 20
)

type envelope struct {
	kind    string
	t       time.Time
	hasTime bool
	// partial: a CRI `P` line, held for the next part and not parsed on its own.
	partial bool
	// stream: CRI stdout (0) or stderr (1), whose parts are joined separately (kubelet
	// interleaves both streams in one file).
	stream int
}

// unwrap removes a wrapper from the event's line. It returns the inner line (the line itself
// when there is no wrapper). Syslog timestamps, which have no year, are dated by yearRef.
// Buffers it writes into belong to the Parser and stay valid until the next call.
func (p *Parser) unwrap(st *originState, ev *sdk.Event) ([]byte, envelope) {
	line := ev.Line
	if len(line) < 16 {
		return line, envelope{}
	}
	var env envelope
	var inner []byte
	ok := false
	switch c := line[0]; {
	case c == '{':
		inner, ok = p.unwrapDocker(line, &env)
	case isDigit(c):
		if line[4] == '-' && line[10] == 'T' && isoWrapper(line) {
			if t, n, tok := ParseISO(line, time.UTC); tok && zoned(line, n) && n+1 < len(line) && line[n] == ' ' {
				if inner, ok = unwrapCRI(line[n+1:], t, &env); !ok {
					inner, ok = unwrapISOSyslog(line[n+1:], t, &env)
				}
			}
		} else if isDockerTimestamps(line) {
			// `docker logs --timestamps` saved to a file.
			if t, n, tok := ParseISO(line, time.UTC); tok && n == dockerTSLen {
				inner, ok = line[n+1:], true
				env.kind, env.t, env.hasTime = WrapperDocker, t, true
			}
		}
	case c == '<':
		inner, ok = unwrapPRI(line, p.loc, yearRef(st, ev), &env)
	case c >= 'A' && c <= 'S':
		inner, ok = unwrap3164(line, p.loc, yearRef(st, ev), &env)
	}
	if !ok {
		return line, envelope{}
	}
	if env.kind == WrapperCRI {
		inner = p.joinPartial(st, inner, &env)
	}
	return inner, env
}

// joinPartial holds CRI `P` parts per origin and stream and returns the whole line at the
// `F` part. Invariant: p.pending is the sum of every origin's held bytes.
func (p *Parser) joinPartial(st *originState, content []byte, env *envelope) []byte {
	held := &st.partial[env.stream]
	if env.partial {
		room := maxPartialLine - len(*held)
		if left := maxPartialPending - p.pending; left < room {
			room = left
		}
		if room > len(content) {
			room = len(content)
		}
		if room > 0 {
			*held = append(*held, content[:room]...)
			p.pending += room
		}
		return nil
	}
	if len(*held) == 0 {
		return content
	}
	p.joinBuf = append(append(p.joinBuf[:0], *held...), content...)
	if len(p.joinBuf) > maxPartialLine {
		p.joinBuf = p.joinBuf[:maxPartialLine]
	}
	p.pending -= len(*held)
	*held = nil
	return p.joinBuf
}

// dropPartial forgets an origin's held parts.
func (p *Parser) dropPartial(st *originState) {
	p.pending -= st.held()
	st.partial = [2][]byte{}
}

// held is how many bytes of CRI parts the origin holds.
func (st *originState) held() int { return len(st.partial[0]) + len(st.partial[1]) }

// settlePartial is for a line an upstream processor already parsed: when it is the final part
// of a CRI line, the parts this parser held for it are dropped, so that they are not joined
// with the next line (the upstream processor found the event in the whole line).
func (p *Parser) settlePartial(st *originState, line []byte) {
	if len(line) <= 31 || !isDigit(line[0]) || line[4] != '-' || line[10] != 'T' {
		return
	}
	t, n, ok := ParseISO(line, time.UTC)
	if !ok || n+1 >= len(line) || line[n] != ' ' {
		return
	}
	var env envelope
	if _, ok := unwrapCRI(line[n+1:], t, &env); ok && !env.partial {
		p.pending -= len(st.partial[env.stream])
		st.partial[env.stream] = nil
	}
}

var dockerLogKey = []byte(`{"log":"`)

// unwrapDocker reads a json-file line: the "log" string (decoded, without its trailing
// newline) and "time". An entry without a trailing newline is a part of a longer line (Docker
// splits at 16 KiB); each part is parsed as it comes, so an event at the start of a long line
// is still found.
func (p *Parser) unwrapDocker(line []byte, env *envelope) ([]byte, bool) {
	if !bytes.HasPrefix(line, dockerLogKey) {
		return nil, false
	}
	val, end, ok := p.jsonString(line, len(dockerLogKey))
	if !ok {
		return nil, false
	}
	env.kind = WrapperDocker
	if i := bytes.Index(line[end:], []byte(`"time":"`)); i >= 0 {
		ts := line[end+i+len(`"time":"`):]
		if t, n, ok := ParseISO(ts, time.UTC); ok && n < len(ts) && ts[n] == '"' {
			env.t, env.hasTime = t, true
		}
	}
	return bytes.TrimRight(val, "\r\n"), true
}

// jsonString decodes the JSON string whose content starts at line[i] (after the opening
// quote). Without escapes it returns a slice of line; otherwise it decodes into p.envBuf.
// end is the index after the closing quote.
func (p *Parser) jsonString(line []byte, i int) (val []byte, end int, ok bool) {
	j := i
	for j < len(line) && line[j] != '"' && line[j] != '\\' {
		j++
	}
	if j >= len(line) {
		return nil, 0, false
	}
	if line[j] == '"' {
		return line[i:j], j + 1, true
	}
	buf := append(p.envBuf[:0], line[i:j]...)
	for j < len(line) {
		c := line[j]
		switch {
		case c == '"':
			p.envBuf = buf
			return buf, j + 1, true
		case c != '\\':
			buf = append(buf, c)
			j++
			continue
		}
		if j+1 >= len(line) {
			return nil, 0, false
		}
		e := line[j+1]
		j += 2
		switch e {
		case 'n':
			buf = append(buf, '\n')
		case 't':
			buf = append(buf, '\t')
		case 'r':
			buf = append(buf, '\r')
		case 'b':
			buf = append(buf, '\b')
		case 'f':
			buf = append(buf, '\f')
		case 'u':
			r, n := hex4(line[j:])
			if n == 0 {
				return nil, 0, false
			}
			j += n
			if r >= 0xd800 && r < 0xdc00 && j+6 <= len(line) && line[j] == '\\' && line[j+1] == 'u' {
				if r2, n2 := hex4(line[j+2:]); n2 > 0 && r2 >= 0xdc00 && r2 < 0xe000 {
					r = (r-0xd800)<<10 + (r2 - 0xdc00) + 0x10000
					j += 2 + n2
				}
			}
			buf = utf8.AppendRune(buf, r)
		default: // \" \\ \/ and anything else: the character itself
			buf = append(buf, e)
		}
	}
	p.envBuf = buf
	return nil, 0, false
}

func hex4(b []byte) (rune, int) {
	if len(b) < 4 {
		return 0, 0
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case isDigit(c):
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, 0
		}
	}
	return r, 4
}

// zoned reports whether an ISO timestamp of n bytes at the start of b carries a zone.
func zoned(b []byte, n int) bool {
	if n <= 19 || n > len(b) {
		return false
	}
	last := b[n-1]
	if last == 'Z' || last == 'z' {
		return true
	}
	for i := 19; i < n; i++ {
		if b[i] == '+' || b[i] == '-' {
			return true
		}
	}
	return false
}

// isoWrapper is a cheap check that what follows a leading timestamp is a CRI stream or a
// journald host and tag, so that app lines starting with a timestamp (Spring Boot: two spaces
// and the level) are not parsed twice.
func isoWrapper(line []byte) bool {
	if len(line) < 21 {
		return false
	}
	end := min(len(line), 40)
	sp := bytes.IndexByte(line[19:end], ' ')
	if sp < 0 {
		return false
	}
	rest := line[19+sp+1:]
	if len(rest) == 0 || rest[0] == ' ' {
		return false
	}
	if bytes.HasPrefix(rest, []byte("stdout ")) || bytes.HasPrefix(rest, []byte("stderr ")) {
		return true
	}
	if _, ok := syslogTail(rest); ok {
		return true
	}
	_, ok := herokuTail(rest)
	return ok
}

// dockerTSLen is the length of the timestamp `docker logs --timestamps` writes before each
// line: RFC 3339 with nine fraction digits, in UTC (2026-12-05T15:46:28.123456789Z).
const dockerTSLen = 30

// isDockerTimestamps checks the exact shape of that timestamp and the space after it; an app's
// own ISO timestamps (Spring Boot: three fraction digits) do not have it.
func isDockerTimestamps(line []byte) bool {
	return len(line) > dockerTSLen && line[10] == 'T' && line[19] == '.' && line[29] == 'Z' &&
		line[30] == ' '
}

// unwrapCRI reads what follows the timestamp of `2026-12-05T15:46:28.123456789Z stdout F <line>`
// (tag P: a partial line).
func unwrapCRI(rest []byte, t time.Time, env *envelope) ([]byte, bool) {
	if !bytes.HasPrefix(rest, []byte("stdout ")) && !bytes.HasPrefix(rest, []byte("stderr ")) {
		return nil, false
	}
	stream := 0
	if rest[3] == 'e' {
		stream = 1
	}
	rest = rest[7:]
	// The tag: F or P, possibly with more tags after ':'.
	e := bytes.IndexByte(rest, ' ')
	if e < 0 {
		e = len(rest)
	}
	tag := rest[:e]
	if len(tag) == 0 || (tag[0] != 'F' && tag[0] != 'P') || (len(tag) > 1 && tag[1] != ':') {
		return nil, false
	}
	env.kind, env.t, env.hasTime = WrapperCRI, t, true
	env.partial = tag[0] == 'P'
	env.stream = stream
	if e < len(rest) {
		e++
	}
	return rest[e:], true
}

// unwrapISOSyslog reads what follows the timestamp of journalctl's short-iso forms
// (`2026-12-05T15:46:28+0000 host app[123]: <line>`) and of Heroku's log drains
// (`2026-12-05T15:46:28.947915+00:00 app[web.1]: <line>`).
func unwrapISOSyslog(rest []byte, t time.Time, env *envelope) ([]byte, bool) {
	msg, ok := syslogTail(rest)
	if !ok {
		msg, ok = herokuTail(rest)
	}
	if !ok {
		return nil, false
	}
	env.kind, env.t, env.hasTime = WrapperSyslog, t, true
	return msg, true
}

// syslogTail reads `host tag[pid]: message` (or `host tag: message`) and returns the message.
func syslogTail(b []byte) ([]byte, bool) {
	sp := bytes.IndexByte(b, ' ')
	if sp <= 0 || sp > 255 {
		return nil, false
	}
	rest := b[sp+1:]
	te := bytes.IndexByte(rest, ' ')
	if te < 0 {
		te = len(rest)
	}
	tag := rest[:te]
	if len(tag) < 2 || len(tag) > 96 || tag[len(tag)-1] != ':' || !isTag(tag[:len(tag)-1]) {
		return nil, false
	}
	if te < len(rest) {
		te++
	}
	return rest[te:], true
}

// herokuTail reads `source[dyno]: message` (`app[web.1]:`, `heroku[router]:`).
func herokuTail(b []byte) ([]byte, bool) {
	e := bytes.Index(b, []byte("]: "))
	if e < 2 || e > 64 {
		return nil, false
	}
	o := bytes.IndexByte(b[:e], '[')
	if o <= 0 {
		return nil, false
	}
	for _, c := range b[:o] {
		if !isKeyByte(c) {
			return nil, false
		}
	}
	for _, c := range b[o+1 : e] {
		if !isKeyByte(c) {
			return nil, false
		}
	}
	return b[e+3:], true
}

// isTag: a program name, optionally with [pid].
func isTag(b []byte) bool {
	if o := bytes.IndexByte(b, '['); o >= 0 {
		if o == 0 || b[len(b)-1] != ']' {
			return false
		}
		for _, c := range b[o+1 : len(b)-1] {
			if !isDigit(c) {
				return false
			}
		}
		b = b[:o]
	}
	for _, c := range b {
		if !(isKeyByte(c) || c == '/') {
			return false
		}
	}
	return len(b) > 0
}

// unwrap3164 reads the BSD syslog / journalctl short header:
// `Dec  5 15:46:28 host app[123]: <line>` (also `Dec 05`, and fractions as journalctl
// short-precise writes them). The year is the one that puts the time nearest before ref.
func unwrap3164(line []byte, loc *time.Location, ref refTime, env *envelope) ([]byte, bool) {
	t, n, ok := parse3164Time(line, loc, ref)
	if !ok || n >= len(line) || line[n] != ' ' {
		return nil, false
	}
	msg, ok := syslogTail(line[n+1:])
	if !ok {
		return nil, false
	}
	env.kind, env.t, env.hasTime = WrapperSyslog, t, true
	return msg, true
}

// parse3164Time parses `Mmm dd hh:mm:ss[.frac]` and returns the bytes consumed.
func parse3164Time(b []byte, loc *time.Location, ref refTime) (time.Time, int, bool) {
	if len(b) < 15 || b[3] != ' ' || b[6] != ' ' || b[9] != ':' || b[12] != ':' {
		return time.Time{}, 0, false
	}
	mo := month(b)
	if mo == 0 {
		return time.Time{}, 0, false
	}
	var d int
	switch {
	case b[4] == ' ' && isDigit(b[5]):
		d = int(b[5] - '0')
	case isDigit(b[4]) && isDigit(b[5]):
		d = int(b[4]-'0')*10 + int(b[5]-'0')
	default:
		return time.Time{}, 0, false
	}
	h, ok1 := digits(b[7:], 2)
	mi, ok2 := digits(b[10:], 2)
	s, ok3 := digits(b[13:], 2)
	if !(ok1 && ok2 && ok3) || !validClock(mo, d, h, mi, s) {
		return time.Time{}, 0, false
	}
	ns, fn := fraction(b[15:])
	y := ref.t.In(loc).Year()
	t := makeTime(y, mo, d, h, mi, s, ns, false, 0, loc)
	// The year puts the line just after the origin's previous line (a January line after a
	// December one is in the next year), or just before the time it was read.
	if ref.prev && t.Before(ref.t.Add(-24*time.Hour)) {
		t = makeTime(y+1, mo, d, h, mi, s, ns, false, 0, loc)
	} else if !ref.prev && t.After(ref.t.Add(24*time.Hour)) {
		t = makeTime(y-1, mo, d, h, mi, s, ns, false, 0, loc)
	}
	return t, 15 + fn, true
}

// unwrapPRI reads syslog lines that start with a priority: RFC 5424
// (`<165>1 2026-12-05T15:46:28.003Z host app 123 ID47 [sd] msg`) and RFC 3164 with a
// priority (`<34>Dec  5 15:46:28 host su: msg`).
func unwrapPRI(line []byte, loc *time.Location, ref refTime, env *envelope) ([]byte, bool) {
	e := bytes.IndexByte(line[:min(len(line), 6)], '>')
	if e < 2 {
		return nil, false
	}
	if _, ok := digits(line[1:], e-1); !ok {
		return nil, false
	}
	rest := line[e+1:]
	if len(rest) < 2 || rest[0] != '1' || rest[1] != ' ' {
		return unwrap3164(rest, loc, ref, env)
	}
	rest = rest[2:]
	// TIMESTAMP HOSTNAME APP-NAME PROCID MSGID
	var tok [5][]byte
	for i := range tok {
		sp := bytes.IndexByte(rest, ' ')
		if sp <= 0 {
			if i == 4 && len(rest) > 0 {
				tok[i], rest = rest, nil
				break
			}
			return nil, false
		}
		tok[i], rest = rest[:sp], rest[sp+1:]
	}
	env.kind = WrapperRFC5424
	if string(tok[0]) != "-" {
		t, n, ok := ParseISO(tok[0], loc)
		if !ok || n != len(tok[0]) {
			return nil, false
		}
		env.t, env.hasTime = t, true
	}
	// STRUCTURED-DATA: "-" or [id k="v" ...][...], values with \" \\ \] escapes.
	switch {
	case len(rest) == 0:
	case rest[0] == '-':
		rest = rest[1:]
	case rest[0] == '[':
		i := 0
		for i < len(rest) && rest[i] == '[' {
			inQ := false
			i++
			for i < len(rest) {
				c := rest[i]
				if c == '\\' && inQ {
					i += 2
					continue
				}
				if c == '"' {
					inQ = !inQ
				} else if c == ']' && !inQ {
					break
				}
				i++
			}
			if i >= len(rest) {
				return nil, false
			}
			i++
		}
		rest = rest[i:]
	default:
		return nil, false
	}
	rest = bytes.TrimPrefix(rest, []byte(" "))
	rest = bytes.TrimPrefix(rest, []byte("\xef\xbb\xbf"))
	return rest, true
}

// refTime is the time that dates a syslog timestamp without a year: the origin's previous
// line's (prev), else the time the source read it, else now.
type refTime struct {
	t    time.Time
	prev bool
}

func yearRef(st *originState, ev *sdk.Event) refTime {
	switch {
	case !st.prev.IsZero():
		return refTime{st.prev, true}
	case !ev.Time.IsZero():
		return refTime{t: ev.Time}
	}
	return refTime{t: time.Now()}
}
