package tune_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tda-dev/tda/plugins/detect"
	"github.com/tda-dev/tda/plugins/detect/tune"
	"github.com/tda-dev/tda/sdk"
	"github.com/tda-dev/tda/sdk/sdktest"
)

const rulesSrc = `
rule "auth_failures" {
  match     = "login_failed"
  threshold = 5
  window    = "60s"
  group_by  = "ip"
}
rule "mass_password_reset" {
  match     = "password_changed"
  unless    = "actor_role == admin"
  threshold = 10
  window    = "60s"
}
`

func TestReportOnSyntheticHistory(t *testing.T) {
	tu := tunerOf(t, rulesSrc)
	base := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	var buf bytes.Buffer
	// 100 minutes: IP a fails twice a minute, IP b once; minute 50: IP c fails 9 times.
	for m := 0; m < 100; m++ {
		at := base.Add(time.Duration(m) * time.Minute)
		for i, ip := range []string{"a", "a", "b"} {
			fmt.Fprintf(&buf, "%s - - [%s] \"POST /login HTTP/1.1\" 401 -\n", ip, at.Add(time.Duration(i)*10*time.Second).Format("02/Jan/2006 15:04:05"))
		}
		if m == 50 {
			for i := 0; i < 9; i++ {
				fmt.Fprintf(&buf, "c - - [%s] \"POST /login HTTP/1.1\" 401 -\n", at.Add(time.Duration(30+i)*time.Second).Format("02/Jan/2006 15:04:05"))
			}
		}
	}
	if err := tu.AddReader("access.log", &buf); err != nil {
		t.Fatal(err)
	}
	rep := tu.Report(0.5)
	a := rep.Rules[0]
	if a.Events != 309 || a.Keys != 3 || a.P50 != 1 || a.P99 != 2 || a.Max != 9 || a.Incidents != 1 ||
		a.Suggested != 4 || a.MarginAbs != 2 || a.IncidentsAtSuggested != 1 || a.TopKeys[0].Key != "c" {
		t.Fatalf("auth_failures report %+v", a)
	}
	if rep.Rules[1].Events != 0 || rep.Rules[1].Suggested != 10 || rep.Rules[1].Note == "" {
		t.Fatalf("rule without events: %+v", rep.Rules[1])
	}
	var out bytes.Buffer
	if err := rep.WriteTable(&out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "auth_failures") || !strings.Contains(out.String(), "c (9)") {
		t.Fatalf("table:\n%s", out.String())
	}
	out.Reset()
	if err := rep.WriteJSON(&out); err != nil {
		t.Fatal(err)
	}
	var back tune.Report
	if err := json.Unmarshal(out.Bytes(), &back); err != nil || back.Rules[0].Suggested != 4 {
		t.Fatalf("json: %v %s", err, out.String())
	}
}

func TestCorpus(t *testing.T) {
	tu := tunerOf(t, rulesSrc)
	files, _ := filepath.Glob(filepath.Join("..", "testdata", "corpus", "*.log"))
	for _, f := range files {
		if err := tu.AddFile(f); err != nil {
			t.Fatal(err)
		}
	}
	rep := tu.Report(tune.DefaultMargin)
	byRule := map[string]tune.RuleReport{}
	for _, r := range rep.Rules {
		byRule[r.Rule] = r
	}
	// The corpus has two auth-failure attacks and one mass reset (admins excluded).
	if r := byRule["auth_failures"]; r.Incidents != 2 || r.Max != 8 {
		t.Fatalf("auth_failures %+v", r)
	}
	if r := byRule["mass_password_reset"]; r.Incidents != 1 || r.Max != 14 {
		t.Fatalf("mass_password_reset %+v", r)
	}
	var out bytes.Buffer
	_ = rep.WriteTable(&out)
	t.Logf("\n%s", out.String())
}

// tunerOf builds a tuner from the body of a rules block, as processor "rules" reads it.
func tunerOf(t *testing.T, src string) *tune.Tuner {
	t.Helper()
	c, diags := sdk.ParseConfig(detect.RulesSpec(), sdktest.Config(t, detect.RulesComponent(), src))
	if diags.HasErrors() {
		t.Fatal(diags.Err())
	}
	po, err := detect.ParseOptions(c)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := detect.ParseRules(c)
	if err != nil {
		t.Fatal(err)
	}
	return tune.New(rs, po)
}
