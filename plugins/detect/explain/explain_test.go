package explain

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/tda-dev/tda/plugins/detect/override"
	"github.com/tda-dev/tda/plugins/detect/parse"
	"github.com/tda-dev/tda/plugins/detect/rules"
	"github.com/tda-dev/tda/sdk"
)

// ignoringParser is the real parser, which also says why it dropped a line: the parser
// reports its own reasons through LastIgnored, which explain calls when the parser has it.
type ignoringParser struct {
	*parse.Parser
	last string
}

func (p *ignoringParser) Apply(ev *sdk.Event) string {
	p.last = ""
	if bytes.Contains(ev.Line, []byte("refresh_tokens")) {
		p.last = `table policy: "refresh_tokens" matches exclude "*token*"`
		return ""
	}
	return p.Parser.Apply(ev)
}

func (p *ignoringParser) LastIgnored() string { return p.last }

func TestExplainIgnoredReason(t *testing.T) {
	r := &rules.Rule{Name: "bulk_deletion", Match: []string{"rows_deleted"}, Threshold: 10, Window: 60e9}
	if err := r.Check(); err != nil {
		t.Fatal(err)
	}
	x := New([]LineParser{&ignoringParser{Parser: parse.New(parse.Options{})}},
		rules.NewEngine([]*rules.Rule{r}, rules.Options{Instance: "processor.rules.t"}))
	lines := []string{
		"2026-11-29 10:00:12,001 INFO sqlalchemy.engine.Engine DELETE FROM refresh_tokens WHERE refresh_tokens.user_id = ?",
		"2026-11-29 10:00:12,002 INFO sqlalchemy.engine.Engine DELETE FROM users WHERE users.id = ?",
	}
	got := []Line{x.Explain("app.log", 1, []byte(lines[0])), x.Explain("app.log", 2, []byte(lines[1]))}
	if got[0].Event != "" || got[0].Reason != `ignored: table policy: "refresh_tokens" matches exclude "*token*"` {
		t.Errorf("line 1: event %q, reason %q", got[0].Event, got[0].Reason)
	}
	if got[1].Event != parse.RowsDeleted || len(got[1].Rules) != 1 || !got[1].Rules[0].Counted || got[1].Reason != "" {
		t.Errorf("line 2: %+v", got[1])
	}
	if x.ignored != 1 {
		t.Errorf("ignored %d, want 1", x.ignored)
	}
	var out bytes.Buffer
	tab := NewTable(&out)
	for i := range got {
		if !Shown(&got[i], true, "") {
			t.Errorf("-only-events hides line %d", i+1)
		}
		if err := tab.Write(&got[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := tab.Flush(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), `ignored: table policy: "refresh_tokens"`) {
		t.Errorf("the table does not show the reason:\n%s", out.String())
	}
}

func TestTermSafe(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain", "plain"},
		{"é ü 日本", "é ü 日本"},
		{"\x1b[31mred\x1b[0m", `\x1b[31mred\x1b[0m`},
		{"a\nb\r\tc", `a\nb\r\tc`},
		{"bell\x07del\x7f", `bell\adel\x7f`},
		{"c1\u0085\u009b", `c1\u0085\u009b`},
		{"bad\xffutf8", `bad\xffutf8`},
	}
	for _, tc := range tests {
		if got := termSafe(tc.in); got != tc.want {
			t.Errorf("termSafe(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestExplainWouldFire counts incidents once each, and an incident that override mode first
// suppressed and that paged when the override ended as not suppressed.
func TestExplainWouldFire(t *testing.T) {
	const (
		on      = `[2026-11-29 10:00:00,000] INFO in ops: override_enabled actor=alice reason="import" ttl=30m`
		off     = `[2026-11-29 10:00:02,000] INFO in ops: override_disabled actor=alice`
		created = `[2026-11-29 10:00:0%d,000] INFO in auth: user_created user_id=%d actor=importer`
	)
	tests := []struct {
		name                  string
		lines                 []string
		incidents, suppressed int
	}{
		{"firing", []string{fmt.Sprintf(created, 1, 1), fmt.Sprintf(created, 3, 2)}, 1, 0},
		{"suppressed", []string{on, fmt.Sprintf(created, 1, 1), fmt.Sprintf(created, 3, 2)}, 1, 1},
		{"suppressed, then paging", []string{on, fmt.Sprintf(created, 1, 1), off, fmt.Sprintf(created, 3, 2)}, 1, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := &rules.Rule{Name: "bulk_user_creation", Match: []string{"user_created"}, Threshold: 0,
				Window: time.Minute, Overridable: true}
			if err := r.Check(); err != nil {
				t.Fatal(err)
			}
			allow, err := override.NewOrigins([]string{"app.log"})
			if err != nil {
				t.Fatal(err)
			}
			x := New([]LineParser{parse.New(parse.Options{})},
				rules.NewEngine([]*rules.Rule{r}, rules.Options{Instance: "t", AllowOrigins: allow}))
			for i, l := range tc.lines {
				x.Explain("app.log", i+1, []byte(l))
			}
			x.Finish()
			got := x.tallies[0]
			if got.Counted != 2 || got.Incidents != tc.incidents || got.Suppressed != tc.suppressed {
				t.Errorf("counted %d, incidents %d, suppressed %d; want 2, %d, %d", got.Counted, got.Incidents,
					got.Suppressed, tc.incidents, tc.suppressed)
			}
		})
	}
}

// failingReader returns data, then err.
type failingReader struct {
	data []byte
	err  error
}

func (r *failingReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

func TestExplainReadLines(t *testing.T) {
	long := strings.Repeat("x", 200<<10) // more than the reader's 64 KiB buffer
	huge := strings.Repeat("y", MaxLine+10)
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"empty", "", nil},
		{"no final newline", "a\nb", []string{"a", "b"}},
		{"crlf and blank lines", "a\r\n\r\n\nb\r\n", []string{"a", "", "", "b"}},
		{"long line", "a\n" + long + "\nb\n", []string{"a", long, "b"}},
		{"line cut at the limit", huge + "\nz\n", []string{huge[:MaxLine], "z"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			next := 1
			err := ReadLines(strings.NewReader(tc.in), func(n int, line []byte) error {
				if n != next {
					t.Fatalf("line number %d, want %d", n, next)
				}
				next++
				got = append(got, string(line))
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %d lines %.40q, want %d %.40q", len(got), got, len(tc.want), tc.want)
			}
		})
	}
	t.Run("read error names the line", func(t *testing.T) {
		r := &failingReader{data: []byte("a\nb\npartial"), err: errors.New("input/output error")}
		var got []string
		err := ReadLines(r, func(_ int, line []byte) error { got = append(got, string(line)); return nil })
		if err == nil || !strings.Contains(err.Error(), "read line 3: input/output error") {
			t.Fatalf("error %v", err)
		}
		if !reflect.DeepEqual(got, []string{"a", "b", "partial"}) {
			t.Errorf("lines before the error: %q", got)
		}
	})
	t.Run("a write error stops the reading", func(t *testing.T) {
		stop := errors.New("broken pipe")
		calls := 0
		err := ReadLines(strings.NewReader("a\nb\nc\n"), func(int, []byte) error { calls++; return stop })
		if !errors.Is(err, stop) || calls != 1 {
			t.Fatalf("error %v after %d lines", err, calls)
		}
	})
}

func TestExplainUnmatchedTypesBounded(t *testing.T) {
	x := New(nil, rules.NewEngine(nil, rules.Options{Instance: "t"}))
	for i := 0; i < 3*maxUnmatchedTypes; i++ {
		x.countUnmatched(fmt.Sprintf("type_%d", i))
	}
	x.countUnmatched("type_0")
	if len(x.unmatched) != maxUnmatchedTypes+1 {
		t.Fatalf("%d types kept, want %d", len(x.unmatched), maxUnmatchedTypes+1)
	}
	if x.unmatched["type_0"] != 2 || x.unmatched[otherTypes] != 2*maxUnmatchedTypes {
		t.Errorf("type_0 %d, other %d", x.unmatched["type_0"], x.unmatched[otherTypes])
	}
}

// FuzzTermSafe: whatever a log line holds, what explain prints of it has no control
// character and is valid UTF-8.
func FuzzTermSafe(f *testing.F) {
	for _, s := range []string{"plain", "\x1b[31mred\x1b[0m", "a\nb", "\u0085\u009b", "bad\xff", "x\x1b]0;t\x07"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := termSafe(s)
		if !utf8.ValidString(out) {
			t.Fatalf("termSafe(%q) = %q: invalid UTF-8", s, out)
		}
		for _, r := range out {
			if unicode.IsControl(r) {
				t.Fatalf("termSafe(%q) = %q: control %U", s, out, r)
			}
		}
		if v := fieldValue(s); strings.ContainsAny(v, "\n\r\x1b") {
			t.Fatalf("fieldValue(%q) = %q", s, v)
		}
	})
}
