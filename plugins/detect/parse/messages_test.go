package parse

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tda-dev/tda/sdk"
)

// messageCase is one case of a testdata/messages file: lines fed in order to a fresh parser
// on one origin, each with the fields it must yield and, when it is recognised but not
// emitted, the reason LastIgnored must give.
type messageCase struct {
	name, file string
	lines      []messageLine
}

type messageLine struct {
	no      int
	line    string
	fields  string // sorted k=v, "" for no event
	ignored string // a substring of LastIgnored, "" for none
	time    string // RFC 3339, "" for not checked
}

// readMessageCases reads the case files. Their syntax:
//
//	## case name
//	# free text: where the lines come from
//	< an input line (verbatim, to the end of the line)
//	= the fields it yields, sorted k=v (or "-" for none)
//	! a substring of LastIgnored's reason (optional, after "=")
//	@ the event time, RFC 3339 (optional, after "=")
func readMessageCases(t *testing.T) []messageCase {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "messages", "*.txt"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no case files: %v", err)
	}
	var cases []messageCase
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		no := 0
		var cur *messageCase
		for sc.Scan() {
			no++
			l := sc.Text()
			switch {
			case strings.HasPrefix(l, "## "):
				cases = append(cases, messageCase{name: strings.TrimPrefix(l, "## "), file: filepath.Base(f)})
				cur = &cases[len(cases)-1]
			case strings.HasPrefix(l, "#"), strings.TrimSpace(l) == "":
			case cur == nil:
				t.Fatalf("%s:%d: a line before the first case", f, no)
			case strings.HasPrefix(l, "< "):
				cur.lines = append(cur.lines, messageLine{no: no, line: unescapeCase(l[2:]), fields: "?"})
			case strings.HasPrefix(l, "= ") || l == "=":
				if len(cur.lines) == 0 || cur.lines[len(cur.lines)-1].fields != "?" {
					t.Fatalf("%s:%d: an expectation without its input line", f, no)
				}
				want := strings.TrimSpace(strings.TrimPrefix(l, "="))
				if want == "-" {
					want = ""
				}
				cur.lines[len(cur.lines)-1].fields = want
			case strings.HasPrefix(l, "! "):
				cur.lines[len(cur.lines)-1].ignored = l[2:]
			case strings.HasPrefix(l, "@ "):
				cur.lines[len(cur.lines)-1].time = l[2:]
			default:
				t.Fatalf("%s:%d: unknown line %q", f, no, l)
			}
		}
		fh.Close()
		for _, c := range cases {
			for _, ml := range c.lines {
				if ml.fields == "?" {
					t.Fatalf("%s:%d: input line without expectation", c.file, ml.no)
				}
			}
		}
	}
	return cases
}

// unescapeCase turns \t and \e in a case file's input line into a tab and ESC.
func unescapeCase(s string) string {
	return strings.NewReplacer(`\t`, "\t", `\e`, "\x1b").Replace(s)
}

// TestMessages runs every case of testdata/messages: real lines of each framework format
// and the fields they must yield.
func TestMessages(t *testing.T) {
	for _, c := range readMessageCases(t) {
		t.Run(c.file+"/"+c.name, func(t *testing.T) {
			p := New(Options{})
			for _, ml := range c.lines {
				ev := sdk.Event{Kind: sdk.KindLog, Origin: "app", Line: []byte(ml.line)}
				typ := p.Apply(&ev)
				if got := fieldsString(ev.Fields); got != ml.fields {
					t.Errorf("%s:%d: fields\n got %q\nwant %q", c.file, ml.no, got, ml.fields)
				}
				if typ != ev.Field(FieldEvent) {
					t.Errorf("%s:%d: Apply returned %q, fields say %q", c.file, ml.no, typ, ev.Field(FieldEvent))
				}
				got := p.LastIgnored()
				switch {
				case ml.ignored == "" && got != "":
					t.Errorf("%s:%d: LastIgnored %q, want none", c.file, ml.no, got)
				case ml.ignored != "" && !strings.Contains(got, ml.ignored):
					t.Errorf("%s:%d: LastIgnored %q, want it to say %q", c.file, ml.no, got, ml.ignored)
				}
				if ml.time != "" {
					want, err := time.Parse(time.RFC3339Nano, ml.time)
					if err != nil {
						t.Fatalf("%s:%d: %v", c.file, ml.no, err)
					}
					if !ev.Time.Equal(want) {
						t.Errorf("%s:%d: time %s, want %s", c.file, ml.no, ev.Time, want)
					}
				}
			}
		})
	}
}

// TestSecondParserAgrees: in a pipeline the override processor parses first and the rules
// processor parses only the lines left without an event. Its own memory (format_sql
// statements, show_sql duplicates, audit-speaking origins, Liquibase pairs) must lead it to
// the same events: none more, none fewer.
func TestSecondParserAgrees(t *testing.T) {
	for _, c := range readMessageCases(t) {
		t.Run(c.file+"/"+c.name, func(t *testing.T) {
			first, second := New(Options{}), New(Options{})
			for _, ml := range c.lines {
				ev := sdk.Event{Kind: sdk.KindLog, Origin: "app", Line: []byte(ml.line)}
				want := first.Apply(&ev)
				wantFields := fieldsString(ev.Fields)
				if got := second.Apply(&ev); got != want || fieldsString(ev.Fields) != wantFields {
					t.Errorf("%s:%d: second parser %q %s, first %q %s", c.file, ml.no, got, fieldsString(ev.Fields), want, wantFields)
				}
			}
		})
	}
}

// TestLogoutDeletingRefreshTokens: a logout that deletes the user's refresh tokens is routine
// and must not page: by default no event, and LastIgnored says which pattern excluded it.
// Including the table again makes it count.
func TestLogoutDeletingRefreshTokens(t *testing.T) {
	lines := []string{
		`10.0.0.8 - - [05/Dec/2026 15:46:28] "POST /auth/logout HTTP/1.1" 204 -`,
		`INFO:sqlalchemy.engine.Engine:DELETE FROM refresh_tokens WHERE refresh_tokens.user_id = ?`,
		`INFO:sqlalchemy.engine.Engine:[generated in 0.00011s] (42,)`,
	}
	p := New(Options{})
	for _, l := range lines {
		ev := sdk.Event{Kind: sdk.KindLog, Origin: "web", Line: []byte(l)}
		if typ := p.Apply(&ev); typ != "" {
			t.Fatalf("%s: event %q %v", l, typ, ev.Fields)
		}
		if l == lines[1] {
			if got, want := p.LastIgnored(), `table policy: "refresh_tokens" matches exclude "*token*"`; got != want {
				t.Fatalf("LastIgnored %q, want %q", got, want)
			}
		} else if p.LastIgnored() != "" {
			t.Fatalf("%s: LastIgnored %q for a line recognising nothing", l, p.LastIgnored())
		}
	}
	pol, err := NewTablePolicy(nil, []string{"*session*"})
	if err != nil {
		t.Fatal(err)
	}
	p = New(Options{Tables: pol})
	ev := sdk.Event{Kind: sdk.KindLog, Origin: "web", Line: []byte(lines[1])}
	if p.Apply(&ev) != RowsDeleted || ev.Field(FieldTable) != "refresh_tokens" || p.LastIgnored() != "" {
		t.Fatalf("with tokens no longer excluded: %v %q", ev.Fields, p.LastIgnored())
	}
}

func TestTablePolicy(t *testing.T) {
	tests := []struct {
		include, exclude []string
		table, schema    string
		want             string // "" counts; else a substring of the reason
	}{
		{nil, nil, "users", "", ""},
		{nil, nil, "user_sessions", "", `"user_sessions" matches exclude "*session*"`},
		{nil, nil, "refresh_tokens", "auth", `"auth.refresh_tokens" matches exclude "*token*"`},
		{nil, nil, "qrtz_fired_triggers", "", `matches exclude "qrtz_*"`},
		{[]string{"users", "orders"}, []string{}, "users", "", ""},
		{[]string{"users", "orders"}, []string{}, "payments", "", `"payments" matches no include pattern`},
		{[]string{"billing.*"}, []string{}, "invoices", "billing", ""},
		{[]string{"billing.*"}, []string{}, "invoices", "", "matches no include pattern"},
		{[]string{"*"}, []string{"AUDIT_*"}, "audit_log", "", `matches exclude "audit_*"`},
	}
	for _, tt := range tests {
		p, err := NewTablePolicy(tt.include, tt.exclude)
		if err != nil {
			t.Fatal(err)
		}
		got := p.Ignores(tt.table, tt.schema)
		if (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
			t.Errorf("%v/%v %s.%s: %q, want %q", tt.include, tt.exclude, tt.schema, tt.table, got, tt.want)
		}
	}
	for _, bad := range [][]string{{"[a-"}, {""}, {"  "}} {
		if _, err := NewTablePolicy(bad, nil); err == nil {
			t.Errorf("pattern %q accepted", bad)
		}
	}
}

// TestStructuredExtraWords: an audit_events word without an underscore is recognised in a
// structured line's message too.
func TestStructuredExtraWords(t *testing.T) {
	p := New(Options{ExtraEvents: []string{"refund"}})
	ev := sdk.Event{Kind: sdk.KindLog, Line: []byte(`{"@timestamp":"2026-12-05T15:46:28.123Z","message":"refund amount=5 actor=bob","logger_name":"pay"}`)}
	if p.Apply(&ev) != "refund" || ev.Field("amount") != "5" || ev.Field(FieldFormat) != FormatJSON {
		t.Fatalf("got %v", ev.Fields)
	}
}
