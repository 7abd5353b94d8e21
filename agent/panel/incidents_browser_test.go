package panel

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tda-dev/tda/agent/agenttest"
)

// incidentConfig is agentConfig's detection with a short window and no lateness, so that the
// incident's burst ends within the test.
const incidentConfig = `
agent {
  data_dir   = "DIR/data"
  plugin_dir = "PLUGINS"
}
source "file" "app" {
  paths = ["DIR/logs/*.log"]
}
processor "rules" "anomalies" {
  lateness = "0s"
  rule "mass_password_reset" {
    match     = "password_changed"
    unless    = "actor_role == admin"
    threshold = 10
    window    = "30s"
    severity  = "HIGH"
  }
}
sink "jsonl" "audit" {
  path = "DIR/alerts/alerts.jsonl"
}
pipeline "detect" {
  from    = [source.file.app]
  through = [processor.rules.anomalies]
  to      = [sink.jsonl.audit]
}
http {
  listen = "127.0.0.1:0"
  operator "bob" { token = "` + bobToken + `" }
}
`

// waitFor polls a JavaScript condition for up to d (longer than do's 30 seconds: a burst
// takes its window to end).
func waitFor(t *testing.T, ctx context.Context, what string, d time.Duration, js string) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	if _, err := chromedp.Run(c, chromedp.Poll[bool](js, chromedp.WithPollingTimeout(0))); err != nil {
		t.Fatalf("%s: %v (page says: %s)", what, err, pageMessages(ctx))
	}
}

func textOf(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	return get(t, ctx, sel, chromedp.Evaluate[string](`(document.querySelector(`+fmt.Sprintf("%q", sel)+`)||{}).textContent||""`))
}

// TestPanelIncidentLifecycle runs the real agent and plugins and works an incident in
// Chromium at 1400 px: a mass password reset opens it and blocks the system; its page shows
// the live count growing, the affected users and the attacker's IP in full, and the first
// steps with the panel's own buttons; acknowledging it turns the banner to "acknowledged"
// (never green while it is open); the burst ends and the banner stays "acknowledged"; closing
// it with a note makes the state normal, and every step is in the audit log naming the
// incident, by the system for what the rule did.
func TestPanelIncidentLifecycle(t *testing.T) {
	ctx := browser(t)
	bins := agenttest.Build(t, "file", "detect", "jsonl")
	a := agenttest.New(t, bins, incidentConfig)
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

	write := func(from, n int, at time.Time) {
		f, err := os.OpenFile(a.Path("logs", "app.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		for i := 0; i < n; i++ {
			fmt.Fprintf(f, "[%s] INFO in auth: password_changed user_id=%d actor=mallory actor_role=user ip=203.0.113.250 "+
				"user_agent=python-requests/2.31.0 request_id=7f9c2d4e-1b3a-4c5d-9e8f-0a1b2c3d4e5f path=/admin/users/%d/password\n",
				at.Format("2006-01-02 15:04:05,000"), from+i, from+i)
		}
	}
	write(100, 11, time.Now().UTC())
	agenttest.WaitFor(t, "the HIGH alert in the audit trail", 20*time.Second, func() bool {
		for _, e := range agenttest.ReadJSONL(t, a.Path("alerts", "alerts.jsonl")) {
			if e.Alert != nil && e.Alert.Rule == "mass_password_reset" {
				return true
			}
		}
		return false
	})

	do(t, ctx, "sign in",
		chromedp.Navigate(url),
		chromedp.WaitVisible(css("#token")),
		chromedp.SendKeys(css("#token"), bobToken),
		chromedp.Click(css(`#signin-form button[type="submit"]`)),
		chromedp.WaitVisible(css(".incident-card.sev-HIGH button.open-incident")),
	)
	if s := textOf(t, ctx, "#status-word"); s != "blocked" {
		t.Fatalf("banner %q", s)
	}
	id := get(t, ctx, "incident id", chromedp.Evaluate[string](`document.querySelector(".incident-card.sev-HIGH").dataset.id`))
	if len(id) != 8 {
		t.Fatalf("incident id %q", id)
	}
	if r := textOf(t, ctx, "#reasons"); !strings.Contains(r, "incident "+id) || !strings.Contains(r, "not acknowledged") {
		t.Fatalf("reasons: %q", r)
	}

	// The incident page: count, entities, first steps with the panel's controls.
	do(t, ctx, "open the incident", press(".incident-card.sev-HIGH button.open-incident"),
		chromedp.WaitVisible(css("#incident-page .incident-count")))
	waitFor(t, ctx, "the users in the entities", 20*time.Second,
		`(document.querySelector('#incident-page tr.entity-row[data-field="user_id"] td.values')||{}).textContent === "100, 101, 102, 103, 104, 105, 106, 107, 108, 109, 110"`)
	if v := textOf(t, ctx, `#incident-page tr.entity-row[data-field="ip"] td.values`); v != "203.0.113.250" {
		t.Fatalf("ip entities: %q", v)
	}
	for _, sel := range []string{"#incident-page .step[data-action=acknowledge] button.step-ack",
		"#incident-page .step[data-action=entities] a.step-entities", "#incident-page .blocking-note"} {
		if n := get(t, ctx, sel, chromedp.Evaluate[int](`document.querySelectorAll(`+fmt.Sprintf("%q", sel)+`).length`)); n != 1 {
			t.Fatalf("%s: %d", sel, n)
		}
	}
	// Every field is visible at 1400 px: nothing overflows its box, the IP at the end of the
	// excerpt's lines included.
	overflow := get(t, ctx, "overflow", chromedp.Evaluate[string](`[...document.querySelectorAll("#incident-page .excerpt, #incident-page table, #incident-page dd, .incident-card .excerpt")]
		.filter((e) => e.scrollWidth > e.clientWidth + 1).map((e) => e.className || e.tagName).join(",")`))
	if overflow != "" {
		t.Fatalf("cut off at 1400 px: %s", overflow)
	}
	screenshot(t, ctx, "incident-open.png")

	// The burst goes on: the count is live.
	write(111, 4, time.Now().UTC())
	waitFor(t, ctx, "the live count", 30*time.Second,
		`(document.querySelector("#incident-page .incident-count")||{}).textContent.startsWith("15 events")`)

	// Acknowledge from the first steps: the state is "acknowledged", never green.
	do(t, ctx, "acknowledge", press("#incident-page button.step-ack"),
		chromedp.WaitVisible(css("#confirm-reason")),
		chromedp.SendKeys(css("#confirm-reason"), "revoking mallory's token"),
		chromedp.Click(css("#confirm-ok")),
		chromedp.WaitVisible(css("#incident-page dd.ack")),
	)
	if s := textOf(t, ctx, "#status-word"); s != "acknowledged" {
		t.Fatalf("banner after the acknowledgement: %q", s)
	}
	if n := textOf(t, ctx, "#notice"); !strings.Contains(n, "Incident "+id+" acknowledged") {
		t.Fatalf("notice: %q", n)
	}
	if r := textOf(t, ctx, "#reasons"); !strings.Contains(r, "still firing, acknowledged by bob") || strings.Contains(r, "Every source attached") {
		t.Fatalf("reasons while acknowledged: %q", r)
	}
	screenshot(t, ctx, "incident-acknowledged.png")

	// The burst ends: resolved, still listed, still "acknowledged" until closed.
	waitFor(t, ctx, "the resolution", 90*time.Second,
		`!!document.querySelector("#incident-page .incident-status .status-resolved")`)
	if s := textOf(t, ctx, "#status-word"); s != "acknowledged" {
		t.Fatalf("banner after the resolution: %q", s)
	}
	if n := textOf(t, ctx, "#notice"); n != "" {
		t.Fatalf("a message outlived the state change: %q", n)
	}

	// Close with a note.
	do(t, ctx, "close", press("#incident-page button.step-close"),
		chromedp.WaitVisible(css("#confirm-reason")),
		chromedp.Click(css("#confirm-ok")),
		chromedp.WaitVisible(css("#confirm-error")),
	)
	if e := textOf(t, ctx, "#confirm-error"); !strings.Contains(e, "Note for the review is required") {
		t.Fatalf("close without a note: %q", e)
	}
	do(t, ctx, "close with a note",
		chromedp.SendKeys(css("#confirm-reason"), "15 passwords reset with a stolen admin token; token revoked, users forced to re-verify"),
		chromedp.Click(css("#confirm-ok")),
		chromedp.WaitVisible(css("#incident-page dd.closed-note")),
	)
	waitFor(t, ctx, "the normal state", 20*time.Second, `document.getElementById("status-word").textContent === "normal"`)
	tl := get(t, ctx, "timeline", chromedp.Evaluate[string](`[...document.querySelectorAll("#incident-page tr.timeline-entry")].map((r) => r.dataset.what).join(",")`))
	for _, want := range []string{"opened", "count", "acknowledged", "resolved", "closed"} {
		if !strings.Contains(tl, want) {
			t.Errorf("timeline %q lacks %s", tl, want)
		}
	}
	screenshot(t, ctx, "incident-closed.png")

	// Past incidents are searchable.
	do(t, ctx, "search closed incidents", press("#incident-back"),
		chromedp.SetValue(css("#incident-status"), "closed"),
		chromedp.SendKeys(css("#incident-q"), "stolen admin"),
		chromedp.Click(css(`#incident-search button[type="submit"]`)),
		chromedp.WaitVisible(css(`.incident-card.past[data-id="`+id+`"] .closed-note`)),
	)

	audit := textOf(t, ctx, "#audit-list")
	for _, want := range []string{"incident.open", "tda (system)", "incident.acknowledge", "revoking mallory's token",
		"incident.resolve", "incident.close", "bob (session bob)", "incident " + id + " · mass_password_reset"} {
		if !strings.Contains(audit, want) {
			t.Errorf("audit log lacks %q:\n%s", want, audit)
		}
	}

	// Signing out clears what the last action said.
	do(t, ctx, "sign out", press("#signout"), chromedp.WaitVisible(css("#token")))
	if msg := textOf(t, ctx, "#notice") + textOf(t, ctx, "#error"); msg != "" {
		t.Fatalf("messages after sign-out: %q", msg)
	}
	if exit, _ := a.Stop(); exit != 0 {
		t.Fatalf("agent exit %d:\n%s", exit, a.Logs())
	}
}
