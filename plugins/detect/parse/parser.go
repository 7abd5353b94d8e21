package parse

import (
	"bytes"
	"net/netip"
	"sort"
	"strings"
	"time"

	"github.com/tda-dev/tda/sdk"
)

// Options configure a Parser.
type Options struct {
	// Location is the time zone of formats whose timestamps carry none (Werkzeug, the Flask
	// logger, Spring Boot 2, Python's basic format). Nil means UTC.
	Location *time.Location
	// Custom parsers run before the built-in ones; the first match wins.
	Custom []*Custom
	// LoginPaths are the path segments that make a 401/403 access line a failed login.
	LoginPaths []string
	// ExtraEvents are more event words the audit-line contract recognises.
	ExtraEvents []string
	// Tables decides which tables' SQL deletes are events. Nil means DefaultTablePolicy.
	Tables *TablePolicy
	// AccessFormats are the app's gunicorn access_log_formats (CompileGunicornFormat); they
	// are tried before the built-in formats.
	AccessFormats []*AccessFormat
	// TrustedProxies are the proxies whose X-Forwarded-For entries are believed: the client
	// IP is the right-most address of a forwarded chain not in one of them.
	TrustedProxies []netip.Prefix
	// Routes declare what an access line means, checked before the built-in heuristics.
	Routes []*Route
}

// DefaultLoginPaths are the path segments of login endpoints in Flask and Spring apps.
var DefaultLoginPaths = []string{"login", "signin", "sign_in", "sign-in", "authenticate", "token", "session", "sessions"}

// maxOrigins bounds the per-origin memory (previous line time, audit-speaking mask).
const maxOrigins = 16384

// Parser parses lines. It keeps a little state per origin: the previous line's time (for
// lines without a timestamp, such as Alembic's) and which event types the origin already
// reports through audit lines. A Parser is not safe for concurrent use.
type Parser struct {
	loc        *time.Location
	custom     []*Custom
	loginPaths map[string]bool
	words      map[string]string
	// plainWords are extra event words without an underscore, which the underscore scan of
	// detectAudit cannot find.
	plainWords [][]byte

	tables        *TablePolicy
	accessFormats []*AccessFormat
	trusted       []netip.Prefix
	routes        []*Route

	origins    map[string]*originState
	lastOrigin string
	lastState  *originState
	buf        []byte
	// segs holds the path segments of the access line being detected (see splitPath).
	segs [][]byte
	r    result
	// ignored is LastIgnored's answer.
	ignored string
	// envBuf holds a decoded Docker json-file line, joinBuf a joined CRI line; pending is
	// the size of all origins' held CRI parts (bounded by maxPartialPending).
	envBuf, joinBuf []byte
	pending         int
}

// originState is what the parser remembers of one origin; its size is bounded (see sqlState).
type originState struct {
	prev  time.Time
	audit uint8
	sql   sqlState
	// migLast is the revision of the last Liquibase changeset reported, migPair which of its
	// two lines reported it (pairStart, pairDone).
	migLast string
	migPair uint8
	// partial holds the CRI `P` parts of a line until its `F` part, per stream (envelope.go).
	partial [2][]byte
}

// New returns a parser.
func New(o Options) *Parser {
	p := &Parser{loc: o.Location, custom: o.Custom, loginPaths: map[string]bool{},
		words: map[string]string{}, origins: map[string]*originState{}, tables: o.Tables,
		accessFormats: o.AccessFormats, trusted: o.TrustedProxies, routes: o.Routes}
	if p.tables == nil {
		p.tables = DefaultTablePolicy()
	}
	if p.loc == nil {
		p.loc = time.UTC
	}
	lp := o.LoginPaths
	if lp == nil {
		lp = DefaultLoginPaths
	}
	for _, s := range lp {
		p.loginPaths[strings.ToLower(strings.Trim(s, "/"))] = true
	}
	for _, w := range AuditEvents {
		p.words[w] = w
	}
	for _, w := range o.ExtraEvents {
		if w == "" {
			continue
		}
		p.words[w] = w
		if !strings.Contains(w, "_") {
			p.plainWords = append(p.plainWords, []byte(w))
		}
	}
	return p
}

// result collects an event's fields without allocating a map until the line is known to be an
// event.
type result struct {
	event, via, format string
	keys, vals         [24]string
	n                  int
	// pair marks the two lines Liquibase logs for one changeset (pairStart, pairDone).
	pair uint8
}

func (r *result) reset() {
	r.event, r.via, r.format, r.n, r.pair = "", "", "", 0, 0
}

func (r *result) set(k, v string) {
	switch k {
	case FieldEvent, FieldVia, FieldFormat, "":
		return
	}
	for i := 0; i < r.n; i++ {
		if r.keys[i] == k {
			r.vals[i] = v
			return
		}
	}
	if r.n < len(r.keys) {
		r.keys[r.n], r.vals[r.n] = k, v
		r.n++
	}
}

func (r *result) get(k string) string {
	for i := 0; i < r.n; i++ {
		if r.keys[i] == k {
			return r.vals[i]
		}
	}
	return ""
}

// Parsed reports whether an upstream processor already parsed the event.
func Parsed(ev *sdk.Event) bool {
	return ev.Fields != nil && ev.Fields[FieldEvent] != ""
}

// Apply parses a log event in place: it sets ev.Time to the line's time and, when the line is
// a detection event, adds the event's fields to ev.Fields. It returns the event type ("" for
// none). Events an upstream processor already parsed are not parsed again; their time still
// counts as the origin's previous time. Events of other kinds are left alone.
func (p *Parser) Apply(ev *sdk.Event) string {
	if ev.Kind != sdk.KindLog && ev.Kind != "" {
		return ""
	}
	st := p.origin(ev.Origin)
	p.ignored = ""
	if Parsed(ev) {
		if !ev.Time.IsZero() {
			st.prev = ev.Time
		}
		p.sawParsed(st, ev)
		if st.held() > 0 {
			p.settlePartial(st, ev.Line)
		}
		return ev.Fields[FieldEvent]
	}
	// Container and host wrappers come off first: every format below sees the app's line.
	line, env := p.unwrap(st, ev)
	if env.partial {
		if env.hasTime && !isDocker(ev) {
			ev.Time = env.t
		}
		return ""
	}
	if bytes.IndexByte(line, 0x1b) >= 0 {
		p.buf = stripANSI(p.buf, line)
		line = p.buf
	}
	var h header
	p.scanLine(line, &h)
	r := &p.r
	r.reset()
	var lineTime time.Time
	hasTime := h.hasTime
	if hasTime {
		lineTime = h.t
	}
	matched := false
	for _, c := range p.custom {
		if t, ok, m := c.match(line, p.loc, r); m {
			matched = true
			if ok {
				lineTime, hasTime = t, true
			}
			break
		}
		r.reset()
	}
	if !matched {
		p.detect(line, &h, r)
		if !hasTime {
			if t, ok := p.structuredTime(line, h.format); ok {
				lineTime, hasTime = t, true
			}
		}
		if r.event != "" && !hasTime {
			for _, k := range []string{"ts", "time", "timestamp"} {
				if s := r.get(k); s != "" {
					lineTime, hasTime = ParseAny(s, p.loc)
					break
				}
			}
		}
	}

	// Event time: Docker's timestamp when there is one, else the line's own, else its
	// wrapper's, else the previous line's of the same origin, else what the source said.
	switch {
	case isDocker(ev) && !ev.Time.IsZero():
	case hasTime:
		ev.Time = lineTime
	case env.hasTime:
		ev.Time = env.t
	case !st.prev.IsZero():
		ev.Time = st.prev
	}
	if !ev.Time.IsZero() {
		st.prev = ev.Time
	}
	if r.event == "" {
		return ""
	}
	if why := p.suppress(st, r); why != "" {
		p.ignored = why
		return ""
	}
	if ev.Fields == nil {
		ev.Fields = make(map[string]string, r.n+3)
	}
	ev.Fields[FieldEvent] = r.event
	ev.Fields[FieldVia] = r.via
	ev.Fields[FieldFormat] = r.format
	for i := 0; i < r.n; i++ {
		ev.Fields[r.keys[i]] = r.vals[i]
	}
	return r.event
}

func isDocker(ev *sdk.Event) bool {
	return strings.HasPrefix(ev.Source, "docker.")
}

func (p *Parser) origin(name string) *originState {
	if p.lastState != nil && name == p.lastOrigin {
		return p.lastState
	}
	st, ok := p.origins[name]
	if !ok {
		if len(p.origins) >= maxOrigins {
			p.evictOrigins()
		}
		st = &originState{}
		p.origins[name] = st
	}
	p.lastOrigin, p.lastState = name, st
	return st
}

// evictOrigins forgets the half of the origins with the oldest previous times.
func (p *Parser) evictOrigins() {
	type ot struct {
		name string
		t    time.Time
	}
	all := make([]ot, 0, len(p.origins))
	for n, s := range p.origins {
		all = append(all, ot{n, s.prev})
	}
	sort.Slice(all, func(i, j int) bool {
		if !all[i].t.Equal(all[j].t) {
			return all[i].t.Before(all[j].t)
		}
		return all[i].name < all[j].name
	})
	for _, o := range all[:len(all)/2] {
		p.dropPartial(p.origins[o.name])
		delete(p.origins, o.name)
	}
	p.lastState = nil
}

// detect finds the event a line reports, from its format and message. It first continues a
// multi-line SQL statement the origin is in the middle of (see sqlState), and keeps the
// origin's "last SQL delete" memory for consecutive lines only.
func (p *Parser) detect(line []byte, h *header, r *result) {
	// Apply looked the line's origin up just before: p.lastState is its state.
	st := p.lastState
	sq := &st.sql
	if sq.phase != sqlIdle {
		if isContinuation(line) {
			sq.feed(line, r)
			return
		}
		sq.phase, sq.buf = sqlIdle, sq.buf[:0]
	}
	p.detectLine(line, h, r, st)
	if sq.phase == sqlIdle && (r.event != RowsDeleted || r.via != ViaSQL) {
		sq.last, sq.lastFormat = "", ""
	}
}

// detectLine dispatches on the line's format: JSON (audit events, then structured logging),
// access lines, and the messages of every other format, recognised by key phrases anywhere
// in them so that any logging prefix works.
func (p *Parser) detectLine(line []byte, h *header, r *result, st *originState) {
	switch h.format {
	case FormatJSON:
		p.detectJSON(line, r)
		if r.event == "" {
			p.detectStructured(line, r)
		}
		return
	}
	if h.access {
		p.detectAccess(h, r)
		if r.event != "" {
			r.format = h.format
		}
		return
	}
	if ch, ok := sqlHeader(line); ok {
		st.sql.start(ch, h.format, h.logger, h.level)
		return
	}
	msg := h.msg
	if len(msg) == 0 {
		return
	}
	detectMessage(prefixOf(line, msg), msg, h.format == FormatHibernate, r)
	if r.event == "" {
		p.detectAudit(msg, r)
	}
	if r.event == "" {
		return
	}
	r.format = h.format
	if r.via == ViaAudit && bytes.Contains(msg, []byte("event=")) && r.format == FormatPlain {
		r.format = FormatLogfmt
	}
	if len(h.level) > 0 {
		r.set(FieldLevel, clip(string(h.level)))
	}
	if len(h.logger) > 0 {
		r.set(FieldLogger, clip(string(h.logger)))
	}
}

// detectAudit finds an audit event word in msg: as the first word of an audit line
// (`password_changed user_id=42 actor=alice`) anywhere after a space, or as `event=...`
// (logfmt). The key=value pairs become fields.
func (p *Parser) detectAudit(msg []byte, r *result) {
	// Words without an underscore are common English: only as the message's first word or as
	// the value of event=.
	for _, w := range p.plainWords {
		if bytes.HasPrefix(msg, w) && p.auditWordAt(msg, 0, len(w), r) {
			return
		}
		for _, pre := range [][]byte{[]byte("event="), []byte(`event="`)} {
			if i := bytes.Index(msg, append(pre[:len(pre):len(pre)], w...)); i >= 0 &&
				p.auditWordAt(msg, i+len(pre), i+len(pre)+len(w), r) {
				return
			}
		}
	}
	off := 0
	for off < len(msg) {
		j := bytes.IndexByte(msg[off:], '_')
		if j < 0 {
			return
		}
		i := off + j
		s := i
		for s > 0 && isWordByte(msg[s-1]) {
			s--
		}
		e := i + 1
		for e < len(msg) && isWordByte(msg[e]) {
			e++
		}
		off = e
		if p.auditWordAt(msg, s, e, r) {
			return
		}
	}
}

// auditWordAt checks whether msg[s:e] is an event word in audit-line position: the first word
// of an audit line, or the value of event= in logfmt. On a match it fills r.
func (p *Parser) auditWordAt(msg []byte, s, e int, r *result) bool {
	word, ok := p.words[string(msg[s:e])]
	if !ok {
		return false
	}
	endOK := e == len(msg) || msg[e] == ' ' || msg[e] == '\t'
	switch {
	case endOK && (s == 0 || msg[s-1] == ' ' || msg[s-1] == '\t'):
		r.event, r.via = word, ViaAudit
		ParseKV(msg[e:], r.set)
		return true
	case s >= 6 && string(msg[s-6:s]) == "event=" && endOK && (s == 6 || msg[s-7] == ' '):
		r.event, r.via = word, ViaAudit
		ParseKV(msg, r.set)
		return true
	case s >= 7 && string(msg[s-7:s]) == `event="` && e < len(msg) && msg[e] == '"' &&
		(s == 7 || msg[s-8] == ' '):
		r.event, r.via = word, ViaAudit
		ParseKV(msg, r.set)
		return true
	}
	return false
}

func isWordByte(c byte) bool { return c == '_' || (c >= 'a' && c <= 'z') || isDigit(c) }
