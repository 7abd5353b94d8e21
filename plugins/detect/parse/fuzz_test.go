package parse

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/tda-dev/tda/sdk"
)

var fuzzSeeds = []string{
	`172.22.0.1 - - [11/Sep/2026 15:03:26] "POST /login HTTP/1.1" 401 -`,
	"172.22.0.1 - - [11/Sep/2026 15:03:26] \"\x1b[31m\x1b[1mPOST /login HTTP/1.1\x1b[0m\" 401 -",
	`10.0.0.5 - - [22/Aug/2026:11:10:23 +0200] "POST /login HTTP/1.1" 401 23 "-" "curl/8.5.0"`,
	`10.0.0.8 - - [22/Aug/2026 11:10:23] "DELETE /api/users/17 HTTP/1.1" 204 -`,
	`[2026-11-29 22:57:05,123] INFO in auth: password_changed user_id=42 actor=alice actor_role=user ip=10.1.2.3`,
	`[2026-11-29 22:58:00,001] WARNING in admin: override_enabled actor=carol reason="partner bulk import" ttl=30m`,
	`2026-11-29T22:57:05.123Z  INFO 1 --- [nio-8080-exec-3] c.e.demo.web.UserController              : user_deleted user_id=17 actor=bob actor_role=admin ip=10.1.2.9`,
	"2023-08-15T22:09:27.298-06:00  INFO 14292 --- [  restartedMain] o.f.core.internal.command.DbMigrate      : Migrating schema `vollmed_api` to version \"2 - x\"",
	`2025-11-04T08:44:41.477+02:00  INFO 36976 --- [b2b-marketplace] [           main] o.f.core.internal.command.DbMigrate      : Schema "public" is up to date.`,
	`2026-08-22T11:10:23.456+02:00  INFO 4242 --- [           main] liquibase.changelog                      : ChangeSet db/changelog/db.changelog-master.yaml::3::alice ran successfully in 15ms`,
	`2026-08-22T11:10:23.456+02:00  WARN 4242 --- [nio-8080-exec-3] o.s.s.a.event.LoggerListener             : Authentication event AuthenticationFailureBadCredentialsEvent: alice; details: WebAuthenticationDetails [RemoteIpAddress=203.0.113.9, SessionId=null]; exception: Bad credentials`,
	`Hibernate: delete from users where id=?`,
	`2026-11-29 22:57:05,123 INFO sqlalchemy.engine.Engine DELETE FROM users WHERE users.id = %(id_1)s`,
	`INFO  [alembic.runtime.migration] Running upgrade 3ab8b2dfb055 -> 28af9800143f, create views/sp`,
	`{"ts":"2026-11-29T22:57:05.123Z","event":"password_changed","user_id":42,"actor":"alice"}`,
	`ts=2026-11-29T22:57:05Z level=info event=user_created user_id=7 actor="b o b"`,
	"\tat com.example.demo.web.OrderController.close(OrderController.java:88)",
	"",
}

// checkEvent holds for any line: no panic, the line is untouched, fields are bounded.
func checkEvent(t *testing.T, p *Parser, line []byte) {
	orig := bytes.Clone(line)
	ev := sdk.Event{Kind: sdk.KindLog, Origin: "fuzz", Line: line}
	typ := p.Apply(&ev)
	if !bytes.Equal(ev.Line, orig) {
		t.Fatalf("line changed: %q -> %q", orig, ev.Line)
	}
	if typ == "" && ev.Fields != nil {
		t.Fatalf("fields without an event: %v", ev.Fields)
	}
	if typ != "" && (ev.Field(FieldEvent) != typ || ev.Field(FieldVia) == "") {
		t.Fatalf("event %q with fields %v", typ, ev.Fields)
	}
	for k, v := range ev.Fields {
		if len(v) > maxFieldLen || k == "" {
			t.Fatalf("field %q of %d bytes", k, len(v))
		}
	}
}

// FuzzApply exercises every built-in parser through the format dispatch.
func FuzzApply(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	p := New(Options{})
	f.Fuzz(func(t *testing.T, line []byte) { checkEvent(t, p, line) })
}

// FuzzScan exercises the format scanners (access, Flask, Spring, Python, Alembic, Hibernate).
func FuzzScan(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		h := scan(line, time.UTC)
		for _, part := range [][]byte{h.msg, h.level, h.logger, h.ip, h.method, h.path} {
			if len(part) > len(line) {
				t.Fatalf("part longer than the line")
			}
		}
		if h.access && (h.status < 0 || h.status > 999) {
			t.Fatalf("status %d", h.status)
		}
	})
}

// FuzzAccess exercises the access-line parser and its event mapping directly.
func FuzzAccess(f *testing.F) {
	f.Add([]byte(`1.2.3.4 - - [29/Nov/2026 10:00:00] "POST /api/users HTTP/1.1" 201 -`))
	f.Add([]byte(`::1 - u [29/Nov/2026:10:00:00 -0700] "DELETE /users/1?x HTTP/1.1" 204 1 "r" "ua"`))
	p := New(Options{})
	f.Fuzz(func(t *testing.T, line []byte) {
		var h header
		if findAccess(line, time.UTC, &h) {
			var r result
			p.detectAccess(&h, &r)
			if r.event != "" && r.via != ViaHTTP {
				t.Fatalf("access event via %q", r.via)
			}
		}
	})
}

func FuzzParseISO(f *testing.F) {
	for _, s := range []string{"2026-11-29T22:57:05.123Z", "2026-11-29 22:57:05,123", "2023-08-15T22:09:27.298-06:00",
		"2026-11-29T22:57:05+0530", "2026-11-29T22:57:05.123456789123Z", "9999-99-99T99:99:99"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		tm, n, ok := ParseISO(b, time.UTC)
		if ok && (n < 19 || n > len(b) || tm.Location() != time.UTC) {
			t.Fatalf("n=%d len=%d loc=%s", n, len(b), tm.Location())
		}
	})
}

func FuzzParseCLF(f *testing.F) {
	for _, s := range []string{"29/Nov/2026 10:00:00", "22/Aug/2026:11:10:23 +0200", "31/Xyz/2026:25:00:00 +9999"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if tm, ok := ParseCLF(b, time.UTC); ok && tm.Location() != time.UTC {
			t.Fatalf("not UTC")
		}
	})
}

func FuzzParseAny(f *testing.F) {
	for _, s := range []string{"2026-11-29T22:57:05Z", "1764457025", "1764457025123", "1764457025.5", "1e300", "-1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) { ParseAny(s, time.UTC) })
}

func FuzzParseKV(f *testing.F) {
	for _, s := range []string{`a=1 b="two words" c="esc \"q\""`, `x= ="" "=" ==`, `k="unterminated`, `k="\`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ParseKV(b, func(k, v string) {
			if k == "" || len(v) > maxFieldLen {
				t.Fatalf("pair %q=%q", k, v)
			}
		})
	})
}

// FuzzJSON exercises the JSON-line parser.
func FuzzJSON(f *testing.F) {
	f.Add([]byte(`{"ts":"2026-11-29T22:57:05.123Z","event":"password_changed","user_id":42,"nested":{"a":1}}`))
	f.Add([]byte(`{"time":1764457025,"event":"login_failed","ip":null}`))
	f.Add([]byte(`{"event":"user_created", "ts": "x"`))
	p := New(Options{})
	f.Fuzz(func(t *testing.T, b []byte) {
		line := append([]byte{'{'}, b...)
		checkEvent(t, p, line)
	})
}

// FuzzCustom exercises a user regex parser with a time group.
func FuzzCustom(f *testing.F) {
	c, err := NewCustom("nginx", `^(?P<ip>\S+) \S+ \S+ \[(?P<time>[^\]]+)\] "POST /wp-login\.php`, "login_failed", []string{"wp-login"},
		"02/Jan/2006:15:04:05 -0700")
	if err != nil {
		f.Fatal(err)
	}
	p := New(Options{Custom: []*Custom{c}})
	f.Add([]byte(`1.2.3.4 - - [29/Nov/2026:10:00:00 +0100] "POST /wp-login.php HTTP/1.1" 401 1`))
	f.Add([]byte(`1.2.3.4 - - [garbage] "POST /wp-login.php`))
	f.Fuzz(func(t *testing.T, line []byte) { checkEvent(t, p, line) })
}

// FuzzLineSequence feeds arbitrary sequences of lines (the input split at newlines) to one
// parser on a few origins: the multi-line state (format_sql statements, show_sql duplicates,
// Liquibase pairs) never panics, stays bounded, and a second parser after the first agrees.
func FuzzLineSequence(f *testing.F) {
	seqs := []string{
		"Hibernate: \n    delete \n    from\n        users \n    where\n        id=?\nHibernate: delete from users where id=?",
		"2026-12-05T15:46:28.123Z DEBUG 1 --- [main] org.hibernate.SQL : \n    delete \n    from\n        products p1_0 \n    where\n        p1_0.id=?",
		"2026-12-05T15:46:28.123Z DEBUG 1 --- [main] org.hibernate.SQL : delete from users where id=?\nHibernate: delete from users where id=?",
		"Running Changeset: a.xml::1::bob\nChangeSet a.xml::1::bob ran successfully in 3ms\nDec 05, 2026 3:46:28 PM liquibase.changelog.ChangeSet execute\nINFO: ChangeSet a.xml::2::bob ran successfully in 1ms",
		"INFO:sqlalchemy.engine.Engine:DELETE FROM refresh_tokens WHERE refresh_tokens.user_id = ?\nINFO:sqlalchemy.engine.Engine:DELETE FROM \"public\".\"users\"",
		"{\"@timestamp\":\"2026-12-05T15:46:28.123Z\",\"message\":\"\\n    delete \\n    from\\n        users\",\"logger_name\":\"org.hibernate.SQL\"}",
		"Login failure: AuditEvent [timestamp=2023-10-02T08:52:38Z, principal=x, type=AUTHENTICATION_FAILURE, data={details=WebAuthenticationDetails [RemoteIpAddress=203.0.113.9, SessionId=null]}]",
		"[INFO] Migrating schema \"A\" with repeatable migration v\nINFO  [alembic.runtime.migration] Running upgrade a -> b, c",
	}
	for _, s := range append(seqs, fuzzSeeds...) {
		f.Add([]byte(s))
	}
	first, second := New(Options{}), New(Options{})
	f.Fuzz(func(t *testing.T, in []byte) {
		for i, line := range bytes.Split(in, []byte("\n")) {
			origin := "o" + string(rune('a'+i%3))
			orig := bytes.Clone(line)
			ev := sdk.Event{Kind: sdk.KindLog, Origin: origin, Line: line}
			typ := first.Apply(&ev)
			if !bytes.Equal(ev.Line, orig) {
				t.Fatalf("line changed: %q -> %q", orig, ev.Line)
			}
			if typ == "" && ev.Fields != nil {
				t.Fatalf("fields without an event: %v", ev.Fields)
			}
			if typ != "" && first.LastIgnored() != "" {
				t.Fatalf("event %q emitted with an ignore reason %q", typ, first.LastIgnored())
			}
			for k, v := range ev.Fields {
				if len(v) > maxFieldLen || k == "" {
					t.Fatalf("field %q of %d bytes", k, len(v))
				}
			}
			want := fieldsString(ev.Fields)
			if got := second.Apply(&ev); got != typ || fieldsString(ev.Fields) != want {
				t.Fatalf("line %q: second parser %q %s, first %q %s", line, got, fieldsString(ev.Fields), typ, want)
			}
		}
		for _, p := range []*Parser{first, second} {
			for name, st := range p.origins {
				if len(st.sql.buf) > maxPendingSQL || len(st.sql.last) > 2*maxFieldLen+1 ||
					len(st.sql.logger) > maxFieldLen || len(st.sql.level) > maxFieldLen || len(st.migLast) > maxFieldLen {
					t.Fatalf("origin %s: state grew: buf %d last %d logger %d mig %d", name,
						len(st.sql.buf), len(st.sql.last), len(st.sql.logger), len(st.migLast))
				}
			}
			if len(p.origins) > maxOrigins {
				t.Fatalf("%d origins", len(p.origins))
			}
		}
	})
}

// FuzzParseDelete: the statement reader never panics, never reads past its input, and a
// name it returns is clipped and lower case.
func FuzzParseDelete(f *testing.F) {
	for _, s := range []string{"delete from users where id=?", "DELETE FROM \"public\".\"users\"", "delete p1_0 from products p1_0",
		"delete from `a`.`b`.`c`.`d` x", "delete from [dbo].[Users", "delete\n  from\n    t", "delete from ", "delete"} {
		f.Add([]byte(s), true)
		f.Add([]byte(s), false)
	}
	f.Fuzz(func(t *testing.T, b []byte, final bool) {
		s := findDelete(b)
		if s < 0 {
			return
		}
		st, complete, ok := parseDelete(b, s, final)
		if final && ok && !complete {
			t.Fatalf("%q: final text incomplete", b)
		}
		if len(st.table) > maxFieldLen || len(st.schema) > maxFieldLen {
			t.Fatalf("%q: name of %d bytes", b, len(st.table))
		}
		if st.table != strings.ToLower(st.table) || st.schema != strings.ToLower(st.schema) {
			t.Fatalf("%q: names %q %q not lower case", b, st.schema, st.table)
		}
		if ok && complete && st.table == "" {
			t.Fatalf("%q: complete without a table", b)
		}
	})
}
