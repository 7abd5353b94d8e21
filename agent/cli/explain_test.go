package cli

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/tda-dev/tda/agent/agenttest"
	"github.com/tda-dev/tda/sdk"
)

// explainedLine is a line of tda explain -json (docs/detection.md).
type explainedLine struct {
	File   string            `json:"file"`
	Line   int               `json:"line"`
	Time   string            `json:"time"`
	Format string            `json:"format"`
	Event  string            `json:"event"`
	Fields map[string]string `json:"fields"`
	Rules  []struct {
		Rule    string `json:"rule"`
		Counted bool   `json:"counted"`
		Reason  string `json:"reason"`
	} `json:"rules"`
	Reason string `json:"reason"`
}

// withDetectPlugins serves the plugins of the explain and tune configs (detect, and file,
// console and jsonl for the other blocks) from a plugin directory, as binaries installed
// there: Main runs without the plugins built into tda. The rules processor's actions run
// in the detect plugin's own process, as for a user.
func withDetectPlugins(t *testing.T) {
	t.Helper()
	bins := agenttest.Build(t, "detect", "file", "console", "jsonl")
	t.Setenv("TDA_PLUGIN_DIR", bins.PluginDir)
}

// TestExplainGolden runs tda explain on testdata/explain/app.log, whose lines each show one
// kind of decision, and compares with the golden files (-update rewrites them).
func TestExplainGolden(t *testing.T) {
	withDetectPlugins(t)
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
	withDetectPlugins(t)
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
	prev := explainedLine{}
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
		var rec explainedLine
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
	withDetectPlugins(t)
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

// TestExplainAgreesWithTheCorpus checks explain's "would fire" against the incidents the
// detection pipeline raises on the corpus with the embedded configuration
// (plugins/detect/testdata/corpus/expected-alerts.jsonl, also checked by plugins/detect).
func TestExplainAgreesWithTheCorpus(t *testing.T) {
	withDetectPlugins(t)
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
	withDetectPlugins(t)
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
		var rec explainedLine
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

// TestExplainTableOnRealLogs: the table over real app logs (Werkzeug's colour codes among
// them) holds no control character.
func TestExplainTableOnRealLogs(t *testing.T) {
	withDetectPlugins(t)
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

// TestExplainLongLines: a line longer than an action's progress line reaches the trace whole
// (the plugin writes the trace into a pipe the command reads, not into progress lines).
func TestExplainLongLines(t *testing.T) {
	withDetectPlugins(t)
	log := filepath.Join(t.TempDir(), "app.log")
	// Many fields, each within the parser's bound on a value.
	var fields strings.Builder
	for i := 0; i < 40; i++ {
		fmt.Fprintf(&fields, `,"f%02d":"%s"`, i, strings.Repeat("x", 200))
	}
	line := `{"ts":"2026-11-29T10:00:00Z","event":"user_deleted","user_id":"7"` + fields.String() + `}`
	if err := os.WriteFile(log, []byte(line+"\n"+line+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if code := Main([]string{"explain", "-json", log}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d JSON lines for 2 input lines", len(lines))
	}
	for i, l := range lines {
		var rec explainedLine
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatalf("line %d (%d bytes): %v", i+1, len(l), err)
		}
		if len(l) <= sdk.MaxProgressLine || rec.Event != "user_deleted" || rec.Fields["f00"] != strings.Repeat("x", 200) {
			t.Errorf("line %d: %d bytes, event %q, %d fields", i+1, len(l), rec.Event, len(rec.Fields))
		}
	}
}
