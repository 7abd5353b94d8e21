package parse

import (
	"bytes"
	"net/netip"
	"testing"
	"time"

	"github.com/tda-dev/tda/sdk"
)

// FuzzGunicornFormat compiles arbitrary formats and matches arbitrary lines against them:
// never a panic, spans inside the line, a status of three digits.
func FuzzGunicornFormat(f *testing.F) {
	f.Add(`%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"`,
		[]byte(`10.0.0.5 - - [22/Aug/2026:11:10:23 +0200] "POST /login HTTP/1.1" 401 23 "-" "curl/8.5.0"`))
	f.Add(`%({x-forwarded-for}i)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"`,
		[]byte(`203.0.113.9, 10.0.0.2 - - [05/Dec/2026:15:46:28 +0000] "POST /login HTTP/1.1" 401 23 "-" "a \"b\" c"`))
	f.Add(`{"time": "%(t)s", "client": "%(h)s", "status_line": "%(r)s", "status": %(s)s}`,
		[]byte(`{"time": "[05/Dec/2026:15:46:28 +0100]", "client": "1.2.3.4", "status_line": "DELETE /users/1 HTTP/1.1", "status": 204}`))
	f.Add(`%(h)s %(m)s %(U)s?%(q)s -> %(s)s in %(M)sms`, []byte(`1.2.3.4 POST /login?a=b -> 401 in 12ms`))
	f.Add(`%(h) -  %(t)s - %(u)s - %(s)s %(H)s`, []byte(`x`))
	f.Add(`%%(%(s)s%%%(r)s`, []byte(`%(200%GET / HTTP/1.1`))
	f.Fuzz(func(t *testing.T, format string, line []byte) {
		af, err := CompileGunicornFormat(format)
		if err != nil {
			if fe, ok := err.(*FormatError); !ok || fe.Offset < 0 || fe.Offset > len(format) || fe.Hint == "" {
				t.Fatalf("error %#v", err)
			}
			return
		}
		var h header
		if !af.scan(line, time.UTC, &h) {
			return
		}
		if !h.access || h.status < 0 || h.status > 999 {
			t.Fatalf("header %+v", h)
		}
		for _, part := range [][]byte{h.ip, h.peer, h.method, h.path, h.msg} {
			if len(part) > len(line) {
				t.Fatal("part longer than the line")
			}
		}
		p := New(Options{AccessFormats: []*AccessFormat{af}})
		checkEvent(t, p, line)
	})
}

// FuzzUnwrap feeds arbitrary sequences of lines, from two origins, through the wrapper
// removal: never a panic, the lines untouched, held partial lines bounded and accounted.
func FuzzUnwrap(f *testing.F) {
	for _, s := range []string{
		"{\"log\":\"INFO  [alembic.runtime.migration] Running upgrade a -\\u003e b, x\\n\",\"stream\":\"stderr\",\"time\":\"2026-12-05T15:46:28.1Z\"}",
		"{\"log\":\"\\ud83d\\ude00 \\\\ \\\" \\u001b[31m\",\"time\":\"x\"}",
		"2026-12-05T15:46:28.1Z stdout P INFO  [alembic.runtime.migration] \n2026-12-05T15:46:28.2Z stdout F Running upgrade a -> b, x",
		"2026-12-05T15:46:28.1Z stderr P:x abc\n2026-12-05T15:46:28.1Z stderr F",
		"Dec  5 15:46:28 web1 flask[812]: user_deleted user_id=5\nJan  1 00:00:00 h t: x",
		"<34>Dec 05 15:46:28.123 web1 su: x\n<165>1 - - - - - [a b=\"]\\\"\"][c] \xef\xbb\xbfmsg",
		"2026-12-05T15:46:28+0000 web1 flask[812]: password_changed user_id=1",
		"2026-12-05T15:46:28.947915+00:00 app[web.1]: INFO  [alembic.runtime.migration] Running upgrade a -> b",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p := New(Options{})
		for i, line := range bytes.Split(data, []byte("\n")) {
			orig := bytes.Clone(line)
			ev := sdk.Event{Kind: sdk.KindLog, Origin: []string{"a", "b"}[i%2], Line: line}
			typ := p.Apply(&ev)
			if !bytes.Equal(ev.Line, orig) {
				t.Fatalf("line changed: %q -> %q", orig, ev.Line)
			}
			if typ == "" && ev.Fields != nil {
				t.Fatalf("fields without an event: %v", ev.Fields)
			}
			if !ev.Time.IsZero() && ev.Time.Location() != time.UTC {
				t.Fatalf("time %s not in UTC", ev.Time)
			}
		}
		sum := 0
		for _, st := range p.origins {
			if len(st.partial[0]) > maxPartialLine || len(st.partial[1]) > maxPartialLine {
				t.Fatalf("origin holds %d bytes", st.held())
			}
			sum += st.held()
		}
		if sum != p.pending || p.pending > maxPartialPending {
			t.Fatalf("pending %d, held %d", p.pending, sum)
		}
	})
}

// FuzzClientIP: the client of any chain is "", an address, or an entry of the chain.
func FuzzClientIP(f *testing.F) {
	for _, s := range []string{"203.0.113.9, 10.0.0.2", "-", "[2001:db8::1]:443,unknown", " , ,, ", "1.2.3.4:5:6", "[::1"} {
		f.Add([]byte(s))
	}
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	f.Fuzz(func(t *testing.T, chain []byte) {
		for _, tp := range [][]netip.Prefix{nil, trusted} {
			ip := ClientIP(chain, tp)
			if ip == "" || len(ip) > maxFieldLen {
				if len(ip) > maxFieldLen {
					t.Fatalf("client of %d bytes", len(ip))
				}
				continue
			}
			if _, err := netip.ParseAddr(ip); err != nil && !bytes.Contains(chain, []byte(ip)) {
				t.Fatalf("client %q of %q is neither an address nor an entry", ip, chain)
			}
		}
	})
}

// FuzzRoute compiles arbitrary patterns and matches arbitrary paths against them.
func FuzzRoute(f *testing.F) {
	f.Add("/users/:id/delete", []byte("/users/7/delete"))
	f.Add("/admin/**", []byte("/admin/"))
	f.Add("/a/*/b", []byte("//a//x//b//"))
	f.Fuzz(func(t *testing.T, pattern string, path []byte) {
		rt, err := NewRoute("POST", pattern, []int{200}, "e", map[string]string{"user_id": ":id"})
		if err != nil {
			return
		}
		var r result
		if rt.match([]byte("POST"), path, 200, &r) {
			for i := 0; i < r.n; i++ {
				if len(r.vals[i]) > maxFieldLen || len(r.vals[i]) > len(path) && r.keys[i] != FieldRoute {
					t.Fatalf("field %s=%q from path %q", r.keys[i], r.vals[i], path)
				}
			}
		}
	})
}
