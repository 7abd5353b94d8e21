package detect_test

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tda-dev/tda/plugins/detect"
	"github.com/tda-dev/tda/sdk"
	"github.com/tda-dev/tda/sdk/sdktest"
)

// audits returns the audit records other than incident updates.
func audits(events []sdk.Event) []sdk.Event {
	var out []sdk.Event
	for _, e := range events {
		if e.Kind == sdk.KindAudit && e.Field("event") != sdk.EventIncidentUpdate {
			out = append(out, e)
		}
	}
	return out
}

const overridableRules = `
rule "bulk_user_creation" {
  match       = "user_created"
  threshold   = 3
  window      = "60s"
  overridable = true
}
`

func userCreated(at time.Time, id int) []byte {
	return []byte(fmt.Sprintf("[%s] INFO in users: user_created user_id=%d actor=import actor_role=admin ip=10.0.0.5",
		at.Format("2006-01-02 15:04:05,000"), id))
}

// TestOperatorOverride: an override injected by the agent (kind audit, origin operator) is
// replaced by the override processor's audit record, suppresses the overridable rule, and
// expires at its TTL with an audit record of its own.
func TestOperatorOverride(t *testing.T) {
	c := newChain(t, ``, overridableRules, sdktest.GRPC)
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	op := sdk.Event{Kind: sdk.KindAudit, Origin: "operator", Time: now,
		Fields: map[string]string{"event": "override_enabled", "actor": "dana", "reason": "reindex users", "ttl": "30m"}}
	var lines [][]byte
	for i := 0; i < 5; i++ {
		lines = append(lines, userCreated(now.Add(time.Duration(i)*time.Second), i))
	}
	out := c.process(append([]sdk.Event{op}, logEvents(lines, "app.log")...), sdk.Watermark{Time: now.Add(5 * time.Second)})
	aud := audits(out)
	if len(aud) != 1 {
		t.Fatalf("want one audit record, got %d: %v", len(aud), out)
	}
	f := aud[0].Fields
	if f["event"] != "override_enabled" || f["actor"] != "dana" || f["reason"] != "reindex users" ||
		f["until"] != "2026-11-29T12:30:00.000000000Z" || f["origin"] != "operator" {
		t.Fatalf("audit record fields %v", f)
	}
	al := alertsOf(out)
	if len(al) != 1 || al[0].Alert.State != sdk.StateSuppressed || al[0].Alert.SuppressedBy != "dana" ||
		al[0].Alert.OverrideReason != "reindex users" {
		t.Fatalf("want one suppressed alert, got %v", al)
	}
	// Later lines past the TTL: the expiry is recorded, and a new burst pages.
	lines = lines[:0]
	later := now.Add(31 * time.Minute)
	for i := 0; i < 5; i++ {
		lines = append(lines, userCreated(later.Add(time.Duration(i)*time.Second), 100+i))
	}
	out = c.process(logEvents(lines, "app.log"), sdk.Watermark{Time: later.Add(5 * time.Second)})
	aud = audits(out)
	if len(aud) != 1 || aud[0].Fields["event"] != "override_expired" || aud[0].Fields["actor"] != "dana" ||
		!aud[0].Time.Equal(now.Add(30*time.Minute)) {
		t.Fatalf("want the expiry record, got %v", aud)
	}
	var states []string
	for _, a := range alertsOf(out) {
		states = append(states, a.Alert.State)
	}
	if strings.Join(states, ",") != "resolved,firing" {
		t.Fatalf("after expiry: states %v", states)
	}
}

// TestOverrideExpiresWhileIdle: when the input goes quiet, the wall clock in the watermark
// moves event time on and the override expires without a new line.
func TestOverrideExpiresWhileIdle(t *testing.T) {
	p := sdktest.NewProcessor(t, detect.OverrideComponent(), `allow_origins = ["app.log"]`, sdktest.WithMode(sdktest.Direct))
	t0 := time.Date(2026, 11, 29, 10, 50, 0, 0, time.UTC)
	line := []byte(`[2026-11-29 10:50:00,000] WARNING in admin: override_enabled actor=carol reason="partner bulk import" ttl=10m`)
	out := p.ProcessAt(logEvents([][]byte{line}, "app.log"), sdk.Watermark{Time: t0})
	if len(audits(out)) != 1 || len(out) != 2 {
		t.Fatalf("enable: %v", out)
	}
	if out[0].Field("event") != "override_enabled" || out[0].Kind != sdk.KindLog {
		t.Fatalf("the log line must pass through with its fields: %+v", out[0])
	}
	if got := audits(p.ProcessAt(nil, sdk.Watermark{Time: t0.Add(5 * time.Minute)})); len(got) != 0 {
		t.Fatalf("expired too early: %v", got)
	}
	got := audits(p.ProcessAt(nil, sdk.Watermark{Time: t0.Add(11 * time.Minute)}))
	if len(got) != 1 || got[0].Fields["event"] != "override_expired" {
		t.Fatalf("no expiry while idle: %v", got)
	}
}

func TestOverrideDisabledByApp(t *testing.T) {
	c := newChain(t, `allow_origins = ["/var/log/*/spring.log"]`, overridableRules, sdktest.Direct)
	lines := [][]byte{
		[]byte(`2026-11-29T10:00:00.000Z  WARN 1 --- [main] c.e.demo.Admin : override_enabled actor=bob reason="cleanup" ttl=2h`),
		[]byte(`2026-11-29T10:05:00.000Z  WARN 1 --- [main] c.e.demo.Admin : override_disabled actor=bob`),
	}
	out := c.process(logEvents(lines, "/var/log/app/spring.log"), sdk.Watermark{})
	aud := audits(out)
	if len(aud) != 2 || aud[1].Fields["event"] != "override_disabled" || aud[1].Fields["until"] != "2026-11-29T10:05:00.000000000Z" {
		t.Fatalf("audit records %v", aud)
	}
}

// TestRestartMidAttack splits each corpus file in the middle of every incident: the first
// part runs in one pair of processors, their snapshots are restored into new ones (through
// the protocol), which take the rest. The alerts are exactly those of an uninterrupted run,
// and replaying the batch after the snapshot gives only delivery keys already seen.
func TestRestartMidAttack(t *testing.T) {
	blocks := shippedBlocks(t)
	for _, name := range []string{"flask-sample.log", "spring-sample.log"} {
		lines := readLines(t, filepath.Join("testdata", "corpus", name))
		full := alertsOf(newChain(t, blocks["override"], blocks["rules"], sdktest.Direct).replay(lines, name, 100))
		for _, split := range []int{260 + 5, 520, 700 + 4, 880, 1000, 1240, 1450, 1271 + 0} {
			if split >= len(lines) {
				continue
			}
			a := newChain(t, blocks["override"], blocks["rules"], sdktest.GRPC)
			got := alertsOf(a.process(logEvents(lines[:split], name), sdk.Watermark{}))
			so, sr := a.override.Snapshot(), a.rules.Snapshot()
			b := newChain(t, blocks["override"], blocks["rules"], sdktest.GRPC)
			b.override.Restore(so)
			b.rules.Restore(sr)
			rest := lines[split:]
			next := min(50, len(rest))
			firstAfter := alertsOf(b.process(logEvents(rest[:next], name), sdk.Watermark{}))
			got = append(got, firstAfter...)
			got = append(got, alertsOf(b.replay(rest[next:], name, 100))...)
			if g, w := keysOf(got), keysOf(full); g != w {
				t.Fatalf("%s split at line %d:\n got %s\nwant %s", name, split, g, w)
			}
			// The agent restores the last snapshot again and replays the same batch.
			c := newChain(t, blocks["override"], blocks["rules"], sdktest.GRPC)
			c.override.Restore(so)
			c.rules.Restore(sr)
			again := alertsOf(c.process(logEvents(rest[:next], name), sdk.Watermark{}))
			if g, w := keysOf(again), keysOf(firstAfter); g != w {
				t.Fatalf("%s split %d: replay after restore differs:\n got %s\nwant %s", name, split, g, w)
			}
		}
	}
}

func keysOf(alerts []sdk.Event) string {
	var s []string
	for _, a := range alerts {
		s = append(s, a.Alert.Rule+":"+a.Alert.DeliveryKey()+"@"+a.Time.Format(time.RFC3339Nano))
	}
	return strings.Join(s, "\n")
}

func TestConfigErrorsArePositioned(t *testing.T) {
	tests := []struct{ src, want string }{
		{"rule \"r\" {\n  match = \"x\"\n  threshold = 1\n  window = \"0s\"\n}", "4:12: window must be longer than 0s"},
		{"rule \"r\" {\n  match = \"x\"\n  threshold = 1\n  unless = \"actor_role ==\"\n}", "4:12: invalid condition"},
		{"rule \"r\" {\n  match = \"x\"\n  threshold = 1\n  severity = \"HIHG\"\n}", `Did you mean "HIGH"?`},
		{"timezone = \"Mars/Base\"\nrule \"r\" {\n  match = \"x\"\n  threshold = 1\n}", `1:12: unknown time zone "Mars/Base"`},
		{"rule \"r\" {\n  match = \"x\"\n  threshold = 1\n  maintenance_window {\n    days = [\"sunday\", \"funday\"]\n    start = \"02:00\"\n    end = \"04:00\"\n  }\n}", `5:12: unknown weekday "funday"`},
		{"rule \"r\" {\n  match = \"x\"\n  threshold = 1\n  maintenance_window {\n    start = \"2am\"\n    end = \"04:00\"\n  }\n}", `5:13: invalid time of day "2am"`},
		{"parser \"p\" {\n  regex = \"(unclosed\"\n  event = \"x\"\n}\nrule \"r\" {\n  match = \"x\"\n  threshold = 1\n}", `2:11: invalid regex`},
		{"rule \"r\" {\n  match = \"x\"\n  treshold = 1\n}", `Did you mean "threshold"?`},
		{"rule \"r\" {\n  match = \"x\"\n  threshold = 1\n  group_by = [\"ip\"]\n}", `4:14: Incorrect attribute value type`},
		{"tables {\n  exclude = [\"*token*\", \"[a-\"]\n}\nrule \"r\" {\n  match = \"x\"\n  threshold = 1\n}", `2:13: table pattern "[a-" is not a valid glob`},
		{"tables {\n  include = [\"\"]\n}\nrule \"r\" {\n  match = \"x\"\n  threshold = 1\n}", `2:13: an empty table pattern matches nothing`},
		{"rule \"m\" {\n  match = \"migration_started\"\n  threshold = 0\n  require_approval = true\n  maintenance_window {\n    start = \"02:00\"\n    end = \"04:00\"\n  }\n}",
			`4:22: require_approval takes no maintenance_window`},
		{"rule \"r\" {\n  match = \"x\"\n  threshold = 1\n  window = \"400d\"\n}", `4:12: window must be at most`},
		{"max_future_skew = \"0s\"\nrule \"r\" {\n  match = \"x\"\n  threshold = 1\n}", `1:19: max_future_skew must be longer than 0s`},
		{"allow_origins = [\"[\"]\nrule \"r\" {\n  match = \"x\"\n  threshold = 1\n}", `invalid pattern "["`},
		{"lateness = \"-1s\"\nrule \"r\" {\n  match = \"x\"\n  threshold = 1\n}", `1:12: lateness must be between 0s and`},
	}
	for _, tt := range tests {
		// want is "line:col: message": some diagnostic must be at that position and say it.
		pos, msg := "", tt.want
		if m := regexp.MustCompile(`^(\d+:\d+): (.*)$`).FindStringSubmatch(tt.want); m != nil {
			pos, msg = m[1]+":", m[2]
		}
		diags := sdktest.Validate(t, detect.RulesComponent(), tt.src)
		found := false
		for _, d := range diags {
			found = found || strings.HasPrefix(d, pos) && strings.Contains(d, msg)
		}
		if !found {
			t.Errorf("config:\n%s\ndiagnostics %q do not contain %q", tt.src, diags, tt.want)
		}
	}
	if d := sdktest.Validate(t, detect.RulesComponent(), shippedBlocks(t)["rules"]); len(d) != 0 {
		t.Fatalf("shipped rules block: %v", d)
	}
	if d := sdktest.Validate(t, detect.OverrideComponent(), `max_ttl = "10m"`); !strings.Contains(strings.Join(d, ""), "must not be shorter than default_ttl") {
		t.Fatalf("override ttl check: %v", d)
	}
}

// TestUserParser: a regex parser declared in HCL yields events the rules count.
func TestUserParser(t *testing.T) {
	src := `
parser "nginx_wp_login" {
  regex       = "^(?P<ip>\\S+) \\S+ \\S+ \\[(?P<time>[^\\]]+)\\] \"POST /wp-login\\.php[^\"]*\" (?P<status>401|403) "
  event       = "login_failed"
  time_layout = "02/Jan/2006:15:04:05 -0700"
}
rule "auth_failures" {
  match     = "login_failed"
  threshold = 2
  group_by  = "ip"
}
`
	p := sdktest.NewProcessor(t, detect.RulesComponent(), src)
	var lines [][]byte
	for i := 0; i < 3; i++ {
		lines = append(lines, []byte(fmt.Sprintf(`203.0.113.50 - - [29/Nov/2026:10:00:0%d +0100] "POST /wp-login.php HTTP/1.1" 401 12 "-" "x"`, i)))
	}
	out := alertsOf(p.ProcessAt(logEvents(lines, "nginx.log"), sdk.Watermark{}))
	if len(out) != 1 || out[0].Alert.Key != "203.0.113.50" || !out[0].Time.Equal(time.Date(2026, 11, 29, 9, 0, 2, 0, time.UTC)) {
		t.Fatalf("got %v", out)
	}
}

// TestParsedOnce: the rules processor reuses what the override processor parsed; a field
// set upstream wins over re-parsing the line.
func TestParsedOnce(t *testing.T) {
	p := sdktest.NewProcessor(t, detect.RulesComponent(), `
rule "r" {
  match     = "password_changed"
  threshold = 0
  group_by  = "actor"
}`, sdktest.WithMode(sdktest.Direct))
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ev := sdk.Event{Kind: sdk.KindLog, Time: at, Line: []byte("unparseable"),
		Fields: map[string]string{"event": "password_changed", "actor": "from-upstream"}}
	out := alertsOf(p.Process([]sdk.Event{ev}))
	if len(out) != 1 || out[0].Alert.Key != "from-upstream" || !out[0].Time.Equal(at) {
		t.Fatalf("got %v", out)
	}
}

// TestRulesAloneRecordsOverrides: with record_overrides, the rules processor alone gives the
// alerts and the override audit records of the override + rules pair, in one processing step.
func TestRulesAloneRecordsOverrides(t *testing.T) {
	blocks := shippedBlocks(t)
	// Recording overrides itself, rules decides which origins may declare them.
	single := "record_overrides = true\nallow_origins = [\"flask-*.log\"]\n" + blocks["rules"]
	for _, name := range []string{"flask-sample.log", "spring-sample.log"} {
		lines := readLines(t, filepath.Join("testdata", "corpus", name))
		pair := newChain(t, blocks["override"], blocks["rules"], sdktest.Direct).replay(lines, name, 300)
		p := sdktest.NewProcessor(t, detect.RulesComponent(), single, sdktest.WithMode(sdktest.GRPC),
			sdktest.WithInstance("processor.rules.anomalies"))
		var alone []sdk.Event
		for i := 0; i < len(lines); i += 300 {
			alone = append(alone, p.Process(logEvents(lines[i:min(i+300, len(lines))], name))...)
		}
		alone = append(alone, p.ProcessAt(nil, sdk.Watermark{Final: true})...)
		if g, w := keysOf(alertsOf(alone)), keysOf(alertsOf(pair)); g != w {
			t.Fatalf("%s alerts:\n got %s\nwant %s", name, g, w)
		}
		if g, w := auditString(alone), auditString(pair); g != w {
			t.Fatalf("%s audit records:\n got %s\nwant %s", name, g, w)
		}
	}
	// An operator's declaration is replaced by its record.
	p := sdktest.NewProcessor(t, detect.RulesComponent(), single)
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	op := sdk.Event{Kind: sdk.KindAudit, Origin: "operator",
		Fields: map[string]string{"event": "override_enabled", "actor": "dana", "reason": "reindex", "ttl": "30m"}}
	out := p.ProcessAt([]sdk.Event{op}, sdk.Watermark{Time: now})
	if len(out) != 1 || out[0].Fields["until"] != "2026-11-29T12:30:00.000000000Z" || out[0].Fields["origin"] != "operator" {
		t.Fatalf("operator override: %v", out)
	}
}

func auditString(evs []sdk.Event) string {
	var s []string
	for _, e := range audits(evs) {
		s = append(s, fmt.Sprintf("%s %s %s %s %s %s", e.Time.Format(time.RFC3339Nano), e.Fields["event"],
			e.Fields["actor"], e.Fields["reason"], e.Fields["until"], e.Fields["origin"]))
	}
	return strings.Join(s, "\n")
}

// TestTablePolicyConfig: by default a delete from a token table is not counted (the alert
// comes with the users delete a second later); a tables block that no longer excludes tokens
// makes it count.
func TestTablePolicyConfig(t *testing.T) {
	rule := `
rule "deletes" {
  match     = "rows_deleted"
  threshold = 0
}`
	lines := [][]byte{
		[]byte("2026-12-05 15:46:28,123 INFO sqlalchemy.engine.Engine DELETE FROM refresh_tokens WHERE refresh_tokens.user_id = ?"),
		[]byte("2026-12-05 15:46:29,123 INFO sqlalchemy.engine.Engine DELETE FROM \"public\".\"users\" WHERE id = ?"),
	}
	tokens, users := time.Date(2026, 12, 5, 15, 46, 28, 123e6, time.UTC), time.Date(2026, 12, 5, 15, 46, 29, 123e6, time.UTC)
	for _, tt := range []struct {
		config string
		at     time.Time
	}{
		{rule, users},
		{"tables {\n  exclude = [\"*session*\"]\n}\n" + rule, tokens},
		{"tables {\n  include = [\"public.*\"]\n  exclude = []\n}\n" + rule, users},
	} {
		p := sdktest.NewProcessor(t, detect.RulesComponent(), tt.config, sdktest.WithMode(sdktest.Direct))
		out := alertsOf(p.Process(logEvents(lines, "app.log")))
		if len(out) != 1 || !out[0].Time.Equal(tt.at) {
			t.Errorf("config:\n%s\nalerts %v, want one at %s", tt.config, out, tt.at)
		}
	}
}

// TestShowSQLAndLoggerCountOnce: Hibernate with both show_sql and the org.hibernate.SQL logger
// logs each DELETE twice; eleven deletions are eleven events for bulk_deletion, through the
// override and rules processors as the shipped pipeline runs them.
func TestShowSQLAndLoggerCountOnce(t *testing.T) {
	at := time.Date(2026, 12, 5, 15, 46, 0, 0, time.UTC)
	var lines [][]byte
	for i := 0; i < 11; i++ {
		ts := at.Add(time.Duration(i) * time.Second).Format("2006-01-02T15:04:05.000Z")
		lines = append(lines,
			[]byte(ts+" DEBUG 1 --- [nio-8080-exec-3] org.hibernate.SQL                        : delete from users where id=?"),
			[]byte("Hibernate: delete from users where id=?"))
	}
	rule := func(threshold int) string {
		return fmt.Sprintf("rule \"bulk_deletion\" {\n  match = \"user_deleted|rows_deleted\"\n  threshold = %d\n  window = \"60s\"\n}", threshold)
	}
	for _, tt := range []struct {
		threshold int
		alerts    int
	}{{10, 1}, {11, 0}} {
		o := sdktest.NewProcessor(t, detect.OverrideComponent(), "", sdktest.WithMode(sdktest.Direct))
		r := sdktest.NewProcessor(t, detect.RulesComponent(), rule(tt.threshold), sdktest.WithMode(sdktest.Direct))
		out := alertsOf(r.Process(o.Process(logEvents(lines, "shop"))))
		if len(out) != tt.alerts {
			t.Fatalf("threshold %d: %d alerts %v, want %d", tt.threshold, len(out), out, tt.alerts)
		}
		if tt.alerts == 1 && out[0].Alert.Count != 11 {
			t.Fatalf("count %d, want 11", out[0].Alert.Count)
		}
	}
}

// TestShippedOneStepIsTheTwoSteps: the default configuration's one rules block
// (configs/agent.hcl, record_overrides) gives exactly the alerts and the override audit
// records of the two-step form (configs/detect.hcl: override, then rules) on the corpus and
// on the real Flask app's captured logs, whatever the batch size, both over the protocol as
// the agent runs them.
func TestShippedOneStepIsTheTwoSteps(t *testing.T) {
	blocks := shippedBlocks(t)
	one := defaultRulesBlock(t)
	corpus, _ := filepath.Glob(filepath.Join("testdata", "corpus", "*.log"))
	realapp, _ := filepath.Glob(filepath.Join("realapp", "testdata", "logs", "*.log"))
	if len(corpus) < 2 || len(realapp) < 9 {
		t.Fatalf("fixtures missing: %d corpus logs, %d real-app logs", len(corpus), len(realapp))
	}
	alertsSeen := 0
	for _, path := range append(corpus, realapp...) {
		lines := readLines(t, path)
		// The real app's logs as an allowed origin, so that its override lines count too.
		origin := "flask-" + filepath.Base(path)
		for _, batch := range []int{7, 300} {
			t.Run(fmt.Sprintf("%s/%d", path, batch), func(t *testing.T) {
				pair := newChain(t, blocks["override"], blocks["rules"], sdktest.GRPC).replay(lines, origin, batch)
				p := sdktest.NewProcessor(t, detect.RulesComponent(), one, sdktest.WithMode(sdktest.GRPC),
					sdktest.WithInstance("processor.rules.anomalies"))
				var alone []sdk.Event
				for i := 0; i < len(lines); i += batch {
					alone = append(alone, p.Process(logEvents(lines[i:min(i+batch, len(lines))], origin))...)
				}
				alone = append(alone, p.ProcessAt(nil, sdk.Watermark{Final: true})...)
				if g, w := alertString(alertsOf(alone)), alertString(alertsOf(pair)); g != w {
					t.Fatalf("alerts:\n got %s\nwant %s", g, w)
				}
				if g, w := auditString(alone), auditString(pair); g != w {
					t.Fatalf("audit records:\n got %s\nwant %s", g, w)
				}
				alertsSeen += len(alertsOf(pair))
			})
		}
	}
	if alertsSeen == 0 {
		t.Fatal("no alert in any fixture: the comparison proves nothing")
	}
}

// alertString is every alert whole (rule, key, state, counts, excerpt, times), one a line.
func alertString(evs []sdk.Event) string {
	var s []string
	for _, e := range evs {
		b, err := json.Marshal(e.Alert)
		if err != nil {
			panic(err)
		}
		s = append(s, e.Time.Format(time.RFC3339Nano)+" "+string(b))
	}
	return strings.Join(s, "\n")
}
