package parse

import (
	"bytes"
	"sort"
	"strconv"
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

	tables *TablePolicy

	origins    map[string]*originState
	lastOrigin string
	lastState  *originState
	buf        []byte
	r          result
	// ignored is LastIgnored's answer.
	ignored string
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
}

// New returns a parser.
func New(o Options) *Parser {
	p := &Parser{loc: o.Location, custom: o.Custom, loginPaths: map[string]bool{},
		words: map[string]string{}, origins: map[string]*originState{}, tables: o.Tables}
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
		return ev.Fields[FieldEvent]
	}
	line := ev.Line
	if bytes.IndexByte(line, 0x1b) >= 0 {
		p.buf = stripANSI(p.buf, line)
		line = p.buf
	}
	h := scan(line, p.loc)
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

	// Event time: Docker's timestamp when there is one, else the line's own, else the
	// previous line's of the same origin, else what the source said.
	switch {
	case isDocker(ev) && !ev.Time.IsZero():
	case hasTime:
		ev.Time = lineTime
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

// detectAccess maps an access line to an event: failed logins (401/403 on a login path),
// password changes (POST/PUT/PATCH on a password path), user creation (POST .../users 201)
// and deletion (DELETE .../users/<id> 2xx).
func (p *Parser) detectAccess(h *header, r *result) {
	method := h.method
	status := h.status
	if len(method) == 0 || len(h.path) == 0 {
		return
	}
	get := method[0] == 'G' || method[0] == 'H' || method[0] == 'O' // GET, HEAD, OPTIONS
	if get {
		return
	}
	path := h.path
	segs := splitPath(path)
	admin := false
	for _, s := range segs {
		if string(s) == "admin" {
			admin = true
			break
		}
	}
	ok2xx := status >= 200 && status < 300
	write := string(method) == "POST" || string(method) == "PUT" || string(method) == "PATCH"
	switch {
	case (status == 401 || status == 403) && string(method) == "POST" && p.isLoginPath(segs):
		r.event = LoginFailed
	case write && ok2xx && passwordPath(segs):
		r.event = PasswordChanged
	case string(method) == "POST" && len(segs) > 0 && (status == 201 && isUsersSeg(segs[len(segs)-1]) ||
		(status == 201 || status == 302) && isSignupSeg(segs[len(segs)-1])):
		r.event = UserCreated
	case string(method) == "DELETE" && ok2xx && len(segs) >= 2 && isUsersSeg(segs[len(segs)-2]):
		r.event = UserDeleted
		r.set(FieldUserID, clip(string(segs[len(segs)-1])))
	default:
		return
	}
	r.via = ViaHTTP
	r.set(FieldIP, clip(string(h.ip)))
	r.set(FieldMethod, string(method))
	r.set(FieldPath, clip(string(path)))
	r.set(FieldStatus, strconv.Itoa(status))
	if admin {
		r.set(FieldActorRole, "admin")
	}
}

func splitPath(p []byte) [][]byte {
	var segs [][]byte
	for _, s := range bytes.Split(p, []byte("/")) {
		if len(s) > 0 {
			segs = append(segs, s)
		}
		if len(segs) > 32 {
			break
		}
	}
	return segs
}

func (p *Parser) isLoginPath(segs [][]byte) bool {
	for _, s := range segs {
		if p.loginPaths[strings.ToLower(string(s))] {
			return true
		}
	}
	return false
}

func passwordPath(segs [][]byte) bool {
	found := false
	for _, s := range segs {
		ls := bytes.ToLower(s)
		if bytes.Contains(ls, []byte("forgot")) {
			return false
		}
		if bytes.Contains(ls, []byte("password")) {
			found = true
		}
	}
	return found
}

func isUsersSeg(s []byte) bool {
	return string(s) == "users" || string(s) == "accounts" || string(s) == "user"
}

func isSignupSeg(s []byte) bool {
	return string(s) == "signup" || string(s) == "register" || string(s) == "sign-up" || string(s) == "sign_up"
}
