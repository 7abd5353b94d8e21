package realapp

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"text/tabwriter"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"

	"github.com/tda-dev/tda/plugins/detect"
	"github.com/tda-dev/tda/plugins/detect/parse"
	"github.com/tda-dev/tda/sdk"
	"github.com/tda-dev/tda/sdk/sdktest"
)

// knownGaps are the cases the parser does not get right today, as "setup: case". The test
// fails when a case outside this list fails (a regression) and when a case in it passes (then
// remove it): the list can only shrink. Each entry is a line kind an app really writes whose
// incident tda would miss (or, for cases whose truth is no event, would report wrongly).
var knownGaps = []string{}

// truth says what a kind of line truly is. Access lines are matched by method, path and
// status, SQL echo by the table a DELETE names, Alembic by its "Running upgrade" message.
type truth struct {
	Case    string
	Method  string
	Path    *regexp.Regexp
	Status  int
	Table   string
	Alembic bool
	// Event is what the line is: an event type, or "" for a line that is none.
	Event string
}

// otherLines is the case of every line no truth describes: none of them is an event.
const otherLines = "other lines (no event)"

var truths = []truth{
	{Case: "form login failure (POST /login 200)", Method: "POST", Path: regexp.MustCompile(`^/login$`), Status: 200, Event: parse.LoginFailed},
	{Case: "form login success (POST /login 302)", Method: "POST", Path: regexp.MustCompile(`^/login$`), Status: 302},
	{Case: "form password change (POST /account/password 302)", Method: "POST", Path: regexp.MustCompile(`^/account/password$`), Status: 302, Event: parse.PasswordChanged},
	{Case: "API login failure (POST /api/login 401)", Method: "POST", Path: regexp.MustCompile(`^/api/login$`), Status: 401, Event: parse.LoginFailed},
	{Case: "API login success (POST /api/login 200)", Method: "POST", Path: regexp.MustCompile(`^/api/login$`), Status: 200},
	{Case: "API password reset (POST /api/password/reset 200)", Method: "POST", Path: regexp.MustCompile(`^/api/password/reset$`), Status: 200, Event: parse.PasswordChanged},
	{Case: "API password change (PUT /api/users/<id>/password 204)", Method: "PUT", Path: regexp.MustCompile(`^/api/users/\d+/password$`), Status: 204, Event: parse.PasswordChanged},
	{Case: "API user creation (POST /api/users 201)", Method: "POST", Path: regexp.MustCompile(`^/api/users$`), Status: 201, Event: parse.UserCreated},
	{Case: "API user deletion (DELETE /api/users/<id> 204)", Method: "DELETE", Path: regexp.MustCompile(`^/api/users/\d+$`), Status: 204, Event: parse.UserDeleted},
	{Case: "form user deletion (POST /admin/users/<id>/delete 302)", Method: "POST", Path: regexp.MustCompile(`^/admin/users/\d+/delete$`), Status: 302, Event: parse.UserDeleted},
	{Case: "logout (POST /logout 302)", Method: "POST", Path: regexp.MustCompile(`^/logout$`), Status: 302},
	{Case: "SQL delete from users", Table: "users", Event: parse.RowsDeleted},
	{Case: "SQL delete from sessions (logout)", Table: "sessions"},
	{Case: "SQL delete from refresh_tokens (logout)", Table: "refresh_tokens"},
	{Case: "Alembic upgrade", Alembic: true, Event: parse.MigrationStarted},
}

var (
	ansi = regexp.MustCompile("\x1b\\[[0-9;]*m")
	// accessRequest finds method, path and status in any access line: Werkzeug's and gunicorn's,
	// behind any logging prefix, and gunicorn JSON lines whose "status" follows "status_line".
	accessRequest = regexp.MustCompile(`\b(GET|HEAD|POST|PUT|PATCH|DELETE|OPTIONS) (/[^ "?]*)\S* HTTP/1\.[01]"?(?:,\s*"status":\s*"?|\s+)(\d{3})\b`)
	sqlDelete     = regexp.MustCompile(`\bDELETE FROM "?(\w+)"?`)
)

// truthOf returns the truth of a line; ok false means otherLines.
func truthOf(line []byte) (truth, bool) {
	s := ansi.ReplaceAllString(string(line), "")
	if m := accessRequest.FindStringSubmatch(s); m != nil {
		status, _ := strconv.Atoi(m[3])
		for _, tr := range truths {
			if tr.Method == m[1] && tr.Path.MatchString(m[2]) && tr.Status == status {
				return tr, true
			}
		}
		return truth{}, false
	}
	if m := sqlDelete.FindStringSubmatch(s); m != nil {
		for _, tr := range truths {
			if tr.Table != "" && tr.Table == m[1] {
				return tr, true
			}
		}
		return truth{}, false
	}
	if strings.Contains(s, "Running upgrade ") {
		for _, tr := range truths {
			if tr.Alembic {
				return tr, true
			}
		}
	}
	return truth{}, false
}

// shippedOverrideBlock is the body of the override processor of configs/detect.hcl: the
// parser settings of the shipped detection (configs/agent.hcl runs the same in its one rules
// block), which parses every line.
func shippedOverrideBlock(t testing.TB) string {
	t.Helper()
	path := filepath.Join("..", "..", "..", "configs", "detect.hcl")
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, diags := hclsyntax.ParseConfig(src, path, hcl.InitialPos)
	if diags.HasErrors() {
		t.Fatalf("%s: %v", path, diags)
	}
	for _, b := range f.Body.(*hclsyntax.Body).Blocks {
		if b.Type == "processor" && len(b.Labels) == 2 && b.Labels[0] == "override" {
			return string(src[b.OpenBraceRange.End.Byte:b.CloseBraceRange.Start.Byte])
		}
	}
	t.Fatalf("%s has no override processor", path)
	return ""
}

// appDeclarations are what docs/detection.md asks of a team running this app: its gunicorn
// access_log_format when it is not the default, and a route saying that its form login
// answers a failure by rendering the form again with 200 (a success redirects).
func appDeclarations(s setup) string {
	d := "\nroute {\n  method = \"POST\"\n  path   = \"/login\"\n  status = [200]\n  event  = \"login_failed\"\n}\n"
	if s.AccessFormat != "" {
		d += fmt.Sprintf("gunicorn_formats = [%q]\n", s.AccessFormat)
	}
	return d
}

// lineResult is the verdict on one line.
type lineResult struct {
	N          int
	Line       string
	Case       string
	Want, Got  string
	Format     string
	HasTruth   bool
	WantsEvent bool
}

func (r lineResult) ok() bool { return r.Want == r.Got }

// judge runs a setup's lines through the shipped override processor (the real parser) and
// compares each line's event with its truth.
func judge(t testing.TB, block, setup string, lines [][]byte) []lineResult {
	t.Helper()
	p := sdktest.NewProcessor(t, detect.OverrideComponent(), block, sdktest.WithMode(sdktest.Direct),
		sdktest.WithInstance("processor.override.flags"))
	events := make([]sdk.Event, len(lines))
	for i, l := range lines {
		events[i] = sdk.Event{Kind: sdk.KindLog, Source: "file.realapp", Origin: setup + ".log", Line: l}
	}
	var logs []sdk.Event
	for _, ev := range p.ProcessAt(events, sdk.Watermark{Final: true}) {
		if ev.Kind == sdk.KindLog {
			logs = append(logs, ev)
		}
	}
	if len(logs) != len(lines) {
		t.Fatalf("%s: %d lines in, %d log events out", setup, len(lines), len(logs))
	}
	out := make([]lineResult, len(lines))
	for i, ev := range logs {
		tr, found := truthOf(lines[i])
		r := lineResult{N: i + 1, Line: string(lines[i]), Case: otherLines, Want: tr.Event,
			Got: ev.Field(parse.FieldEvent), Format: ev.Field(parse.FieldFormat), HasTruth: found}
		if found {
			r.Case = tr.Case
		}
		r.WantsEvent = r.Want != ""
		out[i] = r
	}
	return out
}

// setupFigures are a setup's recognition figures.
type setupFigures struct {
	Setup      string
	Lines      int
	Expected   int // lines that are events
	Recognised int // of which the parser found the right event
	Wrong      int // lines given an event they are not (wrong type, or an event where none is)
}

func figuresOf(setup string, rs []lineResult) setupFigures {
	f := setupFigures{Setup: setup, Lines: len(rs)}
	for _, r := range rs {
		if r.WantsEvent {
			f.Expected++
			if r.ok() {
				f.Recognised++
			}
		}
		if r.Got != "" && !r.ok() {
			f.Wrong++
		}
	}
	return f
}

// failingCases returns the "setup: case" keys of the cases with at least one wrong line.
func failingCases(setup string, rs []lineResult) map[string][]lineResult {
	out := map[string][]lineResult{}
	for _, r := range rs {
		if !r.ok() {
			k := setup + ": " + r.Case
			out[k] = append(out[k], r)
		}
	}
	return out
}

// recognitionTable formats the figures of every setup.
func recognitionTable(figs []setupFigures) string {
	var b bytes.Buffer
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprint(tw, "SETUP\tLINES\tEVENTS EXPECTED\tRECOGNISED\tWRONG\n")
	var tot setupFigures
	for _, f := range figs {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\n", f.Setup, f.Lines, f.Expected, f.Recognised, f.Wrong)
		tot.Lines += f.Lines
		tot.Expected += f.Expected
		tot.Recognised += f.Recognised
		tot.Wrong += f.Wrong
	}
	pct := 0.0
	if tot.Expected > 0 {
		pct = 100 * float64(tot.Recognised) / float64(tot.Expected)
	}
	fmt.Fprintf(tw, "all\t%d\t%d\t%d (%.0f %%)\t%d\n", tot.Lines, tot.Expected, tot.Recognised, pct, tot.Wrong)
	tw.Flush()
	return b.String()
}

// checkSetups judges every setup's lines, prints the recognition table and checks that the
// failing cases are exactly knownGaps and that every setup logged every kind of event.
func checkSetups(t *testing.T, logs map[string][][]byte) {
	t.Helper()
	block := shippedOverrideBlock(t)
	var figs, defaultFigs []setupFigures
	failing := map[string][]lineResult{}
	for _, s := range setups {
		lines, ok := logs[s.Name]
		if !ok {
			t.Errorf("no log of setup %s", s.Name)
			continue
		}
		defaultFigs = append(defaultFigs, figuresOf(s.Name, judge(t, block, s.Name, lines)))
		rs := judge(t, block+appDeclarations(s), s.Name, lines)
		figs = append(figs, figuresOf(s.Name, rs))
		for k, v := range failingCases(s.Name, rs) {
			failing[k] = v
		}
		seen := map[string]bool{}
		for _, r := range rs {
			seen[r.Case] = true
		}
		for _, tr := range truths {
			if !seen[tr.Case] {
				t.Errorf("setup %s logged no line of case %q: the fixture no longer exercises it", s.Name, tr.Case)
			}
		}
	}
	t.Logf("recognition with the shipped default settings alone:\n%s", recognitionTable(defaultFigs))
	t.Logf("recognition with the shipped defaults and the app's declarations (its gunicorn format, "+
		"its form login's re-render):\n%s", recognitionTable(figs))
	t.Logf("cases by setup (ok, or how many lines are missed or given a wrong event):\n%s", caseMatrix(failing))
	known := map[string]bool{}
	for _, k := range knownGaps {
		if known[k] {
			t.Errorf("knownGaps lists %q twice", k)
		}
		known[k] = true
	}
	var keys []string
	for k := range failing {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if known[k] {
			continue
		}
		rs := failing[k]
		t.Errorf("%s: line %d is %s, the parser says %s (format %q), and knownGaps does not list it:\n  %q",
			k, rs[0].N, orNone(rs[0].Want), orNone(rs[0].Got), rs[0].Format, rs[0].Line)
	}
	for _, k := range knownGaps {
		if _, ok := failing[k]; !ok {
			t.Errorf("knownGaps lists %q, which now passes: remove it from the list", k)
		}
	}
	if t.Failed() {
		t.Logf("the cases failing on these lines:\n%s", gapList(failing))
	}
}

func orNone(s string) string {
	if s == "" {
		return "no event"
	}
	return s
}

// gapList formats failing cases as knownGaps entries.
func gapList(failing map[string][]lineResult) string {
	keys := make([]string, 0, len(failing))
	for k := range failing {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "\t%q,\n", k)
	}
	return b.String()
}

// TestTruthOf checks the oracle itself on one line of each shape the setups write.
func TestTruthOf(t *testing.T) {
	tests := []struct{ line, want string }{
		{`127.0.0.1 - - [05/Dec/2026 17:03:15] "POST /login HTTP/1.1" 200 -`, "form login failure (POST /login 200)"},
		{"127.0.0.1 - - [05/Dec/2026 17:07:48] \"\x1b[32mPOST /login HTTP/1.1\x1b[0m\" 302 -", "form login success (POST /login 302)"},
		{`INFO:werkzeug:127.0.0.1 - - [05/Dec/2026 17:08:02] "PUT /api/users/5/password HTTP/1.1" 204 -`, "API password change (PUT /api/users/<id>/password 204)"},
		{`[2026-12-05 17:08:02,123] INFO in _internal: 127.0.0.1 - - [05/Dec/2026 17:08:02] "POST /admin/users/4/delete HTTP/1.1" 302 -`, "form user deletion (POST /admin/users/<id>/delete 302)"},
		{`203.0.113.24, 10.0.0.2 - - [05/Dec/2026:17:04:17 +0000] "DELETE /api/users/3 HTTP/1.1" 204 0 "-" "Mozilla/5.0"`, "API user deletion (DELETE /api/users/<id> 204)"},
		{`{"remote_addr": "127.0.0.1", "time": "[05/Dec/2026:17:04:17 +0000]", "status_line": "POST /api/users HTTP/1.1", "status": "201", "bytes": "40"}`, "API user creation (POST /api/users 201)"},
		{`127.0.0.1 - - [05/Dec/2026 17:03:15] "POST /login?next=%2Faccount HTTP/1.1" 200 -`, "form login failure (POST /login 200)"},
		{`127.0.0.1 - - [05/Dec/2026 17:03:15] "GET /login HTTP/1.1" 200 -`, otherLines},
		{`127.0.0.1 - - [05/Dec/2026 17:03:15] "POST /api/users HTTP/1.1" 400 -`, otherLines},
		{`[2026-12-05 17:04:17 +0000] [16057] [INFO] DELETE FROM refresh_tokens WHERE refresh_tokens.user_id = ?`, "SQL delete from refresh_tokens (logout)"},
		{`INFO:sqlalchemy.engine.Engine:DELETE FROM users WHERE users.id = ?`, "SQL delete from users"},
		{`INFO  [sqlalchemy.engine.Engine] DELETE FROM alembic_version WHERE alembic_version.version_num = '1f2e3d4c5b6a'`, otherLines},
		{`INFO:alembic.runtime.migration:Running upgrade  -> 1f2e3d4c5b6a, create users, sessions and refresh tokens`, "Alembic upgrade"},
		{`INFO  [alembic.runtime.migration] Context impl SQLiteImpl.`, otherLines},
		{`[2026-12-05 17:04:15 +0000] [16028] [INFO] Starting gunicorn 20.1.0`, otherLines},
	}
	for _, tc := range tests {
		got := otherLines
		if tr, ok := truthOf([]byte(tc.line)); ok {
			got = tr.Case
		}
		if got != tc.want {
			t.Errorf("truthOf(%q) = %q, want %q", tc.line, got, tc.want)
		}
	}
}

// caseMatrix shows, for every case and setup, whether the parser gets the case right.
func caseMatrix(failing map[string][]lineResult) string {
	var b bytes.Buffer
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprint(tw, "CASE")
	for _, s := range setups {
		fmt.Fprintf(tw, "\t%s", s.Name)
	}
	fmt.Fprintln(tw)
	for _, tr := range append(truths, truth{Case: otherLines}) {
		fmt.Fprint(tw, tr.Case)
		for _, s := range setups {
			rs := failing[s.Name+": "+tr.Case]
			missed, wrong := 0, 0
			for _, r := range rs {
				if r.Got == "" {
					missed++
				} else {
					wrong++
				}
			}
			cell := "ok"
			switch {
			case missed > 0 && wrong > 0:
				cell = fmt.Sprintf("%d missed, %d wrong", missed, wrong)
			case missed > 0:
				cell = fmt.Sprintf("%d missed", missed)
			case wrong > 0:
				cell = fmt.Sprintf("%d wrong", wrong)
			}
			fmt.Fprintf(tw, "\t%s", cell)
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
	return b.String()
}
