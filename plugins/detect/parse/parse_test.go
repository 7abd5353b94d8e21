package parse

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tda-dev/tda/sdk"
)

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t.UTC()
}

func fieldsString(f map[string]string) string {
	var kv []string
	for k, v := range f {
		kv = append(kv, k+"="+v)
	}
	sort.Strings(kv)
	return strings.Join(kv, " ")
}

func TestFormats(t *testing.T) {
	tests := []struct {
		name, line string
		time       string // RFC 3339; "" = keep the previous line's time
		fields     string // sorted k=v; "" = not an event
	}{
		{"werkzeug 401 login", `172.22.0.1 - - [11/Sep/2026 15:03:26] "POST /login HTTP/1.1" 401 -`,
			"2026-09-11T15:03:26Z", "event=login_failed format=werkzeug ip=172.22.0.1 method=POST path=/login status=401 via=http"},
		{"werkzeug coloured", "172.22.0.1 - - [11/Sep/2026 15:03:26] \"\x1b[31m\x1b[1mPOST /login HTTP/1.1\x1b[0m\" 401 -",
			"2026-09-11T15:03:26Z", "event=login_failed format=werkzeug ip=172.22.0.1 method=POST path=/login status=401 via=http"},
		{"werkzeug 200 is nothing", `172.22.0.1 - - [11/Sep/2026 15:03:26] "GET /api/users/me HTTP/1.1" 200 -`, "2026-09-11T15:03:26Z", ""},
		{"werkzeug ipv6", `::1 - - [11/Sep/2026 15:03:26] "POST /auth/login?next=/ HTTP/1.1" 403 -`,
			"2026-09-11T15:03:26Z", "event=login_failed format=werkzeug ip=::1 method=POST path=/auth/login status=403 via=http"},
		{"gunicorn with zone", `10.0.0.5 - - [22/Aug/2026:11:10:23 +0200] "POST /login HTTP/1.1" 401 23 "-" "curl/8.5.0"`,
			"2026-08-22T09:10:23Z", "event=login_failed format=gunicorn ip=10.0.0.5 method=POST path=/login status=401 via=http"},
		{"password change by path", `10.0.0.7 - - [22/Aug/2026:11:10:23 +0000] "PUT /api/users/42/password HTTP/1.1" 204 0 "-" "x"`,
			"2026-08-22T11:10:23Z", "event=password_changed format=gunicorn ip=10.0.0.7 method=PUT path=/api/users/42/password status=204 via=http"},
		{"forgot password is not a change", `10.0.0.7 - - [22/Aug/2026:11:10:23 +0000] "POST /password/forgot HTTP/1.1" 200 0 "-" "x"`,
			"2026-08-22T11:10:23Z", ""},
		{"admin path", `10.0.0.7 - - [22/Aug/2026:11:10:23 +0000] "POST /admin/users/42/reset-password HTTP/1.1" 200 0 "-" "x"`,
			"2026-08-22T11:10:23Z", "actor_role=admin event=password_changed format=gunicorn ip=10.0.0.7 method=POST path=/admin/users/42/reset-password status=200 via=http"},
		{"user created by path", `10.0.0.8 - - [22/Aug/2026 11:10:23] "POST /api/users HTTP/1.1" 201 -`,
			"2026-08-22T11:10:23Z", "event=user_created format=werkzeug ip=10.0.0.8 method=POST path=/api/users status=201 via=http"},
		{"user deleted by path", `10.0.0.8 - - [22/Aug/2026 11:10:23] "DELETE /api/users/17 HTTP/1.1" 204 -`,
			"2026-08-22T11:10:23Z", "event=user_deleted format=werkzeug ip=10.0.0.8 method=DELETE path=/api/users/17 status=204 user_id=17 via=http"},
		{"flask audit line", `[2026-11-29 22:57:05,123] INFO in auth: password_changed user_id=42 actor=alice actor_role=user ip=10.1.2.3`,
			"2026-11-29T22:57:05.123Z", "actor=alice actor_role=user event=password_changed format=flask ip=10.1.2.3 level=INFO logger=auth user_id=42 via=audit"},
		{"flask override with quoted reason", `[2026-11-29 22:58:00,001] WARNING in admin: override_enabled actor=carol reason="partner bulk import" ttl=30m`,
			"2026-11-29T22:58:00.001Z", "actor=carol event=override_enabled format=flask level=WARNING logger=admin reason=partner bulk import ttl=30m via=audit"},
		{"spring boot 3 audit", `2026-11-29T22:57:05.123Z  INFO 1 --- [nio-8080-exec-3] c.e.demo.web.UserController              : user_deleted user_id=17 actor=bob actor_role=admin ip=10.1.2.9`,
			"2026-11-29T22:57:05.123Z", "actor=bob actor_role=admin event=user_deleted format=spring ip=10.1.2.9 level=INFO logger=c.e.demo.web.UserController user_id=17 via=audit"},
		{"spring boot 3 flyway with offset", "2023-08-15T22:09:27.298-06:00  INFO 14292 --- [  restartedMain] o.f.core.internal.command.DbMigrate      : Migrating schema `vollmed_api` to version \"2 - alter-table-medicos-add-telefono\"",
			"2023-08-16T04:09:27.298Z", "event=migration_started format=spring level=INFO logger=o.f.core.internal.command.DbMigrate revision=2 - alter-table-medicos-add-telefono schema=vollmed_api tool=flyway via=migration"},
		{"spring boot 2 flyway", "2020-05-04 10:25:12.553  INFO 8976 --- [           main] o.f.core.internal.command.DbMigrate      : Migrating schema `lexdemo` to version 1.0.0 - init",
			"2020-05-04T10:25:12.553Z", "event=migration_started format=spring level=INFO logger=o.f.core.internal.command.DbMigrate revision=1.0.0 - init schema=lexdemo tool=flyway via=migration"},
		{"spring with application name, up to date", `2025-11-04T08:44:41.477+02:00  INFO 36976 --- [b2b-marketplace] [           main] o.f.core.internal.command.DbMigrate      : Schema "public" is up to date. No migration necessary.`,
			"2025-11-04T06:44:41.477Z", ""},
		{"flyway success is not a new migration", "2023-08-15T22:09:27.298-06:00  INFO 14292 --- [  restartedMain] o.f.core.internal.command.DbMigrate      : Successfully applied 1 migration to schema `vollmed_api`, now at version v2 (execution time 00:00.397s)",
			"2023-08-16T04:09:27.298Z", ""},
		{"liquibase", `2026-08-22T11:10:23.456+02:00  INFO 4242 --- [           main] liquibase.changelog                      : ChangeSet db/changelog/db.changelog-master.yaml::3::alice ran successfully in 15ms`,
			"2026-08-22T09:10:23.456Z", "actor=alice event=migration_started format=spring level=INFO logger=liquibase.changelog revision=db/changelog/db.changelog-master.yaml::3::alice stage=done tool=liquibase via=migration"},
		{"spring security", `2026-08-22T11:10:23.456+02:00  WARN 4242 --- [nio-8080-exec-3] o.s.s.a.event.LoggerListener             : Authentication event AuthenticationFailureBadCredentialsEvent: alice; details: WebAuthenticationDetails [RemoteIpAddress=203.0.113.9, SessionId=null]; exception: Bad credentials`,
			"2026-08-22T09:10:23.456Z", "event=login_failed failure=AuthenticationFailureBadCredentialsEvent format=spring ip=203.0.113.9 level=WARN logger=o.s.s.a.event.LoggerListener username=alice via=security"},
		{"spring security success is nothing", `2026-08-22T11:10:23.456+02:00  INFO 4242 --- [nio-8080-exec-3] o.s.s.a.event.LoggerListener             : Authentication event AuthenticationSuccessEvent: alice; details: x`,
			"2026-08-22T09:10:23.456Z", ""},
		{"hibernate delete keeps previous time", `Hibernate: delete from users where id=?`, "",
			"event=rows_deleted format=hibernate table=users via=sql"},
		{"hibernate via spring logger", `2026-08-22T11:10:23.456Z DEBUG 4242 --- [nio-8080-exec-3] org.hibernate.SQL                        : delete from orders where id=?`,
			"2026-08-22T11:10:23.456Z", "event=rows_deleted format=spring level=DEBUG logger=org.hibernate.SQL table=orders via=sql"},
		{"sqlalchemy delete", `2026-11-29 22:57:05,123 INFO sqlalchemy.engine.Engine DELETE FROM users WHERE users.id = %(id_1)s`,
			"2026-11-29T22:57:05.123Z", "event=rows_deleted format=python level=INFO logger=sqlalchemy.engine.Engine table=users via=sql"},
		{"sqlalchemy delete without where", `2026-11-29 22:57:05,123 INFO sqlalchemy.engine.Engine DELETE FROM orders`,
			"2026-11-29T22:57:05.123Z", "event=rows_deleted format=python level=INFO logger=sqlalchemy.engine.Engine table=orders unbounded=true via=sql"},
		{"sessions are housekeeping by default", `2026-11-29 22:57:05,123 INFO sqlalchemy.engine.Engine DELETE FROM sessions`,
			"2026-11-29T22:57:05.123Z", ""},
		{"delete text elsewhere is not SQL echo", `2026-11-29 22:57:05,123 INFO app.jobs delete from cache requested`, "2026-11-29T22:57:05.123Z", ""},
		{"alembic keeps previous time", `INFO  [alembic.runtime.migration] Running upgrade  -> 3ab8b2dfb055, create table`, "",
			"description=create table event=migration_started format=alembic level=INFO logger=alembic.runtime.migration revision=3ab8b2dfb055 tool=alembic via=migration"},
		{"alembic context line is nothing", `INFO  [alembic.runtime.migration] Context impl PostgresqlImpl.`, "", ""},
		{"json audit line", `{"ts":"2026-11-29T22:57:05.123Z","event":"password_changed","user_id":42,"actor":"alice","actor_role":"user","ip":"10.1.2.3"}`,
			"2026-11-29T22:57:05.123Z", "actor=alice actor_role=user event=password_changed format=json ip=10.1.2.3 ts=2026-11-29T22:57:05.123Z user_id=42 via=audit"},
		{"json other line gives its time", `{"time":1764457025.5,"msg":"hello"}`, "2025-11-29T22:57:05.5Z", ""},
		{"logfmt audit line", `ts=2026-11-29T22:57:05Z level=info event=user_created user_id=7 actor=bob`,
			"2026-11-29T22:57:05Z", "actor=bob event=user_created format=logfmt level=info ts=2026-11-29T22:57:05Z user_id=7 via=audit"},
		{"logfmt other line gives its time", `time="2026-11-29 22:57:05" level=info msg=ok`, "2026-11-29T22:57:05Z", ""},
		{"plain audit line keeps previous time", `user_deleted user_id=5 actor=eve`, "",
			"actor=eve event=user_deleted format=plain user_id=5 via=audit"},
		{"event word inside another word is nothing", `2026-11-29 22:57:05,123 INFO app x.password_changed_at=1`, "2026-11-29T22:57:05.123Z", ""},
		{"stack trace line keeps previous time", "\tat com.example.demo.web.OrderController.close(OrderController.java:88) ~[classes/:na]", "", ""},
		{"empty line", ``, "", ""},
	}
	prev := utc("2026-01-02T03:04:05Z")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := New(Options{})
			// A previous line gives the origin its time.
			first := sdk.Event{Kind: sdk.KindLog, Origin: "o", Line: []byte("[2026-01-02 03:04:05,000] INFO in x: hello")}
			p.Apply(&first)
			ev := sdk.Event{Kind: sdk.KindLog, Origin: "o", Line: []byte(tt.line)}
			typ := p.Apply(&ev)
			want := prev
			if tt.time != "" {
				want = utc(tt.time)
			}
			if !ev.Time.Equal(want) {
				t.Errorf("time %s, want %s", ev.Time, want)
			}
			if got := fieldsString(ev.Fields); got != tt.fields {
				t.Errorf("fields\n got %q\nwant %q", got, tt.fields)
			}
			if typ != ev.Field(FieldEvent) {
				t.Errorf("Apply returned %q, fields say %q", typ, ev.Field(FieldEvent))
			}
		})
	}
}

func TestTimezone(t *testing.T) {
	paris, _ := time.LoadLocation("Europe/Paris")
	p := New(Options{Location: paris})
	ev := sdk.Event{Kind: sdk.KindLog, Line: []byte(`1.2.3.4 - - [29/Nov/2026 10:00:00] "GET / HTTP/1.1" 200 -`)}
	p.Apply(&ev)
	if want := utc("2026-11-29T09:00:00Z"); !ev.Time.Equal(want) {
		t.Fatalf("werkzeug in Paris: %s, want %s", ev.Time, want)
	}
	ev = sdk.Event{Kind: sdk.KindLog, Line: []byte(`2026-07-01T10:00:00.000Z  INFO 1 --- [main] x : y`)}
	p.Apply(&ev)
	if want := utc("2026-07-01T10:00:00Z"); !ev.Time.Equal(want) {
		t.Fatalf("a zoned timestamp ignores the setting: %s", ev.Time)
	}
}

func TestDockerTimeWins(t *testing.T) {
	p := New(Options{})
	dt := utc("2026-11-29T10:00:00.123456789Z")
	ev := sdk.Event{Kind: sdk.KindLog, Source: "docker.apps", Time: dt,
		Line: []byte(`[2026-11-29 11:00:00,000] INFO in auth: password_changed user_id=1 actor=a`)}
	p.Apply(&ev)
	if !ev.Time.Equal(dt) || ev.Field(FieldEvent) != PasswordChanged {
		t.Fatalf("time %s fields %v", ev.Time, ev.Fields)
	}
}

// TestAuditSupersedesFramework: once an origin reports an event type through audit lines,
// framework lines of that type from the same origin are not counted twice.
func TestAuditSupersedesFramework(t *testing.T) {
	p := New(Options{})
	apply := func(origin, line string) string {
		ev := sdk.Event{Kind: sdk.KindLog, Origin: origin, Line: []byte(line)}
		return p.Apply(&ev)
	}
	access := `10.0.0.8 - - [22/Aug/2026 11:10:23] "DELETE /api/users/17 HTTP/1.1" 204 -`
	audit := `[2026-08-22 11:10:23,001] INFO in users: user_deleted user_id=17 actor=bob actor_role=admin`
	if apply("a", access) != UserDeleted {
		t.Fatal("framework line before any audit line counts")
	}
	if apply("a", audit) != UserDeleted {
		t.Fatal("audit line counts")
	}
	if apply("a", access) != "" {
		t.Fatal("framework line after audit lines of the same type must not count again")
	}
	if got := p.LastIgnored(); !strings.Contains(got, "superseded: this origin reports user_deleted through audit lines") {
		t.Fatalf("LastIgnored %q", got)
	}
	if apply("b", access) != UserDeleted {
		t.Fatal("another origin is not affected")
	}
	if p.LastIgnored() != "" {
		t.Fatalf("LastIgnored %q after an emitted event", p.LastIgnored())
	}
	if apply("a", `10.0.0.8 - - [22/Aug/2026 11:10:24] "POST /login HTTP/1.1" 401 -`) != LoginFailed {
		t.Fatal("other event types from the origin still count")
	}
	if apply("a", `Hibernate: delete from orders where id=?`) != RowsDeleted {
		t.Fatal("SQL deletes of other tables still count")
	}
	if apply("a", `Hibernate: delete from users where id=?`) != "" {
		t.Fatal("SQL deletes of users are reported by the audit lines")
	}
}

func TestCustomParser(t *testing.T) {
	c, err := NewCustom("pay", `refund of (?P<amount>\d+) by (?P<actor>\w+)`, "refund", nil, "")
	if err != nil {
		t.Fatal(err)
	}
	if string(c.literals[0]) != "refund of " {
		t.Fatalf("required literal %q", c.literals)
	}
	p := New(Options{Custom: []*Custom{c}})
	ev := sdk.Event{Kind: sdk.KindLog, Line: []byte(`2026-11-29T10:00:00Z  INFO 1 --- [main] x : refund of 500 by mallory`)}
	if p.Apply(&ev) != "refund" || ev.Field("amount") != "500" || ev.Field("actor") != "mallory" ||
		ev.Field(FieldVia) != ViaRegex || ev.Field(FieldFormat) != "pay" || !ev.Time.Equal(utc("2026-11-29T10:00:00Z")) {
		t.Fatalf("got %v %s", ev.Fields, ev.Time)
	}
	if _, err := NewCustom("x", `(`, "e", nil, ""); err == nil {
		t.Fatal("bad regex accepted")
	}
	if _, err := NewCustom("x", `abc`, "", nil, ""); err == nil {
		t.Fatal("parser without event accepted")
	}
}

func TestKV(t *testing.T) {
	var got []string
	ParseKV([]byte(`a=1 b="two words" junk c="esc \"q\"" d= "x=y" e=unterminated="x`), func(k, v string) {
		got = append(got, k+"="+v)
	})
	want := `a=1|b=two words|c=esc "q"|d=|e=unterminated="x`
	if strings.Join(got, "|") != want {
		t.Fatalf("got %q, want %q", strings.Join(got, "|"), want)
	}
}

func TestHugeAndInvalidLines(t *testing.T) {
	p := New(Options{})
	huge := append([]byte(`[2026-11-29 22:57:05,123] INFO in auth: password_changed actor=`), bytes.Repeat([]byte("x"), 1<<20)...)
	ev := sdk.Event{Kind: sdk.KindLog, Line: huge}
	if p.Apply(&ev) != PasswordChanged || len(ev.Field(FieldActor)) != maxFieldLen {
		t.Fatalf("huge line: actor of %d bytes", len(ev.Field(FieldActor)))
	}
	bad := sdk.Event{Kind: sdk.KindLog, Line: []byte("[2026-11-29 22:57:05,123] INFO in auth: user_created actor=\xff\xfe ip=1")}
	if p.Apply(&bad) != UserCreated || bad.Field(FieldIP) != "1" {
		t.Fatalf("invalid UTF-8: %v", bad.Fields)
	}
}

// TestCorpusEventCounts pins what the parsers find in the corpus files.
func TestCorpusEventCounts(t *testing.T) {
	want := map[string]string{
		"flask-sample.log":  "login_failed/http=52 migration_started/migration=1 override_enabled/audit=1 password_changed/audit=90 user_created/audit=117",
		"spring-sample.log": "login_failed/security=26 migration_started/migration=1 user_deleted/audit=39",
	}
	for name, w := range want {
		f, err := os.Open(filepath.Join("..", "testdata", "corpus", name))
		if err != nil {
			t.Fatal(err)
		}
		p := New(Options{})
		counts := map[string]int{}
		sc := bufio.NewScanner(f)
		var last time.Time
		for sc.Scan() {
			ev := sdk.Event{Kind: sdk.KindLog, Origin: name, Line: bytes.Clone(sc.Bytes())}
			if typ := p.Apply(&ev); typ != "" {
				counts[typ+"/"+ev.Field(FieldVia)]++
			}
			if ev.Time.IsZero() || ev.Time.Before(last.Add(-time.Minute)) {
				t.Fatalf("%s: line %q has time %s after %s", name, ev.Line, ev.Time, last)
			}
			last = ev.Time
		}
		f.Close()
		var got []string
		for k, v := range counts {
			got = append(got, k+"="+strconv.Itoa(v))
		}
		sort.Strings(got)
		if strings.Join(got, " ") != w {
			t.Errorf("%s: %s, want %s", name, strings.Join(got, " "), w)
		}
	}
}

func TestExtraEvents(t *testing.T) {
	p := New(Options{ExtraEvents: []string{"refund", "invoice_voided"}})
	for line, want := range map[string]string{
		`[2026-11-29 10:00:00,000] INFO in pay: refund amount=5 actor=bob`:      "refund",
		`[2026-11-29 10:00:00,000] INFO in pay: invoice_voided id=7 actor=bob`:  "invoice_voided",
		`ts=2026-11-29T10:00:00Z event=refund amount=5`:                         "refund",
		`{"ts":"2026-11-29T10:00:00Z","event":"refund","amount":5}`:             "refund",
		`[2026-11-29 10:00:00,000] INFO in pay: no refunds today`:               "",
		`[2026-11-29 10:00:00,000] INFO in pay: customer asked for a refund`:    "",
		`[2026-11-29 10:00:00,000] INFO in pay: password_changed user_id=1 a=b`: PasswordChanged,
	} {
		ev := sdk.Event{Kind: sdk.KindLog, Line: []byte(line)}
		if got := p.Apply(&ev); got != want {
			t.Errorf("%s: got %q, want %q", line, got, want)
		}
	}
}

// TestHostileMessages: lines made of phrase starts, dotted names and delete words are
// parsed in bounded time (each phrase check reads a bounded window, a bounded number of
// times) and yield nothing or a bounded event.
func TestHostileMessages(t *testing.T) {
	p := New(Options{})
	for _, unit := range []string{"AuditEvent [", "ChangeSet x ", "Migrating schema ", "Running upgrade ", "DELETE DELETE ",
		"delete from a.b.c.d.e.f ", "Hibernate delete ", "Authentication event AuthenticationFailureX: "} {
		line := bytes.Repeat([]byte(unit), (1<<20)/len(unit))
		ev := sdk.Event{Kind: sdk.KindLog, Origin: "o", Line: line}
		start := time.Now()
		p.Apply(&ev)
		for k, v := range ev.Fields {
			if len(v) > maxFieldLen {
				t.Fatalf("%q: field %s of %d bytes", unit, k, len(v))
			}
		}
		t.Logf("%q x %d: %s", unit, len(line)/len(unit), time.Since(start))
	}
}
