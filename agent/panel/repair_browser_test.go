package panel

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/tda-dev/tda/agent/api"
	"github.com/tda-dev/tda/agent/ops"
	"github.com/tda-dev/tda/agent/state"
)

// planJSON is a plan as the repair package marshals it (plugins/snapshot/repair.Plan), with a
// value that would run script if the page wrote HTML.
const planJSON = `{"scope":{"table":"users","window":{}},"source":"restored app_r","live":"live app","made":"2026-12-05T20:00:00Z",
"key_column":"id","updated_at":"updated_at","columns":["password_hash"],
"items":[
 {"table":"users","key":"1","decision":"repair","reason":"changed at 2026-12-05T19:57:01.000Z, within the incident",
  "changes":[{"column":"password_hash","restored":{"text":"pbkdf2:sha256:1000$old$abc"},"live":{"text":"<img src=x onerror=document.title='pwned'>"}}]},
 {"table":"users","key":"3","decision":"skip","reason":"changed again at 2026-12-05T20:10:00.000Z, after the incident's write",
  "changes":[{"column":"password_hash","restored":{"text":"pbkdf2:sha256:1000$old$def"},"live":{"text":"pbkdf2:sha256:1000$new$123"}}]},
 {"table":"users","key":"9","decision":"same","reason":"the live row holds the restored values"},
 {"table":"orders","key":"107","decision":"missing","reason":"depends on users 7 (orders.user_id)",
  "changes":[{"column":"id","restored":{"text":"107"},"live":{"null":true}},{"column":"user_id","restored":{"text":"7"},"live":{"null":true}}]}
],
"counts":{"repair":1,"skip":1,"same":1,"missing":1}}`

// repairsDouble answers for the agent's repair service (which runs on real databases in the
// repair package's tests and in make drill): it checks what the page sends.
type repairsDouble struct{ applied []ops.RepairRequest }

func (d *repairsDouble) PlanRepair(_ context.Context, req ops.RepairRequest) (ops.RepairOutcome, error) {
	// The page sends the log lines pasted into it, not a path for the agent to read.
	if req.Restore != "app_r" || req.Incident != "fp1" || strings.Join(req.Keys, ",") != "1,3,7" ||
		strings.Join(req.Events, "|") != "line one|line two" {
		return ops.RepairOutcome{}, &ops.Error{Kind: ops.KindInvalid, Message: "unexpected request"}
	}
	return ops.RepairOutcome{Live: "app", Summary: "1 to repair, 1 missing to re-insert, 1 skipped (listed above with why), 1 already as restored.",
		Plan: json.RawMessage(planJSON)}, nil
}

func (d *repairsDouble) ApplyRepair(_ context.Context, by ops.Actor, req ops.RepairRequest) (ops.RepairOutcome, error) {
	if req.Confirm != "app" {
		return ops.RepairOutcome{}, &ops.Error{Kind: ops.KindInvalid, Message: "type the live database's name (app) to confirm the repair"}
	}
	d.applied = append(d.applied, req)
	return ops.RepairOutcome{Live: "app", Applied: true, Plan: json.RawMessage(planJSON), PreRepairSnapshot: "tda-app-pre-repair-20261205t201500z",
		Result: json.RawMessage(`{"repaired":1,"inserted":1,"verified":2}`)}, nil
}

func TestPanelRepairPage(t *testing.T) {
	ctx := browser(t)
	store, err := state.Open(filepath.Join(t.TempDir(), "data"), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	svc, err := ops.NewService(ops.Options{Store: store})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close(context.Background()) })
	double := &repairsDouble{}
	srv := httptest.NewServer(api.New(api.Options{Ops: svc, Repairs: double, UI: Handler(),
		Tokens: []api.Token{{Name: "alice", Role: api.RoleOperator, Secret: aliceToken}}}).Handler())
	t.Cleanup(srv.Close)

	do(t, ctx, "the repair page asks to sign in first",
		chromedp.Navigate(srv.URL+"/repair.html"),
		chromedp.WaitVisible(css("#signed-out")))
	do(t, ctx, "sign in on the panel",
		chromedp.Navigate(srv.URL+"/"),
		chromedp.WaitVisible(css("#token")),
		chromedp.SendKeys(css("#token"), aliceToken),
		chromedp.Click(css(`#signin-form button[type="submit"]`)),
		chromedp.WaitNotVisible(css("#signin")))
	do(t, ctx, "make the plan",
		chromedp.Navigate(srv.URL+"/repair.html"),
		chromedp.WaitVisible(css("#plan-form")),
		chromedp.SendKeys(css("#restore"), "app_r"),
		chromedp.SendKeys(css("#incident"), "fp1"),
		chromedp.SendKeys(css("#keys"), "1, 3,7"),
		chromedp.SendKeys(css("#events"), "line one\n\nline two\n"),
		chromedp.Click(css(`#plan-form button[type="submit"]`)),
		chromedp.WaitVisible(css("#items tr.decision-repair")))
	rows := get(t, ctx, "plan rows", chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll("#items tr")).map(r => r.className + ": " + r.textContent)`))
	if len(rows) != 3 || !strings.Contains(rows[0], "decision-repair") || !strings.Contains(rows[1], "decision-skip") ||
		!strings.Contains(rows[2], "decision-missing") || !strings.Contains(rows[2], "(2 columns)") {
		t.Fatalf("plan rows (same rows are not listed):\n%s", strings.Join(rows, "\n"))
	}
	if n := get(t, ctx, "injected elements", chromedp.Evaluate[int](`document.querySelectorAll("#items img").length`)); n != 0 {
		t.Fatal("a value of the plan was written as HTML")
	}
	if live := get(t, ctx, "live name", chromedp.TextContent(css("#live-name"))); live != "app" {
		t.Fatalf("the page asks for %q", live)
	}
	do(t, ctx, "a wrong name is refused",
		chromedp.SendKeys(css("#confirm"), "ap"),
		chromedp.SendKeys(css("#reason"), "mass reset"),
		chromedp.Click(css(`#apply-form button[type="submit"]`)),
		chromedp.Poll[chromedp.Void](`document.getElementById("apply-error").textContent.includes("to confirm")`))
	if len(double.applied) != 0 {
		t.Fatal("applied without the live database's name")
	}
	do(t, ctx, "apply",
		chromedp.SendKeys(css("#confirm"), "p"),
		chromedp.Click(css(`#apply-form button[type="submit"]`)),
		chromedp.Poll[chromedp.Void](`document.getElementById("result").textContent.includes("Repaired 1 rows")`))
	result := get(t, ctx, "result", chromedp.TextContent(css("#result")))
	if !strings.Contains(result, "tda-app-pre-repair-20261205t201500z") || !strings.Contains(result, "2 verified") {
		t.Fatalf("result %q", result)
	}
	if len(double.applied) != 1 || double.applied[0].Reason != "mass reset" || double.applied[0].Restore != "app_r" {
		t.Fatalf("applied %+v", double.applied)
	}
	if title := get(t, ctx, "title", chromedp.Evaluate[string](`document.title`)); title == "pwned" {
		t.Fatal("script ran from a plan value")
	}
}
