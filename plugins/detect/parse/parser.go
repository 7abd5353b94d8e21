package parse

import (
	"bytes"
	"encoding/json"
	"net/netip"
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

	accessFormats []*AccessFormat
	trusted       []netip.Prefix
	routes        []*Route

	origins    map[string]*originState
	lastOrigin string
	lastState  *originState
	buf        []byte
	r          result
	// envBuf holds a decoded Docker json-file line, joinBuf a joined CRI line; pending is
	// the size of all origins' held CRI parts (bounded by maxPartialPending).
	envBuf, joinBuf []byte
	pending         int
}

type originState struct {
	prev  time.Time
	audit uint8
	// partial holds the CRI `P` parts of a line until its `F` part, per stream (envelope.go).
	partial [2][]byte
}

// New returns a parser.
func New(o Options) *Parser {
	p := &Parser{loc: o.Location, custom: o.Custom, loginPaths: map[string]bool{},
		words: map[string]string{}, origins: map[string]*originState{},
		accessFormats: o.AccessFormats, trusted: o.TrustedProxies, routes: o.Routes}
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
}

func (r *result) reset() {
	r.event, r.via, r.format, r.n = "", "", "", 0
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
	if Parsed(ev) {
		if !ev.Time.IsZero() {
			st.prev = ev.Time
		}
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
		if r.event == "" && !hasTime {
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
	// An origin whose app reports an event type through audit lines has it counted once:
	// framework lines (access lines, SQL echo, Spring Security) for that type are ignored.
	if bit := supersedeBit(r.event); bit != 0 {
		switch r.via {
		case ViaAudit:
			st.audit |= bit
		case ViaHTTP, ViaSQL, ViaSecurity:
			if st.audit&bit != 0 && (r.event != RowsDeleted || strings.Contains(r.get(FieldTable), "user")) {
				return ""
			}
		}
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

// detect finds the event a line reports, from its format and message.
func (p *Parser) detect(line []byte, h *header, r *result) {
	switch h.format {
	case FormatJSON:
		p.detectJSON(line, r)
		return
	}
	if h.access {
		p.detectAccess(h, r)
		if r.event != "" {
			r.format = h.format
		}
		return
	}
	msg := h.msg
	if len(msg) == 0 {
		return
	}
	switch msg[0] {
	case 'A':
		if bytes.HasPrefix(msg, []byte("Authentication event AuthenticationFailure")) {
			detectSpringSecurity(msg, r)
		}
	case 'M':
		if bytes.HasPrefix(msg, []byte("Migrating schema ")) {
			detectFlyway(msg, r)
		}
	case 'C':
		if bytes.HasPrefix(msg, []byte("ChangeSet ")) && bytes.Contains(msg, []byte(" ran successfully")) {
			detectLiquibase(msg, r)
		}
	case 'R':
		if h.format == FormatAlembic || bytes.HasPrefix(h.logger, []byte("alembic")) {
			detectAlembic(msg, r)
		}
	case 'd', 'D':
		if h.format == FormatHibernate || bytes.HasSuffix(h.logger, []byte("hibernate.SQL")) ||
			bytes.HasPrefix(h.logger, []byte("sqlalchemy.engine")) {
			detectSQLDelete(msg, r)
		}
	}
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

// detectSpringSecurity: `Authentication event AuthenticationFailureBadCredentialsEvent: alice;
// details: WebAuthenticationDetails [RemoteIpAddress=203.0.113.9, SessionId=null]; ...`.
func detectSpringSecurity(msg []byte, r *result) {
	r.event, r.via = LoginFailed, ViaSecurity
	rest := msg[len("Authentication event "):]
	if c := bytes.Index(rest, []byte(": ")); c >= 0 {
		r.set("failure", clip(string(rest[:c])))
		user := rest[c+2:]
		if sc := bytes.Index(user, []byte("; details")); sc >= 0 {
			user = user[:sc]
		} else if sc := bytes.IndexByte(user, ';'); sc >= 0 {
			user = user[:sc]
		}
		r.set(FieldUsername, clip(string(bytes.TrimSpace(user))))
	}
	if i := bytes.Index(msg, []byte("RemoteIpAddress=")); i >= 0 {
		ip := msg[i+len("RemoteIpAddress="):]
		if e := bytes.IndexAny(ip, ",]; "); e >= 0 {
			ip = ip[:e]
		}
		r.set(FieldIP, clip(string(ip)))
	}
}

func unquoteIdent(b []byte) []byte {
	b = bytes.TrimSpace(b)
	return bytes.Trim(b, "`\"'")
}

// detectFlyway: "Migrating schema `x` to version "2 - add table"" (also Flyway's CLI).
func detectFlyway(msg []byte, r *result) {
	rest := msg[len("Migrating schema "):]
	i := bytes.Index(rest, []byte(" to version "))
	if i < 0 {
		return
	}
	r.event, r.via = MigrationStarted, ViaMigration
	r.set(FieldTool, "flyway")
	r.set("schema", clip(string(unquoteIdent(rest[:i]))))
	rev := rest[i+len(" to version "):]
	r.set(FieldRevision, clip(string(unquoteIdent(rev))))
}

// detectLiquibase: "ChangeSet db/changelog/master.yaml::3::alice ran successfully in 15ms".
func detectLiquibase(msg []byte, r *result) {
	rest := msg[len("ChangeSet "):]
	e := bytes.Index(rest, []byte(" ran successfully"))
	if e < 0 {
		return
	}
	id := rest[:e]
	r.event, r.via = MigrationStarted, ViaMigration
	r.set(FieldTool, "liquibase")
	r.set(FieldRevision, clip(string(id)))
	if a := bytes.LastIndex(id, []byte("::")); a >= 0 {
		r.set(FieldActor, clip(string(id[a+2:])))
	}
}

// detectAlembic: "Running upgrade 3ab8b2dfb055 -> 28af9800143f, add users.last_login".
func detectAlembic(msg []byte, r *result) {
	var rest []byte
	switch {
	case bytes.HasPrefix(msg, []byte("Running upgrade ")):
		rest = msg[len("Running upgrade "):]
	case bytes.HasPrefix(msg, []byte("Running downgrade ")):
		rest = msg[len("Running downgrade "):]
		r.set("direction", "downgrade")
	default:
		return
	}
	r.event, r.via = MigrationStarted, ViaMigration
	r.set(FieldTool, "alembic")
	if a := bytes.Index(rest, []byte("-> ")); a >= 0 {
		to := rest[a+3:]
		if c := bytes.IndexByte(to, ','); c >= 0 {
			r.set("description", clip(string(bytes.TrimSpace(to[c+1:]))))
			to = to[:c]
		}
		r.set(FieldRevision, clip(string(bytes.TrimSpace(to))))
		if from := bytes.TrimSpace(rest[:a]); len(from) > 0 {
			r.set("from_revision", clip(string(from)))
		}
	}
}

// detectSQLDelete: "delete from users where id=?" / "DELETE FROM users WHERE users.id = ...".
func detectSQLDelete(msg []byte, r *result) {
	if len(msg) < 12 || !bytes.EqualFold(msg[:12], []byte("delete from ")) {
		return
	}
	rest := bytes.TrimLeft(msg[12:], " ")
	end := bytes.IndexAny(rest, " ;\t")
	if end < 0 {
		end = len(rest)
	}
	r.event, r.via = RowsDeleted, ViaSQL
	r.set(FieldTable, clip(strings.ToLower(string(unquoteIdent(rest[:end])))))
	if !bytes.Contains(bytes.ToLower(rest[end:]), []byte("where")) {
		r.set("unbounded", "true")
	}
}

// detectJSON handles JSON lines with an "event" member naming an audit event.
func (p *Parser) detectJSON(line []byte, r *result) {
	if !bytes.Contains(line, []byte(`"event"`)) || (bytes.IndexByte(line, '_') < 0 && len(p.plainWords) == 0) {
		return
	}
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		return
	}
	evName, _ := m[FieldEvent].(string)
	word, ok := p.words[evName]
	if !ok {
		return
	}
	r.event, r.via, r.format = word, ViaAudit, FormatJSON
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		switch v := m[k].(type) {
		case string:
			r.set(k, clip(v))
		case json.Number:
			r.set(k, v.String())
		case bool:
			r.set(k, strconv.FormatBool(v))
		}
	}
	for _, k := range []string{"ts", "time", "timestamp", "@timestamp"} {
		if s := r.get(k); s != "" {
			r.set("ts", s)
			break
		}
	}
}

// structuredTime finds the time of a JSON or logfmt line that is not an event.
func (p *Parser) structuredTime(line []byte, format string) (time.Time, bool) {
	switch format {
	case FormatJSON:
		for _, k := range []string{`"ts":`, `"time":`, `"timestamp":`, `"@timestamp":`} {
			i := bytes.Index(line, []byte(k))
			if i < 0 {
				continue
			}
			v := bytes.TrimLeft(line[i+len(k):], " ")
			if len(v) > 0 && v[0] == '"' {
				v = v[1:]
				if e := bytes.IndexByte(v, '"'); e >= 0 {
					return ParseAny(string(v[:e]), p.loc)
				}
				continue
			}
			e := 0
			for e < len(v) && (isDigit(v[e]) || v[e] == '.') {
				e++
			}
			return ParseAny(string(v[:e]), p.loc)
		}
	case FormatPlain:
		// logfmt: the first token is a key=value pair.
		sp := bytes.IndexByte(line, ' ')
		if sp < 0 {
			sp = len(line)
		}
		if bytes.IndexByte(line[:sp], '=') < 0 {
			return time.Time{}, false
		}
		for _, k := range []string{"ts=", "time="} {
			i := bytes.Index(line, []byte(k))
			if i < 0 || (i > 0 && line[i-1] != ' ') {
				continue
			}
			v := line[i+len(k):]
			if len(v) > 0 && v[0] == '"' {
				v = v[1:]
				if e := bytes.IndexByte(v, '"'); e >= 0 {
					v = v[:e]
				}
			} else if e := bytes.IndexByte(v, ' '); e >= 0 {
				v = v[:e]
			}
			return ParseAny(string(v), p.loc)
		}
	}
	return time.Time{}, false
}
