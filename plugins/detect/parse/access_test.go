package parse

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tda-dev/tda/sdk"
)

func TestCompileGunicornFormatErrors(t *testing.T) {
	tests := []struct {
		format string
		offset int
		msg    string
	}{
		{`%(h)s %(zz)s %(s)s "%(r)s"`, 6, "%(zz)s is not a gunicorn atom"},
		{`%(h)s %(t)s`, 0, "no %(s)s"},
		{`%(h)s %(s)s %(m)s`, 0, "neither %(r)s nor %(m)s and %(U)s"},
		{`%(h) -  %(t)s - %(u)s - %(s)s %(H)s`, 0, "is followed by '%', not a conversion"}, // a real gunicorn.conf.py typo
		{`%(h)s %(s)s "%(r)s`, -1, ""},
		{`%(h)s%(l)s %(s)s "%(r)s"`, 5, "follows another atom without any text"},
		{`%(h)s %s "%(r)s"`, 6, "a % not followed by (name)"},
		{`%(h)s %(s`, 6, "unclosed %("},
		{`%(h)s %(s)`, 6, "not a conversion"},
		{`100%% %(h)s %(s)s "%(r)s"`, -1, ""},
		{`%(h)s %(s)d "%(r)-10s"`, -1, ""},
		{`%({X-Forwarded-For}i)s - %({x-request-id}i)s %(s)s %({REMOTE_ADDR}e)s "%(r)s" %({content-length}o)s`, -1, ""},
		{strings.Repeat("%(a)s ", 70) + `%(s)s "%(r)s"`, 192, "too many atoms"},
	}
	for _, tt := range tests {
		f, err := CompileGunicornFormat(tt.format)
		if tt.offset < 0 {
			if err != nil || f == nil {
				t.Errorf("%q: %v", tt.format, err)
			}
			continue
		}
		var fe *FormatError
		if !errors.As(err, &fe) || fe.Offset != tt.offset || !strings.Contains(fe.Msg, tt.msg) || fe.Hint == "" {
			t.Errorf("%q: error %#v, want offset %d and %q with a hint", tt.format, err, tt.offset, tt.msg)
		}
	}
}

func TestClientIP(t *testing.T) {
	trusted, err := ParseTrustedProxies([]string{"10.0.0.0/8", "2001:db8:ffff::/48", "192.0.2.10"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ chain, none, trusted string }{
		{"203.0.113.9", "203.0.113.9", "203.0.113.9"},
		{"203.0.113.9, 10.0.0.2", "10.0.0.2", "203.0.113.9"},
		{"203.0.113.9,10.0.0.2,10.0.0.3", "10.0.0.3", "203.0.113.9"},
		{"1.1.1.1, 203.0.113.9, 10.0.0.2", "10.0.0.2", "203.0.113.9"},
		{"10.1.1.1, 10.0.0.2", "10.0.0.2", "10.1.1.1"},
		{"-", "", ""},
		{"", "", ""},
		{" , ,", "", ""},
		{"203.0.113.9:51000, [2001:db8:ffff::1]:443", "2001:db8:ffff::1", "203.0.113.9"},
		{"::ffff:203.0.113.9, 192.0.2.10", "192.0.2.10", "203.0.113.9"},
		{"unknown, 10.0.0.2", "10.0.0.2", "unknown"},
		{"203.0.113.9, _hidden, 10.0.0.2", "10.0.0.2", "_hidden"},
	}
	for _, tt := range tests {
		if got := ClientIP([]byte(tt.chain), nil); got != tt.none {
			t.Errorf("%q without trusted proxies: %q, want %q", tt.chain, got, tt.none)
		}
		if got := ClientIP([]byte(tt.chain), trusted); got != tt.trusted {
			t.Errorf("%q with trusted proxies: %q, want %q", tt.chain, got, tt.trusted)
		}
	}
	for _, bad := range []string{"10.0.0.0/33", "ten", "10.0.0.0/8/8", "2001:db8::/129"} {
		if _, err := ParseTrustedProxies([]string{bad}); err == nil || !strings.Contains(err.Error(), "write e.g.") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func TestRouteErrors(t *testing.T) {
	tests := []struct {
		method, path string
		status       []int
		event        string
		fields       map[string]string
		attr         string
	}{
		{"POST", "login", nil, "e", nil, "path"},
		{"POST", "/a//b", nil, "e", nil, "path"},
		{"POST", "/a/**/b", nil, "e", nil, "path"},
		{"POST", "/a/x:id", nil, "e", nil, "path"},
		{"POST", "/a/:", nil, "e", nil, "path"},
		{"POST", "/a/:id/:id", nil, "e", nil, "path"},
		{"POST", "/" + strings.Repeat("a/", 40), nil, "e", nil, "path"},
		{"GE T", "/a", nil, "e", nil, "method"},
		{"POST", "/a", []int{99}, "e", nil, "status"},
		{"POST", "/a", nil, "", nil, "event"},
		{"POST", "/a/:id", nil, "e", map[string]string{"user_id": ":uid"}, "fields"},
		{"POST", "/a", nil, "e", map[string]string{"event": "x"}, "fields"},
		{"POST", "/a", nil, "e", map[string]string{"bad key": "x"}, "fields"},
	}
	for _, tt := range tests {
		_, err := NewRoute(tt.method, tt.path, tt.status, tt.event, tt.fields)
		var re *RouteError
		if !errors.As(err, &re) || re.Attr != tt.attr {
			t.Errorf("%s %s: %v, want an error about %s", tt.method, tt.path, err, tt.attr)
		}
	}
	r, err := NewRoute("post|Put", "/", []int{200}, "x", nil)
	if err != nil || r.String() != "POST|PUT / [200] -> x" {
		t.Fatalf("%v %v", r, err)
	}
}

// wrap puts a bare line into each container and host wrapper, as the runtime would write it.
func wrap(kind, line string, at time.Time) []string {
	ts := at.Format(time.RFC3339Nano)
	switch kind {
	case WrapperDocker:
		var b strings.Builder
		b.WriteString(`{"log":"`)
		for _, r := range line + "\n" {
			switch {
			case r == '"' || r == '\\':
				b.WriteString(`\` + string(r))
			case r == '\n':
				b.WriteString(`\n`)
			case r < 0x20 || r == '<' || r == '>' || r == '&':
				fmt.Fprintf(&b, `\u%04x`, r)
			default:
				b.WriteRune(r)
			}
		}
		b.WriteString(`","stream":"stdout","time":"` + ts + `"}`)
		return []string{b.String()}
	case WrapperCRI:
		return []string{ts + " stdout F " + line}
	case WrapperDocker + "-timestamps":
		return []string{at.UTC().Format("2006-01-02T15:04:05.000000000Z") + " " + line}
	case WrapperCRI + "-split":
		// Split in three: two P parts and the F part.
		a, b := len(line)/3, 2*len(line)/3
		return []string{ts + " stdout P " + line[:a], ts + " stdout P " + line[a:b], ts + " stdout F " + line[b:]}
	case WrapperSyslog:
		return []string{at.Format(time.Stamp) + " web1 app[812]: " + line}
	case WrapperSyslog + "-journald":
		return []string{at.Format("2006-01-02T15:04:05-0700") + " web1 app[812]: " + line}
	case WrapperSyslog + "-heroku":
		return []string{ts + " app[web.1]: " + line}
	case WrapperRFC5424:
		return []string{"<165>1 " + ts + ` web1 app 812 ID47 [meta seq="1"] ` + line}
	}
	panic(kind)
}

// TestUnwrapIsTransparent: a wrapped line yields the event of the bare line; its time is the
// bare line's own or, when it has none, the wrapper's.
func TestUnwrapIsTransparent(t *testing.T) {
	at := utc("2026-12-05T15:46:28.5Z")
	kinds := []string{WrapperDocker, WrapperDocker + "-timestamps", WrapperCRI, WrapperCRI + "-split", WrapperSyslog, WrapperSyslog + "-journald",
		WrapperSyslog + "-heroku", WrapperRFC5424}
	n := 0
	for file, lt := range loadLineTables(t) {
		if file == "wrappers.json" {
			continue
		}
		opts := lt.options(t)
		for _, c := range lt.Cases {
			bare := applyCase(New(opts), c.Before, c.Line)
			// Whether the line has a time of its own (not one from an earlier line).
			ownTime := !applyCase(New(opts), nil, c.Line).Time.Equal(linePrev)
			for _, kind := range kinds {
				if kind == WrapperSyslog || kind == WrapperSyslog+"-journald" {
					if strings.ContainsAny(c.Line, "\x1b") {
						continue // a syslog daemon escapes control characters
					}
				}
				p := New(opts)
				var before []string
				for _, b := range c.Before {
					before = append(before, wrap(kind, b, at)...)
				}
				lines := wrap(kind, c.Line, at)
				ev := applyCase(p, append(before, lines[:len(lines)-1]...), lines[len(lines)-1])
				want := bare.Time
				if !ownTime {
					want = at
					if kind == WrapperSyslog || kind == WrapperSyslog+"-journald" {
						want = at.Truncate(time.Second)
					}
				}
				if !ev.Time.Equal(want) {
					t.Errorf("%s %s in %s: time %s, want %s", file, c.Name, kind, ev.Time, want)
				}
				if got, want := fieldsString(ev.Fields), fieldsString(bare.Fields); got != want {
					t.Errorf("%s %s in %s:\n got %q\nwant %q", file, c.Name, kind, got, want)
				}
				n++
			}
		}
	}
	if n < 100 {
		t.Fatalf("only %d wrapped lines checked", n)
	}
}

// TestPartialLinesBounded: CRI partial lines are held up to maxPartialLine per origin and
// maxPartialPending across origins; evicted origins give their bytes back.
func TestPartialLinesBounded(t *testing.T) {
	p := New(Options{})
	chunk := "2026-12-05T15:46:28Z stdout P " + strings.Repeat("x", 16<<10)
	for i := 0; i < 10; i++ {
		ev := sdk.Event{Kind: sdk.KindLog, Origin: "a", Line: []byte(chunk)}
		if p.Apply(&ev) != "" || ev.Fields != nil {
			t.Fatal("a partial line is no event")
		}
	}
	if got := p.origins["a"].held(); got != maxPartialLine || p.pending != maxPartialLine {
		t.Fatalf("held %d bytes (pending %d), want %d", got, p.pending, maxPartialLine)
	}
	for o := 0; o < 200; o++ {
		for i := 0; i < 5; i++ {
			ev := sdk.Event{Kind: sdk.KindLog, Origin: fmt.Sprint("o", o), Line: []byte(chunk)}
			p.Apply(&ev)
		}
	}
	if p.pending > maxPartialPending {
		t.Fatalf("pending %d beyond %d", p.pending, maxPartialPending)
	}
	sum := 0
	for _, st := range p.origins {
		sum += st.held()
	}
	if sum != p.pending {
		t.Fatalf("pending %d, origins hold %d", p.pending, sum)
	}
	// The final part ends the line: held bytes are released.
	ev := sdk.Event{Kind: sdk.KindLog, Origin: "a", Line: []byte("2026-12-05T15:46:29Z stdout F end")}
	p.Apply(&ev)
	if p.origins["a"].held() != 0 || p.pending != sum-maxPartialLine {
		t.Fatalf("after F: held %d, pending %d", p.origins["a"].held(), p.pending)
	}
	p.evictOrigins()
	sum = 0
	for _, st := range p.origins {
		sum += st.held()
	}
	if sum != p.pending {
		t.Fatalf("after eviction: pending %d, origins hold %d", p.pending, sum)
	}
	p.SetState(nil)
	if p.pending != 0 {
		t.Fatalf("after restore: pending %d", p.pending)
	}
}

// TestAccessLineUnchanged: unwrapping and colour stripping never touch the event's line.
func TestAccessLineUnchanged(t *testing.T) {
	p := New(Options{})
	line := []byte("{\"log\":\"203.0.113.9 - - [05/Dec/2026 15:46:28] \\\"\\u001b[31mPOST /login HTTP/1.1\\u001b[0m\\\" 401 -\\n\",\"stream\":\"stderr\",\"time\":\"2026-12-05T15:46:28Z\"}")
	orig := bytes.Clone(line)
	ev := sdk.Event{Kind: sdk.KindLog, Line: line}
	if p.Apply(&ev) != LoginFailed || !bytes.Equal(ev.Line, orig) {
		t.Fatalf("event %v, line %q", ev.Fields, ev.Line)
	}
}

// TestLongGunicornFormat: a format of the largest size still matches its lines.
func TestLongGunicornFormat(t *testing.T) {
	var format, line strings.Builder
	format.WriteString(`%(h)s "%(r)s" %(s)s`)
	line.WriteString(`203.0.113.9 "POST /login HTTP/1.1" 401`)
	for i := 0; i < 29; i++ {
		format.WriteString(` %({x-h` + fmt.Sprint(i) + `}i)s`)
		line.WriteString(" v, w")
	}
	f, err := CompileGunicornFormat(format.String())
	if err != nil {
		t.Fatal(err)
	}
	if len(f.elems) < maxFormatElems-2 {
		t.Fatalf("only %d elements", len(f.elems))
	}
	p := New(Options{AccessFormats: []*AccessFormat{f}})
	ev := sdk.Event{Kind: sdk.KindLog, Line: []byte(line.String())}
	if p.Apply(&ev) != LoginFailed || ev.Field(FieldIP) != "203.0.113.9" {
		t.Fatalf("got %v", ev.Fields)
	}
}

// TestPartialLinesInAChain: with two processors, the second one holds the parts the first
// one joined into an event; the final part, already parsed, ends them, so they are never
// joined with the next line into a second event. Parts of stdout and stderr are joined apart.
func TestPartialLinesInAChain(t *testing.T) {
	first, second := New(Options{}), New(Options{})
	lines := []string{
		"2026-12-05T15:46:28.1Z stdout P user_deleted user_id=5 ",
		"2026-12-05T15:46:28.2Z stderr F [2026-12-05 15:46:28,200] INFO in app: noise",
		"2026-12-05T15:46:28.3Z stdout F actor=bob",
		"2026-12-05T15:46:28.4Z stdout F [2026-12-05 15:46:28,400] INFO in app: hello",
	}
	want := []string{"", "", UserDeleted, ""}
	for i, l := range lines {
		ev := sdk.Event{Kind: sdk.KindLog, Origin: "pod.log", Line: []byte(l)}
		got1 := first.Apply(&ev)
		got2 := second.Apply(&ev)
		if got1 != want[i] || got2 != want[i] {
			t.Errorf("line %d: first %q, second %q, want %q", i, got1, got2, want[i])
		}
		if i == 2 && (ev.Field(FieldUserID) != "5" || ev.Field(FieldActor) != "bob") {
			t.Errorf("joined line's fields %v", ev.Fields)
		}
	}
	if first.pending != 0 || second.pending != 0 {
		t.Fatalf("held after the final parts: %d, %d", first.pending, second.pending)
	}
}
