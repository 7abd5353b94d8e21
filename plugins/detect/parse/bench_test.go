package parse

import (
	"testing"

	"github.com/tda-dev/tda/sdk"
)

// BenchmarkApply measures one line of each kind through the parser (ns/op is per line).
func BenchmarkApply(b *testing.B) {
	cases := map[string]string{
		"werkzeug_get_200":    `172.22.0.166 - - [29/Nov/2026 10:00:08] "GET /api/users/me HTTP/1.1" 200 -`,
		"werkzeug_401":        `203.0.113.9 - - [29/Nov/2026 10:40:00] "POST /login HTTP/1.1" 401 -`,
		"spring_info":         `2026-11-29T10:00:03.319Z  INFO 1 --- [nio-8080-exec-4] c.e.demo.web.OrderController             : order 71187 listed in 2ms`,
		"spring_audit":        `2026-11-29T10:20:00.000Z  INFO 1 --- [nio-8080-exec-4] c.e.demo.web.UserController              : user_deleted user_id=700 actor=bob actor_role=user ip=10.1.2.9`,
		"spring_security":     `2026-11-29T10:45:00.000Z  WARN 1 --- [nio-8080-exec-2] o.s.s.a.event.LoggerListener             : Authentication event AuthenticationFailureBadCredentialsEvent: admin; details: WebAuthenticationDetails [RemoteIpAddress=198.51.100.7, SessionId=null]; exception: Bad credentials`,
		"flask_audit":         `[2026-11-29 10:15:00,000] INFO in auth: password_changed user_id=100 actor=mallory actor_role=user ip=198.51.100.23`,
		"flask_other":         `[2026-11-29 10:15:00,000] INFO in orders: order 42 shipped to customer 7`,
		"stack_trace":         "\tat com.example.demo.web.OrderController.close(OrderController.java:88) ~[classes/:na]",
		"json_other":          `{"ts":"2026-11-29T22:57:05.123Z","level":"info","msg":"request done","path":"/api/orders"}`,
		"alembic_migration":   `INFO  [alembic.runtime.migration] Running upgrade 3ab8b2dfb055 -> 28af9800143f, add users.last_login`,
		"basicconfig_get_200": `INFO:werkzeug:172.22.0.166 - - [29/Nov/2026 10:00:08] "GET /api/users/me HTTP/1.1" 200 -`,
		"dictconfig_401":      `[2026-11-29 10:40:00,123] INFO in _internal: 203.0.113.9 - - [29/Nov/2026 10:40:00] "POST /login HTTP/1.1" 401 -`,
		"gunicorn_xff_401":    `203.0.113.9, 10.0.0.2 - - [29/Nov/2026:10:40:00 +0000] "POST /login HTTP/1.1" 401 23 "-" "Mozilla/5.0 (X11; Linux x86_64)"`,
		"docker_json_other":   `{"log":"[2026-11-29 10:15:00,000] INFO in orders: order 42 shipped to customer 7\n","stream":"stdout","time":"2026-11-29T10:15:00.123456789Z"}`,
		"cri_spring_info":     `2026-11-29T10:00:03.319Z stdout F 2026-11-29T10:00:03.319Z  INFO 1 --- [nio-8080-exec-4] c.e.demo.web.OrderController             : order 71187 listed in 2ms`,
		"syslog_flask_other":  `Nov 29 10:15:00 web1 flask[812]: [2026-11-29 10:15:00,000] INFO in orders: order 42 shipped to customer 7`,
		"basic_other":         `INFO:app.orders:order 42 shipped to customer 7 after payment was confirmed`,
		"sqlalchemy_select":   `INFO:sqlalchemy.engine.Engine:SELECT users.id, users.email FROM users WHERE users.id = ?`,
		"sqlalchemy_delete":   `INFO:sqlalchemy.engine.Engine:DELETE FROM users WHERE users.id = ?`,
		"hibernate_stdout":    `Hibernate: delete from products p1_0 where p1_0.id=?`,
		"ecs_other":           `{"@timestamp":"2026-12-05T15:46:28.123Z","log.level":"INFO","process.pid":1,"process.thread.name":"main","log.logger":"c.e.Shop","message":"order 42 shipped","ecs.version":"8.11"}`,
		"logstash_flyway":     `{"@timestamp":"2026-12-05T15:46:28.123Z","@version":"1","message":"Migrating schema \"public\" to version \"2 - add orders\"","logger_name":"org.flywaydb.core.internal.command.DbMigrate","level":"INFO"}`,
	}
	for name, line := range cases {
		b.Run(name, func(b *testing.B) {
			p := New(Options{})
			l := []byte(line)
			ev := sdk.Event{Kind: sdk.KindLog, Origin: "o", Line: l}
			b.ReportAllocs()
			for b.Loop() {
				ev.Fields = nil
				p.Apply(&ev)
			}
		})
	}
}
