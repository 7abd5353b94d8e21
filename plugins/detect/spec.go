// Package detect is the bundled detection plugin: processor "override" (override mode) and
// processor "rules" (threshold rules over sliding windows), both parsing the Flask and Spring
// log formats with the parsers of package parse. See README.md for the configuration and
// docs/detection.md for the event fields and the rules' semantics.
package detect

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tda-dev/tda/plugins/detect/cond"
	"github.com/tda-dev/tda/plugins/detect/parse"
	"github.com/tda-dev/tda/plugins/detect/rules"
	"github.com/tda-dev/tda/sdk"
)

// Version of the plugin.
const Version = "0.2.0"

// parseFields are the attributes both processors take to configure parsing.
var parseFields = []sdk.Field{
	{Name: "timezone", Type: sdk.TypeString, Default: "UTC",
		Description: "Time zone (IANA name) of log formats whose timestamps carry none: Werkzeug, the Flask logger, Spring Boot 2, Python's basic format, syslog."},
	{Name: "login_paths", Type: sdk.TypeStringList,
		Description: "Path segments that make a 401/403 response to a POST a failed login (default: login, signin, sign_in, sign-in, authenticate, token, session, sessions)."},
	{Name: "audit_events", Type: sdk.TypeStringList,
		Description: "More event words recognised in audit lines (`invoice_voided key=value ...`), besides the built-in ones."},
	{Name: "gunicorn_formats", Type: sdk.TypeStringList,
		Description: "The app's gunicorn access_log_format strings, as written in its gunicorn config (e.g. `%({x-forwarded-for}i)s %(l)s %(u)s %(t)s \"%(r)s\" %(s)s %(b)s \"%(f)s\" \"%(a)s\"`, JSON formats too); tried in order before the built-in formats. Each needs %(s)s and %(r)s (or %(m)s and %(U)s)."},
	{Name: "trusted_proxies", Type: sdk.TypeStringList,
		Description: "CIDRs (or addresses) of the app's own proxies and load balancers. The client IP of an access line is the right-most address of its X-Forwarded-For chain (and peer) that is not in one of them (default: none, the right-most address)."},
}

var routeBlock = sdk.Block{
	Name: "route", Repeated: true,
	Description: "What an access line means when the line alone cannot say it (a failed form login re-rendered with 200, endpoints named in another language). Routes are checked in order before the built-in heuristics; the first match decides.",
	Spec: &sdk.Spec{Fields: []sdk.Field{
		{Name: "method", Type: sdk.TypeString, Description: "HTTP method(s), several separated by | (\"POST|PUT\"); empty or \"*\" matches any."},
		{Name: "path", Type: sdk.TypeString, Required: true, Description: "Path pattern: literal segments, `:name` (one segment, captured as field name), `*` (one segment), a final `**` (the rest). The query string is ignored."},
		{Name: "status", Type: sdk.TypeIntList, Description: "Statuses matched (e.g. [200]); empty matches any."},
		{Name: "event", Type: sdk.TypeString, Required: true, Description: "Event type a matching line yields; \"none\" makes it no event (the built-in heuristics are skipped)."},
		{Name: "fields", Type: sdk.TypeStringMap, Description: "Fields set on the event: a literal, or \":name\" for a capture of the path (e.g. { user_id = \":id\" })."},
	}},
}

var parserBlock = sdk.Block{
	Name: "parser", Labels: []string{"name"}, Repeated: true,
	Description: "A user-defined parser: a regex with named groups; each group becomes a field, group `time` is the event time, group `event` the event type.",
	Spec: &sdk.Spec{Fields: []sdk.Field{
		{Name: "regex", Type: sdk.TypeString, Required: true, Description: "Go (RE2) regular expression with named groups (?P<name>...)."},
		{Name: "event", Type: sdk.TypeString, Description: "Event type a match yields (or name a group `event`)."},
		{Name: "contains", Type: sdk.TypeStringList, Description: "Literal strings a line must contain before the regex runs (a fast prefilter; a literal the regex requires is added automatically)."},
		{Name: "time_layout", Type: sdk.TypeString, Description: "Go time layout of the `time` group (default: RFC 3339, access-log forms, Unix epochs)."},
	}},
}

// tablesBlock is the table policy of SQL-echo deletes.
var tablesBlock = sdk.Block{
	Name: "tables",
	Description: "Which tables' SQL deletes (SQLAlchemy, Hibernate) become rows_deleted events: a table counts when it matches an include " +
		"pattern and no exclude pattern. Globs (*, ?, [a-z]), case-insensitive, matched against the table and against schema.table. " +
		"Without the block, or for a list left out, the defaults apply; a list given replaces its default.",
	Spec: &sdk.Spec{Fields: []sdk.Field{
		{Name: "include", Type: sdk.TypeStringList,
			Description: "Tables whose deletes count (default: [\"*\"])."},
		{Name: "exclude", Type: sdk.TypeStringList,
			Description: "Tables whose deletes are routine and never count (default: " + quoteList(parse.DefaultTableExclude) + ")."},
	}},
}

func quoteList(l []string) string {
	q := make([]string, len(l))
	for i, s := range l {
		q[i] = `"` + s + `"`
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// OverrideSpec is the config schema of processor "override".
func OverrideSpec() *sdk.Spec {
	return &sdk.Spec{
		Summary: "Override mode: approved bulk work declared by the app's override lines or by an operator; alerts of overridable rules are then recorded as suppressed.",
		Description: "Parses every line (so the rules processor after it reuses the fields), tracks override_enabled / override_disabled " +
			"lines and operator overrides, and emits an audit record (event, actor, reason, until, origin) for every change, including expiry.",
		Fields: append(append([]sdk.Field(nil), parseFields...),
			sdk.Field{Name: "default_ttl", Type: sdk.TypeDuration, Default: "1h", Description: "Duration of an override declared without a ttl."},
			sdk.Field{Name: "max_ttl", Type: sdk.TypeDuration, Default: "24h", Description: "Longest override accepted; longer ttls are cut to it."},
		),
		Blocks:  []sdk.Block{parserBlock, routeBlock, tablesBlock},
		Example: `processor "override" "flags" {}`,
	}
}

// RulesSpec is the config schema of processor "rules".
func RulesSpec() *sdk.Spec {
	return &sdk.Spec{
		Summary: "Threshold rules over exact sliding windows in event time, with explained alerts.",
		Description: "Counts the events each rule matches per key in a sliding window and raises one alert per incident " +
			"when the count is more than the threshold; reminders after realert; a resolved record when the burst has drained.",
		Fields: append(append([]sdk.Field(nil), parseFields...),
			sdk.Field{Name: "lateness", Type: sdk.TypeDuration, Default: "30s",
				Description: "How far behind the newest line a line may arrive and still be counted exactly; incidents resolve this much after their window drained."},
			sdk.Field{Name: "forward_logs", Type: sdk.TypeBool, Default: false,
				Description: "Also pass the log events downstream (by default only alerts and audit records go on)."},
			sdk.Field{Name: "record_overrides", Type: sdk.TypeBool, Default: false,
				Description: "Emit the audit record of every override change, as processor \"override\" does. Set it when no override processor runs before this one: detection then takes a single processing step. Never with an override processor before (the records would be doubled)."},
			sdk.Field{Name: "default_ttl", Type: sdk.TypeDuration, Default: "1h", Description: "Duration of an override line without a ttl, when no override processor runs before."},
			sdk.Field{Name: "max_ttl", Type: sdk.TypeDuration, Default: "24h", Description: "Longest override accepted."},
		),
		Blocks: []sdk.Block{parserBlock, routeBlock, tablesBlock, {
			Name: "rule", Labels: []string{"name"}, Repeated: true, Required: true,
			Description: "A detection rule.",
			Spec: &sdk.Spec{
				Fields: []sdk.Field{
					{Name: "match", Type: sdk.TypeString, Required: true, Description: "Event type(s) counted, several separated by |, e.g. \"user_deleted|rows_deleted\"."},
					{Name: "where", Type: sdk.TypeString, Description: "Condition an event must meet to count, e.g. `path =~ \"^/api/\"`."},
					{Name: "unless", Type: sdk.TypeString, Description: "Condition that keeps an event from counting, e.g. `actor_role == admin`."},
					{Name: "threshold", Type: sdk.TypeInt, Required: true, Description: "The rule fires when the count in the window is more than this (0: any event)."},
					{Name: "window", Type: sdk.TypeDuration, Default: "60s", Description: "Length of the sliding window."},
					{Name: "group_by", Type: sdk.TypeString, Description: "Field(s) that make the key, comma-separated (e.g. \"ip\"); empty counts across everything. `origin` and `source` name where the line came from."},
					{Name: "severity", Type: sdk.TypeString, Default: "MEDIUM", Enum: []string{sdk.SeverityHigh, sdk.SeverityMedium, sdk.SeverityLow}},
					{Name: "realert", Type: sdk.TypeDuration, Default: "0s", Description: "Remind every this long while the incident stays above the threshold (0s: never)."},
					{Name: "overridable", Type: sdk.TypeBool, Default: false, Description: "Record the alert as suppressed (audit only) while override mode is active."},
					{Name: "max_keys", Type: sdk.TypeInt, Default: 100000, Description: "Keys tracked at most; beyond, the least recently seen key is evicted (counted and logged)."},
					{Name: "excerpt", Type: sdk.TypeInt, Default: 5, Description: "Lines quoted in the alert."},
					{Name: "explanation", Type: sdk.TypeString, Description: "Replaces the built-in explanation (what it means, likely cause, first steps)."},
					{Name: "require_approval", Type: sdk.TypeBool, Default: false, Description: "Count every event that no approved migration request matches (tda migrate request/approve; the agent announces approvals to the pipeline), even inside a maintenance window; the window then only exempts approved migrations. Matches the event's revision to the request's name (a Flyway version also before \" - description\")."},
				},
				Blocks: []sdk.Block{{
					Name: "maintenance_window", Repeated: true,
					Description: "Events inside the window do not count (e.g. migrations allowed on Sunday 02:00-04:00). Several allowed.",
					Spec: &sdk.Spec{Fields: []sdk.Field{
						{Name: "days", Type: sdk.TypeStringList, Description: "Weekdays (\"sun\", \"monday\", ...); default every day."},
						{Name: "start", Type: sdk.TypeString, Required: true, Description: "Start, \"HH:MM\" local to timezone."},
						{Name: "end", Type: sdk.TypeString, Required: true, Description: "End (exclusive), \"HH:MM\"; an end not after the start runs past midnight."},
						{Name: "timezone", Type: sdk.TypeString, Default: "UTC", Description: "IANA time zone of start and end."},
					}},
				}},
			},
		}},
		Example: `processor "rules" "anomalies" {
  rule "auth_failures" {
    match     = "login_failed"
    threshold = 5
    window    = "60s"
    group_by  = "ip"
    severity  = "MEDIUM"
  }
}`,
	}
}

// ParseOptions reads the parsing attributes shared by both processors.
func ParseOptions(c *sdk.Config) (parse.Options, error) {
	var o parse.Options
	loc, err := time.LoadLocation(c.String("timezone"))
	if err != nil {
		return o, c.Errorf("timezone", "unknown time zone %q: use an IANA name such as \"UTC\" or \"Europe/Paris\"", c.String("timezone"))
	}
	o.Location = loc
	if c.Has("login_paths") {
		o.LoginPaths = c.StringList("login_paths")
	}
	o.ExtraEvents = c.StringList("audit_events")
	if b := c.Block("tables"); b != nil {
		var include, exclude []string
		if b.Has("include") {
			include = append([]string{}, b.StringList("include")...)
		}
		if b.Has("exclude") {
			exclude = append([]string{}, b.StringList("exclude")...)
		}
		// Each list on its own first, so that an error points at the attribute at fault.
		if _, err := parse.NewTablePolicy(include, nil); err != nil {
			return o, b.Errorf("include", "%v", err)
		}
		if _, err := parse.NewTablePolicy(nil, exclude); err != nil {
			return o, b.Errorf("exclude", "%v", err)
		}
		pol, err := parse.NewTablePolicy(include, exclude)
		if err != nil {
			return o, b.Errorf("", "%v", err)
		}
		o.Tables = pol
	}
	if err := accessOptions(c, &o); err != nil {
		return o, err
	}
	for _, b := range c.Blocks("parser") {
		p, err := parse.NewCustom(b.Label("name"), b.String("regex"), b.String("event"),
			b.StringList("contains"), b.String("time_layout"))
		if err != nil {
			return o, b.Errorf("regex", "%v", err)
		}
		o.Custom = append(o.Custom, p)
	}
	return o, nil
}

// ParseRules builds the rules of a "rules" block.
func ParseRules(c *sdk.Config) ([]*rules.Rule, error) {
	var out []*rules.Rule
	for _, b := range c.Blocks("rule") {
		r := &rules.Rule{
			Name:        b.Label("name"),
			Threshold:   b.Int("threshold"),
			Window:      b.Duration("window"),
			Severity:    b.String("severity"),
			Realert:     b.Duration("realert"),
			Overridable: b.Bool("overridable"),
			MaxKeys:     int(b.Int("max_keys")),
			Excerpt:     int(b.Int("excerpt")),
			Explanation: b.String("explanation"),

			RequireApproval: b.Bool("require_approval"),
		}
		for _, m := range strings.Split(b.String("match"), "|") {
			if m = strings.TrimSpace(m); m != "" {
				r.Match = append(r.Match, m)
			}
		}
		if len(r.Match) == 0 {
			return nil, b.Errorf("match", "match names no event type; write e.g. \"password_changed\"")
		}
		if r.Threshold < 0 {
			return nil, b.Errorf("threshold", "threshold must not be negative")
		}
		if r.Window <= 0 {
			return nil, b.Errorf("window", "window must be longer than 0s")
		}
		if r.MaxKeys <= 0 {
			return nil, b.Errorf("max_keys", "max_keys must be at least 1")
		}
		if r.Excerpt < 0 || r.Excerpt > 100 {
			return nil, b.Errorf("excerpt", "excerpt must be between 0 and 100 lines")
		}
		for _, attr := range []string{"where", "unless"} {
			if s := strings.TrimSpace(b.String(attr)); s != "" {
				x, err := cond.Parse(s)
				if err != nil {
					return nil, b.Errorf(attr, "invalid condition: %v", err)
				}
				if attr == "where" {
					r.Where = x
				} else {
					r.Unless = x
				}
			}
		}
		for _, g := range strings.Split(b.String("group_by"), ",") {
			if g = strings.TrimSpace(g); g != "" {
				r.GroupBy = append(r.GroupBy, g)
			}
		}
		for _, mw := range b.Blocks("maintenance_window") {
			w := &rules.MaintenanceWindow{}
			var err error
			if w.Days, err = rules.ParseDays(mw.StringList("days")); err != nil {
				return nil, mw.Errorf("days", "%v", err)
			}
			if w.Start, err = rules.ParseClock(mw.String("start")); err != nil {
				return nil, mw.Errorf("start", "%v", err)
			}
			if w.End, err = rules.ParseClock(mw.String("end")); err != nil {
				return nil, mw.Errorf("end", "%v", err)
			}
			if w.Location, err = time.LoadLocation(mw.String("timezone")); err != nil {
				return nil, mw.Errorf("timezone", "unknown time zone %q: use an IANA name such as \"UTC\"", mw.String("timezone"))
			}
			r.Exemptions = append(r.Exemptions, w)
		}
		if err := r.Check(); err != nil {
			return nil, b.Errorf("", "%v", err)
		}
		out = append(out, r)
	}
	return out, nil
}

// accessOptions reads the attributes about access lines: gunicorn formats, trusted proxies
// and route blocks.
func accessOptions(c *sdk.Config, o *parse.Options) error {
	for i, f := range c.StringList("gunicorn_formats") {
		af, err := parse.CompileGunicornFormat(f)
		if err != nil {
			var fe *parse.FormatError
			d := &sdk.Diagnostic{Severity: sdk.SeverityError, Summary: "Invalid gunicorn format",
				Path: append(c.Path(), "gunicorn_formats", fmt.Sprintf("#%d", i))}
			if errors.As(err, &fe) {
				d.Detail = fmt.Sprintf("Format %d, %v. %s.", i+1, fe, strings.TrimSuffix(fe.Hint, "."))
			} else {
				d.Detail = fmt.Sprintf("Format %d: %v.", i+1, err)
			}
			return d
		}
		o.AccessFormats = append(o.AccessFormats, af)
	}
	tp, err := parse.ParseTrustedProxies(c.StringList("trusted_proxies"))
	if err != nil {
		return c.Errorf("trusted_proxies", "%v", err)
	}
	o.TrustedProxies = tp
	for _, b := range c.Blocks("route") {
		var status []int
		for _, s := range b.IntList("status") {
			status = append(status, int(max(min(s, 1000), -1))) // out of range: NewRoute says so
		}
		r, err := parse.NewRoute(b.String("method"), b.String("path"), status, b.String("event"), b.StringMap("fields"))
		if err != nil {
			attr := ""
			var re *parse.RouteError
			if errors.As(err, &re) {
				attr = re.Attr
			}
			return b.Errorf(attr, "%v", err)
		}
		o.Routes = append(o.Routes, r)
	}
	return nil
}
