package panel

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tda-dev/tda/agent/agenttest"
	"github.com/tda-dev/tda/sdk"
)

func TestMain(m *testing.M) { agenttest.Main(m) }

const (
	aliceToken = "alice-panel-token-0123456789"
	bobToken   = "bob-panel-token-0123456789"
)

const agentConfig = `
agent {
  data_dir   = "DIR/data"
  plugin_dir = "PLUGINS"
}
source "file" "app" {
  paths = ["DIR/logs/*.log"]
}
processor "override" "flags" {}
processor "rules" "anomalies" {
  rule "mass_password_reset" {
    match     = "password_changed"
    unless    = "actor_role == admin"
    threshold = 10
    window    = "10m"
    severity  = "HIGH"
  }
  rule "unapproved_migration" {
    match            = "migration_started"
    threshold        = 0
    window           = "10m"
    group_by         = "revision"
    severity         = "MEDIUM"
    require_approval = true
  }
  rule "bulk_user_creation" {
    match       = "user_created"
    threshold   = 3
    window      = "10m"
    severity    = "MEDIUM"
    overridable = true
  }
}
sink "jsonl" "audit" {
  path = "DIR/alerts/alerts.jsonl"
}
pipeline "detect" {
  from    = [source.file.app]
  through = [processor.override.flags, processor.rules.anomalies]
  to      = [sink.jsonl.audit]
}
http {
  listen = "127.0.0.1:0"
  operator "alice" { token = "` + aliceToken + `" }
  operator "bob" { token = "` + bobToken + `" }
}
`

var panelURL = regexp.MustCompile(`control panel listening: url=(http://127\.0\.0\.1:\d+/)`)

// TestPanelAgainstTheAgent runs the real agent and plugins, raises a HIGH alert from a log
// file, and works the panel in Chromium as an operator would: read the alert and its
// explanation, be refused approving a migration while blocked, acknowledge the alert,
// approve the migration with a reason, and find both in the audit log.
func TestPanelAgainstTheAgent(t *testing.T) {
	ctx := browser(t)
	bins := agenttest.Build(t, "file", "detect", "jsonl")
	a := agenttest.New(t, bins, agentConfig)
	if err := os.MkdirAll(a.Path("logs"), 0o755); err != nil {
		t.Fatal(err)
	}
	a.Start()
	var m []string
	agenttest.WaitFor(t, "the panel's URL in the log", 10*time.Second, func() bool {
		m = panelURL.FindStringSubmatch(a.Logs())
		return m != nil
	})
	url := m[1]

	// A mass password reset; one line carries markup that must stay text.
	var lines strings.Builder
	now := time.Now().UTC()
	for i := 0; i < 11; i++ {
		fmt.Fprintf(&lines, "[%s] INFO in auth: password_changed user_id=%d actor=mallory actor_role=user ip=10.1.2.3 note=<img/src=x/onerror=document.title='pwned'>\n",
			now.Add(time.Duration(i)*time.Second).Format("2006-01-02 15:04:05,000"), 100+i)
	}
	if err := os.WriteFile(a.Path("logs", "app.log"), []byte(lines.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	trail := a.Path("alerts", "alerts.jsonl")
	agenttest.WaitFor(t, "the HIGH alert in the audit trail", 20*time.Second, func() bool {
		for _, e := range agenttest.ReadJSONL(t, trail) {
			if e.Alert != nil && e.Alert.Rule == "mass_password_reset" {
				return true
			}
		}
		return false
	})
	code, out, errOut := agenttest.RunCLI(t, bins, a.Dir, "migrate", "request", "-config", a.Config, "-name", "3ab8b2dfb055",
		"-by", "alice", "-reason", "add the phone column")
	if code != 0 || !strings.Contains(out, "Migration request 1") {
		t.Fatalf("migrate request: %d %s %s", code, out, errOut)
	}

	do(t, ctx, "sign in",
		chromedp.Navigate(url),
		chromedp.WaitVisible(css("#token")),
		chromedp.SendKeys(css("#token"), bobToken),
		chromedp.Click(css(`#signin-form button[type="submit"]`)),
		chromedp.WaitVisible(css(".alert-card.sev-HIGH .explanation")),
		chromedp.WaitVisible(css(`.migration[data-id="1"] button.approve`)),
	)
	if s := get(t, ctx, "banner", chromedp.TextContent(css("#status-word"))); s != "blocked" {
		t.Fatalf("banner %q", s)
	}
	explanation := get(t, ctx, "explanation", chromedp.TextContent(css(".alert-card.sev-HIGH .explanation")))
	if !strings.Contains(explanation, "password") || len(explanation) < 80 {
		t.Fatalf("explanation: %q", explanation)
	}
	excerpt := get(t, ctx, "excerpt", chromedp.TextContent(css(".alert-card.sev-HIGH .excerpt")))
	if !strings.Contains(excerpt, "<img/src=x/onerror=") {
		t.Fatalf("excerpt: %q", excerpt)
	}
	if n := get(t, ctx, "injected elements", chromedp.Evaluate[int](`document.querySelectorAll("#alert-list img").length`)); n != 0 {
		t.Fatalf("log-derived markup became %d elements", n)
	}
	if title := get(t, ctx, "title", chromedp.Evaluate[string](`document.title`)); title != "tda control panel" {
		t.Fatalf("title %q: log-derived markup ran", title)
	}
	reasons := get(t, ctx, "reasons", chromedp.TextContent(css("#reasons")))
	if !strings.Contains(reasons, "mass_password_reset") || !strings.Contains(reasons, "1 migration request") {
		t.Fatalf("reasons: %q", reasons)
	}
	screenshot(t, ctx, "panel-blocked.png")

	// While blocked, an approval is refused with the reason.
	do(t, ctx, "approve while blocked",
		chromedp.Click(css(`.migration[data-id="1"] button.approve`)),
		chromedp.WaitVisible(css("#confirm-reason")),
		chromedp.SendKeys(css("#confirm-reason"), "reviewed the SQL"),
		chromedp.Click(css("#confirm-ok")),
		chromedp.WaitVisible(css("#error")),
	)
	if msg := get(t, ctx, "error", chromedp.TextContent(css("#error"))); !strings.Contains(msg, "blocked") {
		t.Fatalf("error: %q", msg)
	}

	// Acknowledge the alert, then approve.
	do(t, ctx, "acknowledge",
		chromedp.Click(css(".alert-card.sev-HIGH button.ack-button")),
		chromedp.WaitVisible(css("#confirm-reason")),
		chromedp.SendKeys(css("#confirm-reason"), "resetting the accounts from the snapshot"),
		chromedp.Click(css("#confirm-ok")),
		chromedp.WaitVisible(css(".alert-card.sev-HIGH .ack")),
	)
	do(t, ctx, "approve",
		chromedp.Click(css(`.migration[data-id="1"] button.approve`)),
		chromedp.WaitVisible(css("#confirm-reason")),
		chromedp.SendKeys(css("#confirm-reason"), "reviewed the SQL in PR 12"),
		chromedp.Click(css("#confirm-ok")),
		chromedp.WaitVisible(css(`.migration.status-approved[data-id="1"]`)),
		chromedp.WaitVisible(css(`#audit tr.audit-entry[data-action="migration.approve"]`)),
	)
	// Acknowledged is not normal: the incident is still open until someone closes it.
	if s := get(t, ctx, "banner", chromedp.TextContent(css("#status-word"))); s != "acknowledged" {
		t.Fatalf("banner after the acknowledgement: %q", s)
	}
	audit := get(t, ctx, "audit", chromedp.TextContent(css("#audit-list")))
	for _, want := range []string{"migration.approve", "reviewed the SQL in PR 12", "bob (session bob)", "refused",
		"incident.acknowledge", "resetting the accounts from the snapshot", "migration.request", "alice (socket)"} {
		if !strings.Contains(audit, want) {
			t.Errorf("audit log lacks %q:\n%s", want, audit)
		}
	}
	screenshot(t, ctx, "panel-normal.png")

	// The approval reached the pipeline as an audit event (the rules processor reads it).
	agenttest.WaitFor(t, "the approval in the pipeline", 10*time.Second, func() bool {
		for _, e := range agenttest.ReadJSONL(t, trail) {
			if e.Kind == sdk.KindAudit && e.Field("event") == "migration_approved" && e.Field("migration") == "3ab8b2dfb055" {
				return true
			}
		}
		return false
	})

	// The approved migration raises nothing and an unapproved one raises an alert.
	f, err := os.OpenFile(a.Path("logs", "app.log"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now().UTC().Format("2006-01-02 15:04:05,000")
	fmt.Fprintf(f, "[%s] INFO in migrate: migration_started revision=3ab8b2dfb055 actor=deploy\n", at)
	fmt.Fprintf(f, "[%s] INFO in migrate: migration_started revision=ffff00001111 actor=deploy\n", at)
	f.Close()
	agenttest.WaitFor(t, "the unapproved migration's alert", 20*time.Second, func() bool {
		for _, e := range agenttest.ReadJSONL(t, trail) {
			if e.Alert != nil && e.Alert.Rule == "unapproved_migration" && e.Alert.Key == "ffff00001111" {
				return true
			}
		}
		return false
	})
	for _, e := range agenttest.ReadJSONL(t, trail) {
		if e.Alert != nil && e.Alert.Key == "3ab8b2dfb055" {
			t.Fatalf("the approved migration raised an alert: %+v", e.Alert)
		}
	}

	// An operator override from the CLI: the override processor reports it, the banner shows
	// who, why and until when.
	code, out, errOut = agenttest.RunCLI(t, bins, a.Dir, "override", "on", "-config", a.Config, "-by", "alice",
		"-reason", "partner bulk import", "-ttl", "30m")
	if code != 0 || !strings.Contains(out, "declared by  alice (operator)") {
		t.Fatalf("override on: %d %s %s", code, out, errOut)
	}
	do(t, ctx, "see the override",
		chromedp.Reload(),
		chromedp.WaitVisible(css(".override-active")),
	)
	if s := get(t, ctx, "banner", chromedp.TextContent(css("#status-word"))); s != "override" {
		t.Fatalf("banner under override: %q", s)
	}
	if r := get(t, ctx, "reasons", chromedp.TextContent(css("#reasons"))); !strings.Contains(r, "alice") || !strings.Contains(r, "partner bulk import") {
		t.Fatalf("override reasons: %q", r)
	}
	screenshot(t, ctx, "panel-override.png")
	code, out, errOut = agenttest.RunCLI(t, bins, a.Dir, "override", "status", "-config", a.Config, "-json")
	var status struct {
		Active *struct{ Actor, Reason string }
	}
	if code != 0 || json.Unmarshal([]byte(out), &status) != nil || status.Active == nil ||
		status.Active.Actor != "alice" || status.Active.Reason != "partner bulk import" {
		t.Fatalf("override status -json: %d %s %s", code, out, errOut)
	}
	code, out, _ = agenttest.RunCLI(t, bins, a.Dir, "override", "off", "-config", a.Config, "-by", "alice")
	if code != 0 || !strings.Contains(out, "Override ended") {
		t.Fatalf("override off: %d %s", code, out)
	}
	if exit, _ := a.Stop(); exit != 0 {
		t.Fatalf("agent exit %d:\n%s", exit, a.Logs())
	}
	if _, err := os.Stat(filepath.Join(a.Dir, "data", "tda.sock")); !os.IsNotExist(err) {
		t.Fatalf("socket left behind: %v", err)
	}
}
