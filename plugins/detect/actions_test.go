package detect_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tda-dev/tda/plugins/detect"
	"github.com/tda-dev/tda/sdk"
	"github.com/tda-dev/tda/sdk/sdktest"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/explain")

// rulesInstance configures processor "rules" from a block body, as the agent configures it
// for an action.
func rulesInstance(t testing.TB, body string) any {
	t.Helper()
	comp := detect.RulesComponent()
	inst, diags := comp.NewInstance(sdktest.Config(t, comp, body), sdk.Resources{Instance: "processor.rules.anomalies"})
	if diags.HasErrors() {
		t.Fatal(diags.Err())
	}
	return inst.Value()
}

// action returns the rules component's action of that name.
func action(t testing.TB, name string) sdk.Action {
	t.Helper()
	a, ok := detect.RulesComponent().Action(name)
	if !ok {
		t.Fatalf("processor rules serves no action %q", name)
	}
	return a
}

func mustRead(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// explainLog is the golden tests' log, named as the operator would name it.
func explainLog(t testing.TB) detect.LogFile {
	abs, err := filepath.Abs(filepath.Join("testdata", "explain", "app.log"))
	if err != nil {
		t.Fatal(err)
	}
	return detect.LogFile{Path: abs, Name: "testdata/explain/app.log"}
}

// runAction calls an action with req as its JSON request and collects its progress lines.
func runAction(ctx context.Context, t testing.TB, a sdk.Action, component any, req any) ([]byte, []string, error) {
	t.Helper()
	args, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	var progress []string
	out, err := a.Run(ctx, component, sdk.ActionRequest{Args: args, Actor: "alice", Progress: func(l string) { progress = append(progress, l) }})
	return out, progress, err
}

// TestExplainAction replays testdata/explain/app.log, whose lines each show one kind of
// decision, and compares the trace and the summary with the golden files (-update rewrites
// them); they are what tda explain prints.
func TestExplainAction(t *testing.T) {
	inst := rulesInstance(t, mustRead(t, filepath.Join("testdata", "explain", "rules.hcl")))
	tests := []struct {
		golden string
		req    detect.ExplainRequest
	}{
		{"table", detect.ExplainRequest{}},
		{"json", detect.ExplainRequest{JSON: true}},
		{"only_events", detect.ExplainRequest{OnlyEvents: true}},
		{"rule", detect.ExplainRequest{Rule: "mass_password_reset"}},
		{"rule_json", detect.ExplainRequest{JSON: true, Rule: "migration_outside_window"}},
	}
	for _, tc := range tests {
		t.Run(tc.golden, func(t *testing.T) {
			tc.req.Files = []detect.LogFile{explainLog(t)}
			tc.req.Output = filepath.Join(t.TempDir(), "trace")
			out, progress, err := runAction(context.Background(), t, action(t, detect.ActionExplain), inst, tc.req)
			if err != nil {
				t.Fatal(err)
			}
			if len(progress) != 0 {
				t.Errorf("with an output file, %d progress lines", len(progress))
			}
			var res detect.ExplainResult
			if err := json.Unmarshal(out, &res); err != nil {
				t.Fatal(err)
			}
			if res.Lines != strings.Count(mustRead(t, tc.req.Files[0].Path), "\n") || res.Shown == 0 || res.Shown > res.Lines {
				t.Errorf("lines %d, shown %d", res.Lines, res.Shown)
			}
			compareGolden(t, filepath.Join("testdata", "explain", tc.golden+".golden"), mustRead(t, tc.req.Output))
			compareGolden(t, filepath.Join("testdata", "explain", tc.golden+".summary.golden"), res.Summary)
		})
	}
	t.Run("progress lines without an output file", func(t *testing.T) {
		req := detect.ExplainRequest{Files: []detect.LogFile{explainLog(t)}}
		_, progress, err := runAction(context.Background(), t, action(t, detect.ActionExplain), inst, req)
		if err != nil {
			t.Fatal(err)
		}
		want := mustRead(t, filepath.Join("testdata", "explain", "table.golden"))
		if got := strings.Join(progress, "\n") + "\n"; got != want {
			t.Errorf("progress lines differ from table.golden:\n%s", got)
		}
	})
}

func compareGolden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("differs from %s (run with -update to accept):\n%s", path, got)
	}
}

// TestExplainFollowsUpstream: a line only the override processor's own parser block
// recognises is an event for the rules processor after it, and the origins the override
// processor allows to declare override mode count for the rules processor too.
func TestExplainFollowsUpstream(t *testing.T) {
	log := filepath.Join(t.TempDir(), "app.log")
	lines := "2026-11-29T10:00:00Z VOID invoice=17 by=mallory\n" +
		"[2026-11-29 10:00:00,500] INFO in ops: override_enabled actor=alice reason=\"import\" ttl=30m\n" +
		"2026-11-29T10:00:01Z VOID invoice=18 by=mallory\n"
	if err := os.WriteFile(log, []byte(lines), 0o600); err != nil {
		t.Fatal(err)
	}
	overrideBody := `
allow_origins = ["*.log"]
parser "invoice" {
  regex = "^(?P<time>\\S+) VOID invoice=(?P<invoice>\\d+) by=(?P<actor>\\w+)$"
  event = "invoice_voided"
}`
	inst := rulesInstance(t, `
rule "mass_voids" {
  match       = "invoice_voided"
  threshold   = 1
  window      = "60s"
  overridable = true
}`)
	upstream := []detect.UpstreamProcessor{{Address: "processor.override.flags", Type: "override",
		Config: sdktest.Config(t, detect.OverrideComponent(), overrideBody)}}
	tests := []struct {
		name      string
		upstream  []detect.UpstreamProcessor
		events    int
		wouldFire string
	}{
		{"with the override processor", upstream, 2, "suppressed: 1 incident, all under override mode"},
		{"the rules processor alone", nil, 0, "no (fires at more than 1 in 1m)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := detect.ExplainRequest{Files: []detect.LogFile{{Path: log}}, Upstream: tc.upstream, JSON: true,
				Output: filepath.Join(t.TempDir(), "trace")}
			out, _, err := runAction(context.Background(), t, action(t, detect.ActionExplain), inst, req)
			if err != nil {
				t.Fatal(err)
			}
			var res detect.ExplainResult
			if err := json.Unmarshal(out, &res); err != nil {
				t.Fatal(err)
			}
			events := strings.Count(mustRead(t, req.Output), `"event":"invoice_voided"`)
			if events != tc.events || !strings.Contains(res.Summary, tc.wouldFire) {
				t.Errorf("%d invoice events, summary:\n%s", events, res.Summary)
			}
		})
	}
}

// TestExplainActionErrors: a wrong request says what is wrong, with the kind the agent maps
// to its exit status and HTTP status, and writes no trace.
func TestExplainActionErrors(t *testing.T) {
	inst := rulesInstance(t, mustRead(t, filepath.Join("testdata", "explain", "rules.hcl")))
	log := explainLog(t)
	tests := []struct {
		name string
		args string
		kind sdk.ActionErrorKind
		want string
	}{
		{"no file", `{}`, sdk.ActionErrInvalid, "name at least one log file"},
		{"a file without a path", `{"files":[{"name":"x.log"}]}`, sdk.ActionErrInvalid, "file 1 has no path"},
		{"malformed", `{"files":`, sdk.ActionErrInvalid, "malformed request"},
		{"unknown key", `{"files":[{"path":"/x"}],"rules":"a"}`, sdk.ActionErrInvalid, `unknown field "rules"`},
		{"unknown rule", `{"files":[{"path":"` + log.Path + `"}],"rule":"nope"}`, sdk.ActionErrInvalid,
			`processor.rules.anomalies has no rule "nope"; its rules: mass_password_reset, api_deletions, bulk_user_creation, migration_outside_window`},
		{"missing file", `{"files":[{"path":"/does/not/exist.log","name":"nope.log"}]}`, sdk.ActionErrNotFound,
			"nope.log: no such file or directory"},
		{"a directory", `{"files":[{"path":"` + filepath.Dir(log.Path) + `"}]}`, "", "is a directory"},
		{"an upstream of another plugin", `{"files":[{"path":"` + log.Path + `"}],"upstream":[{"address":"processor.geo.ip","type":"geo","config":{}}]}`,
			sdk.ActionErrInvalid, `processor.geo.ip: explain follows only the detect processors`},
		{"an upstream with a bad config", `{"files":[{"path":"` + log.Path + `"}],"upstream":[{"address":"processor.override.flags","type":"override","config":{"timezone":"Mars/Olympus"}}]}`,
			sdk.ActionErrInvalid, `processor.override.flags: `},
		{"an output that cannot be written", `{"files":[{"path":"` + log.Path + `"}],"output":"/does/not/exist/trace"}`,
			sdk.ActionErrInvalid, "open the output"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := action(t, detect.ActionExplain).Run(context.Background(), inst,
				sdk.ActionRequest{Args: []byte(tc.args), Progress: func(string) {}})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("result %s, error %v; want %q", out, err, tc.want)
			}
			if got := sdk.ActionErrorKindOf(err); got != tc.kind {
				t.Errorf("kind %q, want %q", got, tc.kind)
			}
		})
	}
	t.Run("not a rules processor", func(t *testing.T) {
		args := `{"files":[{"path":"` + log.Path + `"}]}`
		if _, err := action(t, detect.ActionExplain).Run(context.Background(), "override", sdk.ActionRequest{Args: []byte(args),
			Progress: func(string) {}}); err == nil || !strings.Contains(err.Error(), `runs on processor "rules"`) {
			t.Fatalf("error %v", err)
		}
	})
}

// TestExplainActionCancelled: a replay stops when the operator gives up.
func TestExplainActionCancelled(t *testing.T) {
	inst := rulesInstance(t, mustRead(t, filepath.Join("testdata", "explain", "rules.hcl")))
	big := filepath.Join(t.TempDir(), "big.log")
	line := "[2026-11-29 10:00:00,000] INFO in auth: password_changed user_id=1 actor=mallory\n"
	if err := os.WriteFile(big, bytes.Repeat([]byte(line), 20000), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	req := detect.ExplainRequest{Files: []detect.LogFile{{Path: big}}, Output: filepath.Join(t.TempDir(), "trace")}
	_, _, err := runAction(ctx, t, action(t, detect.ActionExplain), inst, req)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want the cancellation", err)
	}
	_, _, err = runAction(ctx, t, action(t, detect.ActionTune), inst, detect.TuneRequest{Files: req.Files})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("tune: error %v, want the cancellation", err)
	}
}

func TestTuneAction(t *testing.T) {
	corpus, _ := filepath.Glob(filepath.Join("testdata", "corpus", "*.log"))
	if len(corpus) == 0 {
		t.Fatal("no corpus logs")
	}
	var files []detect.LogFile
	for _, c := range corpus {
		abs, _ := filepath.Abs(c)
		files = append(files, detect.LogFile{Path: abs, Name: c})
	}
	inst := rulesInstance(t, shippedBlocks(t)["rules"])
	one := 1.0
	negative := -0.5
	tests := []struct {
		name string
		req  detect.TuneRequest
		kind sdk.ActionErrorKind
		want []string // in the output, or in the error
		err  bool
	}{
		{"table", detect.TuneRequest{Files: files}, "", []string{"mass_password_reset", "auth_failures", "203.0.113.9 (8)", "SUGGESTED", "Suggested = P99 + 50%"}, false},
		{"json with a margin", detect.TuneRequest{Files: files, Margin: &one, JSON: true}, "", []string{`"margin": 1`, `"rule": "mass_password_reset"`}, false},
		{"negative margin", detect.TuneRequest{Files: files, Margin: &negative}, sdk.ActionErrInvalid, []string{"must not be negative"}, true},
		{"no file", detect.TuneRequest{}, sdk.ActionErrInvalid, []string{"name at least one log file"}, true},
		{"missing file", detect.TuneRequest{Files: []detect.LogFile{{Path: "/does/not/exist.log"}}}, sdk.ActionErrNotFound, []string{"/does/not/exist.log: no such file"}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, _, err := runAction(context.Background(), t, action(t, detect.ActionTune), inst, tc.req)
			if tc.err {
				if err == nil || sdk.ActionErrorKindOf(err) != tc.kind || !strings.Contains(err.Error(), tc.want[0]) {
					t.Fatalf("error %v (kind %q), want %s %q", err, sdk.ActionErrorKindOf(err), tc.kind, tc.want[0])
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var res detect.TuneResult
			if err := json.Unmarshal(out, &res); err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.want {
				if !strings.Contains(res.Output, w) {
					t.Errorf("output lacks %q:\n%s", w, res.Output)
				}
			}
		})
	}
}

// TestDescribeRulesAction: the rules with their maintenance windows, as the agent's
// migration gate reads them (testdata/explain/describe.golden).
func TestDescribeRulesAction(t *testing.T) {
	inst := rulesInstance(t, mustRead(t, filepath.Join("testdata", "explain", "rules.hcl"))+`
  rule "night_migrations" {
    match     = "migration_started"
    threshold = 0
    window    = "10m"
    maintenance_window {
      start    = "22:00"
      end      = "06:00"
      timezone = "Europe/Paris"
    }
    maintenance_window {
      days  = ["sat", "sunday"]
      start = "12:00"
      end   = "13:00"
    }
  }
`)
	a := action(t, detect.ActionDescribeRules)
	for _, args := range []string{"", "{}", "null"} {
		out, err := a.Run(context.Background(), inst, sdk.ActionRequest{Args: []byte(args), Progress: func(string) {}})
		if err != nil {
			t.Fatalf("args %q: %v", args, err)
		}
		var pretty bytes.Buffer
		if err := json.Indent(&pretty, out, "", "  "); err != nil {
			t.Fatal(err)
		}
		compareGolden(t, filepath.Join("testdata", "explain", "describe.golden"), pretty.String()+"\n")
		// The windows decode into sdk.MaintenanceWindow, which judges times as the rule does.
		var d detect.RulesDescription
		if err := json.Unmarshal(out, &d); err != nil {
			t.Fatal(err)
		}
		night := d.Rules[len(d.Rules)-1].MaintenanceWindows
		if len(night) != 2 || night[0].Describe() != "every day 22:00-06:00 Europe/Paris" || night[1].Describe() != "Sun,Sat 12:00-13:00 UTC" {
			t.Fatalf("windows %+v", night)
		}
	}
	if _, err := a.Run(context.Background(), inst, sdk.ActionRequest{Args: []byte(`{"rule":"x"}`)}); sdk.ActionErrorKindOf(err) != sdk.ActionErrInvalid {
		t.Fatalf("a request with keys: %v", err)
	}
}

// FuzzActionRequests: whatever request the agent or an API client sends, the actions answer
// with a result or an error, and never panic.
func FuzzActionRequests(f *testing.F) {
	f.Add(`{"files":[{"path":"testdata/explain/app.log"}],"json":true}`)
	f.Add(`{"files":[{"path":"testdata/explain/app.log"}],"rule":"mass_password_reset","only_events":true}`)
	f.Add(`{"files":[{"path":"testdata/explain/app.log"}],"margin":-1}`)
	f.Add(`{"files":[{"path":"testdata/explain/app.log"}],"upstream":[{"address":"a","type":"override","config":{"allow_origins":["["]}}]}`)
	f.Add(`[]`)
	inst := rulesInstance(f, mustRead(f, filepath.Join("testdata", "explain", "rules.hcl")))
	f.Fuzz(func(t *testing.T, args string) {
		for _, name := range []string{detect.ActionExplain, detect.ActionTune, detect.ActionDescribeRules} {
			// Output is the only thing an action writes: keep it in the test's directory.
			if strings.Contains(args, `"output"`) {
				return
			}
			out, err := action(t, name).Run(context.Background(), inst, sdk.ActionRequest{Args: []byte(args), Progress: func(string) {}})
			if err == nil && !json.Valid(out) {
				t.Fatalf("%s(%s): result %q is not JSON", name, args, out)
			}
		}
	})
}
