package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"github.com/tda-dev/tda/plugins/detect/override"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/tda-dev/tda/plugins/detect/parse"
	"github.com/tda-dev/tda/plugins/detect/rules"
	"github.com/tda-dev/tda/sdk"
)

// TestExplainGolden runs tda explain on testdata/explain/app.log, whose lines each show one
// kind of decision, and compares with the golden files (-update rewrites them).
func TestExplainGolden(t *testing.T) {
	cfg := filepath.Join("testdata", "explain", "config.hcl")
	log := filepath.Join("testdata", "explain", "app.log")
	tests := []struct {
		golden string
		args   []string
	}{
		{"table.golden", nil},
		{"json.golden", []string{"-json"}},
		{"only_events.golden", []string{"-only-events"}},
		{"rule.golden", []string{"-rule", "mass_password_reset"}},
		{"rule_json.golden", []string{"-json", "-rule", "migration_outside_window"}},
	}
	for _, tc := range tests {
		t.Run(tc.golden, func(t *testing.T) {
			var out, errOut bytes.Buffer
			args := append(append([]string{"explain", "-config", cfg}, tc.args...), log)
			if code := Main(args, &out, &errOut); code != 0 {
				t.Fatalf("exit %d: %s", code, errOut.String())
			}
			assertTerminalSafe(t, out.Bytes())
			path := filepath.Join("testdata", "explain", tc.golden)
			if updateGolden() {
				if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(out.Bytes(), want) {
				t.Errorf("output differs from %s (run with -update to accept):\n%s", path, out.String())
			}
			if tc.args != nil && tc.args[0] == "-json" {
				if !strings.Contains(errOut.String(), "RULE") {
					t.Errorf("-json prints no summary on standard error: %q", errOut.String())
				}
			}
		})
	}
}

// updateGolden reports -update, which the package's external tests declare (one flag for
// every golden file of the package).
func updateGolden() bool {
	f := flag.Lookup("update")
	return f != nil && f.Value.String() == "true"
}

// assertTerminalSafe fails when output holds a control character other than the newline
// ending each line.
func assertTerminalSafe(t *testing.T, out []byte) {
	t.Helper()
	for i, c := range out {
		if (c < 0x20 && c != '\n') || c == 0x7f {
			t.Fatalf("control byte %#x at offset %d of the output: %q", c, i, out[max(0, i-40):min(len(out), i+40)])
		}
	}
}

// TestExplainJSONShape checks the documented keys and their order, for every line, on lines
// of real Flask app logs.
func TestExplainJSONShape(t *testing.T) {
	logs, _ := filepath.Glob(filepath.Join("..", "..", "plugins", "detect", "realapp", "testdata", "logs", "*.log"))
	logs = append(logs, filepath.Join("testdata", "explain", "app.log"))
	var out, errOut bytes.Buffer
	if code := Main(append([]string{"explain", "-json"}, logs...), &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	assertTerminalSafe(t, out.Bytes())
	wantKeys := []string{"file", "line", "time", "format", "event", "fields", "rules", "reason"}
	lines := bytes.Split(bytes.TrimSuffix(out.Bytes(), []byte("\n")), []byte("\n"))
	total := 0
	for _, f := range logs {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		total += bytes.Count(b, []byte("\n"))
	}
	if len(lines) != total {
		t.Fatalf("%d JSON lines for %d input lines", len(lines), total)
	}
	prev := explainLine{}
	for _, l := range lines {
		dec := json.NewDecoder(bytes.NewReader(l))
		var keys []string
		if _, err := dec.Token(); err != nil {
			t.Fatal(err)
		}
		for dec.More() {
			k, err := dec.Token()
			if err != nil {
				t.Fatal(err)
			}
			keys = append(keys, k.(string))
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				t.Fatal(err)
			}
		}
		if !reflect.DeepEqual(keys, wantKeys) {
			t.Fatalf("keys %v, want %v: %s", keys, wantKeys, l)
		}
		var rec explainLine
		if err := json.Unmarshal(l, &rec); err != nil {
			t.Fatal(err)
		}
		if rec.Fields == nil || rec.Rules == nil {
			t.Fatalf("fields and rules must be an object and a list, never null: %s", l)
		}
		if rec.File == prev.File && rec.Line != prev.Line+1 || rec.File != prev.File && rec.Line != 1 {
			t.Fatalf("line %s:%d follows %s:%d", rec.File, rec.Line, prev.File, prev.Line)
		}
		if (rec.Event == "") != (rec.Format == "") {
			t.Fatalf("an event line has a format and only an event line has one: %s", l)
		}
		prev = rec
	}
}

func TestExplainErrors(t *testing.T) {
	cfg := filepath.Join("testdata", "explain", "config.hcl")
	log := filepath.Join("testdata", "explain", "app.log")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no file", []string{"explain", "-config", cfg}, "name at least one log file"},
		{"missing file", []string{"explain", "-config", cfg, "testdata/explain/nope.log"}, "nope.log: no such file"},
		{"unknown rule", []string{"explain", "-config", cfg, "-rule", "nope", log},
			`has no rule "nope"; its rules: mass_password_reset, api_deletions, bulk_user_creation, migration_outside_window`},
		{"unknown processor", []string{"explain", "-config", cfg, "-processor", "other", log}, `no processor "rules" "other"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			if code := Main(tc.args, &out, &errOut); code != 1 {
				t.Fatalf("exit %d, want 1", code)
			}
			if !strings.Contains(errOut.String(), tc.want) {
				t.Errorf("stderr %q does not say %q", errOut.String(), tc.want)
			}
		})
	}
}

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
	x := newExplainerWith([]lineParser{&ignoringParser{Parser: parse.New(parse.Options{})}},
		rules.NewEngine([]*rules.Rule{r}, rules.Options{Instance: "processor.rules.t"}))
	lines := []string{
		"2026-11-29 10:00:12,001 INFO sqlalchemy.engine.Engine DELETE FROM refresh_tokens WHERE refresh_tokens.user_id = ?",
		"2026-11-29 10:00:12,002 INFO sqlalchemy.engine.Engine DELETE FROM users WHERE users.id = ?",
	}
	got := []explainLine{x.explain("app.log", 1, []byte(lines[0])), x.explain("app.log", 2, []byte(lines[1]))}
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
	tab := newExplainTable(&out)
	for i := range got {
		if !shown(&got[i], true, "") {
			t.Errorf("-only-events hides line %d", i+1)
		}
		if err := tab.write(&got[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := tab.flush(); err != nil {
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
			x := newExplainerWith([]lineParser{parse.New(parse.Options{})},
				rules.NewEngine([]*rules.Rule{r}, rules.Options{Instance: "t", AllowOrigins: allow}))
			for i, l := range tc.lines {
				x.explain("app.log", i+1, []byte(l))
			}
			x.finish()
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
	huge := strings.Repeat("y", explainMaxLine+10)
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"empty", "", nil},
		{"no final newline", "a\nb", []string{"a", "b"}},
		{"crlf and blank lines", "a\r\n\r\n\nb\r\n", []string{"a", "", "", "b"}},
		{"long line", "a\n" + long + "\nb\n", []string{"a", long, "b"}},
		{"line cut at the limit", huge + "\nz\n", []string{huge[:explainMaxLine], "z"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			next := 1
			err := readLines(strings.NewReader(tc.in), func(n int, line []byte) error {
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
		err := readLines(r, func(_ int, line []byte) error { got = append(got, string(line)); return nil })
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
		err := readLines(strings.NewReader("a\nb\nc\n"), func(int, []byte) error { calls++; return stop })
		if !errors.Is(err, stop) || calls != 1 {
			t.Fatalf("error %v after %d lines", err, calls)
		}
	})
}

// TestExplainAgreesWithTheCorpus checks explain's "would fire" against the incidents the
// detection pipeline raises on the corpus with the embedded configuration
// (plugins/detect/testdata/corpus/expected-alerts.jsonl, also checked by plugins/detect).
func TestExplainAgreesWithTheCorpus(t *testing.T) {
	corpus := filepath.Join("..", "..", "plugins", "detect", "testdata", "corpus")
	data, err := os.ReadFile(filepath.Join(corpus, "expected-alerts.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	type counts struct{ incidents, suppressed int }
	want := map[string]counts{}
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var e struct{ Rule, State string }
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatal(err)
		}
		c := want[e.Rule]
		c.incidents++
		if e.State == sdk.StateSuppressed {
			c.suppressed++
		}
		want[e.Rule] = c
	}
	var out, errOut bytes.Buffer
	args := []string{"explain", filepath.Join(corpus, "flask-sample.log"), filepath.Join(corpus, "spring-sample.log")}
	if code := Main(args, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	row := regexp.MustCompile(`(?m)^(\w+)\s+\d+\s+\d+\s+(?:yes: (\d+) incidents?(?: \((\d+) suppressed[^)]*\))?|suppressed: (\d+) incidents?.*|no \(.*\))$`)
	got := map[string]counts{}
	for _, m := range row.FindAllStringSubmatch(out.String(), -1) {
		atoi := func(s string) int { n, _ := strconv.Atoi(s); return n }
		switch {
		case m[2] != "":
			got[m[1]] = counts{atoi(m[2]), atoi(m[3])}
		case m[4] != "":
			got[m[1]] = counts{atoi(m[4]), atoi(m[4])}
		default:
			got[m[1]] = counts{}
		}
	}
	if len(got) == 0 {
		t.Fatalf("no rule summary in the output:\n%s", out.String())
	}
	for rule, w := range want {
		if got[rule] != w {
			t.Errorf("rule %s: explain says %d incidents (%d suppressed), the corpus expects %d (%d)",
				rule, got[rule].incidents, got[rule].suppressed, w.incidents, w.suppressed)
		}
	}
	for rule, g := range got {
		if _, ok := want[rule]; !ok && g.incidents > 0 {
			t.Errorf("rule %s: explain says %d incidents, the corpus expects none", rule, g.incidents)
		}
	}
}

// TestExplainFollowsThePipeline: a line only the override processor's own parser block
// recognises is an event for the rules processor after it, as in the pipeline.
func TestExplainFollowsThePipeline(t *testing.T) {
	log := filepath.Join(t.TempDir(), "app.log")
	lines := "2026-11-29T10:00:00Z VOID invoice=17 by=mallory\n2026-11-29T10:00:01Z VOID invoice=18 by=mallory\n"
	if err := os.WriteFile(log, []byte(lines), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	args := []string{"explain", "-json", "-config", filepath.Join("testdata", "explain", "chain.hcl"), log}
	if code := Main(args, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	for i, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var rec explainLine
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatal(err)
		}
		if rec.Event != "invoice_voided" || rec.Format != "invoice" || rec.Fields["invoice"] != strconv.Itoa(17+i) ||
			len(rec.Rules) != 1 || !rec.Rules[0].Counted {
			t.Errorf("line %d: %s", i+1, l)
		}
	}
	if !strings.Contains(errOut.String(), "mass_voids  2        2        yes: 1 incident") {
		t.Errorf("summary:\n%s", errOut.String())
	}
}

func TestExplainUnmatchedTypesBounded(t *testing.T) {
	x := newExplainerWith(nil, rules.NewEngine(nil, rules.Options{Instance: "t"}))
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

// TestExplainTableOnRealLogs: the table over real app logs (Werkzeug's colour codes among
// them) holds no control character.
func TestExplainTableOnRealLogs(t *testing.T) {
	logs, _ := filepath.Glob(filepath.Join("..", "..", "plugins", "detect", "realapp", "testdata", "logs", "*.log"))
	if len(logs) == 0 {
		t.Fatal("no captured logs under plugins/detect/realapp/testdata/logs")
	}
	var out, errOut bytes.Buffer
	if code := Main(append([]string{"explain"}, logs...), &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	assertTerminalSafe(t, out.Bytes())
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
