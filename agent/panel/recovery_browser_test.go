package panel

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tda-dev/tda/agent/agenttest"
)

const recoveryConfig = `
agent {
  data_dir   = "DIR/data"
  plugin_dir = "PLUGINS"
}
source "file" "app" {
  paths = ["DIR/logs/*.log"]
}
processor "rules" "anomalies" {
  timezone = "UTC"
  lateness = "0s"
  rule "mass_password_reset" {
    match     = "password_changed"
    unless    = "actor_role == admin"
    threshold = 10
    window    = "10s"
    severity  = "HIGH"
  }
}
sink "jsonl" "audit" {
  path = "DIR/alerts/alerts.jsonl"
}
sink "snapshot" "guard" {
  poll_interval  = "50ms"
  probe_interval = "10s"
  postgres {
    host     = "127.0.0.1"
    port     = PGPORT
    user     = "PGUSER"
    password = env("TDA_PANEL_PGPASSWORD")
    database = "PGDB"
    sslmode  = "disable"
  }
}
pipeline "detect" {
  from    = [source.file.app]
  through = [processor.rules.anomalies]
  to      = [sink.jsonl.audit, sink.snapshot.guard]
}
http {
  listen = "127.0.0.1:0"
  operator "alice" { token = "` + aliceToken + `" }
  operator "bob" { token = "` + bobToken + `" }
}
`

// TestRecoveryWalk is the operator's path on PostgreSQL through the panel alone, against the
// real agent and plugins: a snapshot is taken before the attack; an attacker resets 15
// passwords; the HIGH incident blocks the system and its anomaly snapshot is named on its
// card; its burst ends and it still blocks; its page lists the affected users; the operator
// acknowledges it; the restore dialog lists the snapshots before and during the incident,
// preselects the one before, asks for an extra confirmation for the anomaly snapshot; the
// restore brings every hash back byte for byte, and the panel shows the snapshot, the
// connection, RPO, RTO and the next steps; the incident is closed with a note; every step is
// in the audit log with what it acted on; and a broken database password turns the state
// degraded with the reason until it is fixed.
func TestRecoveryWalk(t *testing.T) {
	pg := agenttest.RequirePostgres(t)
	ctx := browser(t)
	bg := context.Background()
	// The agent's own role (created before the database, dropped after it), whose password
	// the test breaks at the end.
	const agentPassword = "tda-panel-agent-password"
	role := pg.CreateRole(t, "tda_panel_agent", agentPassword)
	owner := pg
	owner.User, owner.Password = role, agentPassword // it owns what it dumps and restores
	db := owner.CreateDatabase(t, "tda_panel")
	conn := owner.Connect(t, db)
	if _, err := conn.Exec(bg, `CREATE TABLE users (id int PRIMARY KEY, email text NOT NULL, hashed_password text NOT NULL);
		INSERT INTO users SELECT g, 'user' || g || '@example.com', '$2b$12$' || md5(g::text) || 'Qe0sSx7rVw1yXzAbCdEf'
		FROM generate_series(1, 40) g`); err != nil {
		t.Fatal(err)
	}
	hashes := func(database string) string {
		var digest string
		if err := owner.Connect(t, database).QueryRow(bg, `SELECT md5(string_agg(id || ':' || hashed_password, ',' ORDER BY id)) FROM users`).
			Scan(&digest); err != nil {
			t.Fatal(err)
		}
		return digest
	}
	before := hashes(db)

	bins := agenttest.Build(t, "file", "detect", "jsonl", "snapshot")
	cfg := strings.NewReplacer("PGPORT", fmt.Sprint(pg.Port), "PGUSER", role, "PGDB", db).Replace(recoveryConfig)
	t.Setenv("TDA_PANEL_PGPASSWORD", agentPassword)
	a := agenttest.New(t, bins, cfg)
	if err := os.MkdirAll(a.Path("logs"), 0o755); err != nil {
		t.Fatal(err)
	}
	a.Start()
	defer a.Stop()
	var m []string
	agenttest.WaitFor(t, "the panel's URL in the log", 15*time.Second, func() bool {
		m = panelURL.FindStringSubmatch(a.Logs())
		return m != nil
	})
	url := m[1]

	// 1. Signed in, the state is normal: the snapshot target passed its probe.
	do(t, ctx, "sign in",
		chromedp.Navigate(url),
		chromedp.WaitVisible(css("#token")),
		chromedp.SendKeys(css("#token"), bobToken),
		chromedp.Click(css(`#signin-form button[type="submit"]`)),
		chromedp.WaitVisible(css(`.target[data-target="guard"] .snapshot-button`)),
	)
	waitText(t, ctx, "#status-word", "normal")

	// 2. A snapshot before anything happens, from the panel.
	do(t, ctx, "take a snapshot",
		press(`.target[data-target="guard"] .snapshot-button`),
		chromedp.WaitVisible(css("#confirm-reason")),
		chromedp.SendKeys(css("#confirm-reason"), "before the release"),
		chromedp.Click(css("#confirm-ok")),
		chromedp.WaitVisible(css("#notice")),
	)
	notice := get(t, ctx, "notice", chromedp.TextContent(css("#notice")))
	manual := regexp.MustCompile(`tda-\S+-manual-\S+[0-9z]`).FindString(notice)
	if manual == "" {
		t.Fatalf("notice %q names no snapshot", notice)
	}
	time.Sleep(1100 * time.Millisecond) // the first event comes strictly after the snapshot

	// 3. The attack: 15 passwords changed by a non-admin, in the database and in the log.
	if _, err := conn.Exec(bg, `UPDATE users SET hashed_password = '$2b$12$attackerattackerattackerattackerattackerattack' WHERE id <= 15`); err != nil {
		t.Fatal(err)
	}
	var lines strings.Builder
	start := time.Now().UTC()
	for i := 0; i < 15; i++ {
		at := start.Add(time.Duration(i*100) * time.Millisecond)
		fmt.Fprintf(&lines, "[%s,%03d] INFO in auth: password_changed user_id=%d actor=mallory actor_role=user ip=203.0.113.77\n",
			at.Format("2006-01-02 15:04:05"), at.Nanosecond()/1e6, i+1)
	}
	if err := os.WriteFile(a.Path("logs", "app.log"), []byte(lines.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	do(t, ctx, "the incident's card with its anomaly snapshot",
		chromedp.WaitVisible(css(".incident-card.sev-HIGH")),
		chromedp.WaitVisible(css(".incident-card.sev-HIGH .evidence")),
	)
	waitText(t, ctx, "#status-word", "blocked")
	evidence := get(t, ctx, "evidence", chromedp.TextContent(css(".incident-card.sev-HIGH .evidence")))
	anomaly := regexp.MustCompile(`tda-\S+-anomaly-\S+`).FindString(evidence)
	if anomaly == "" || !strings.Contains(evidence, "after the first event") {
		t.Fatalf("evidence: %q", evidence)
	}
	screenshot(t, ctx, "recovery-1-incident.png")

	// 4. The burst ends before anyone acknowledged it: resolved, and still blocking. Its page
	// lists the affected users and names the anomaly snapshot.
	do(t, ctx, "open the incident", press(".incident-card.sev-HIGH button.open-incident"),
		chromedp.WaitVisible(css("#incident-page .incident-recovery .evidence")))
	waitFor(t, ctx, "the resolution", 90*time.Second,
		`!!document.querySelector("#incident-page .incident-status .status-resolved")`)
	waitText(t, ctx, "#status-word", "blocked")
	users := get(t, ctx, "affected users", chromedp.TextContent(css(`#incident-page tr.entity-row[data-field="user_id"] td.values`)))
	for i := 1; i <= 15; i++ {
		if !regexp.MustCompile(`(^|, )` + fmt.Sprint(i) + `(,|$)`).MatchString(users) {
			t.Errorf("affected users %q lack %d", users, i)
		}
	}
	screenshot(t, ctx, "recovery-2-resolved-blocked.png")

	// 5. Acknowledge.
	do(t, ctx, "acknowledge",
		press("#incident-page button.ack-button"),
		chromedp.WaitVisible(css("#confirm-reason")),
		chromedp.SendKeys(css("#confirm-reason"), "attacker reset passwords; restoring from before the incident"),
		chromedp.Click(css("#confirm-ok")),
		chromedp.WaitVisible(css("#incident-page dd.ack")),
	)
	waitText(t, ctx, "#status-word", "acknowledged")

	// 6. The restore dialog: the snapshot before the incident is preselected, the anomaly
	// snapshot is above the first event's line and needs the extra confirmation.
	do(t, ctx, "open the restore dialog",
		press("#incident-page .incident-restore"),
		chromedp.WaitVisible(css("#restore-dialog .restore-point")),
	)
	checked := get(t, ctx, "preselected point", chromedp.Evaluate[string](
		`(() => { const r = document.querySelector('#restore-points input[type=radio]:checked'); return r ? r.closest('tr').dataset.snapshot + '|' + r.closest('tr').dataset.default : ''; })()`))
	if checked != manual+"|true" {
		t.Fatalf("preselected %q, want the snapshot before the incident %s", checked, manual)
	}
	order := get(t, ctx, "rows", chromedp.Evaluate[string](
		`[...document.querySelectorAll('#restore-points tr')].map((r) => r.classList.contains('first-event-line') ? 'LINE' : r.dataset.snapshot).join(' ')`))
	if i, j, k := strings.Index(order, anomaly), strings.Index(order, "LINE"), strings.Index(order, manual); i < 0 || !(i < j && j < k) {
		t.Fatalf("row order %q: want %s, the first event's line, then %s", order, anomaly, manual)
	}
	if !get(t, ctx, "restore disabled", chromedp.Evaluate[bool](`document.getElementById('restore-ok').disabled`)) {
		t.Fatal("the restore button is enabled before anything is typed")
	}
	screenshot(t, ctx, "recovery-3-dialog.png")
	do(t, ctx, "choose the anomaly snapshot",
		chromedp.Click(css(`#restore-points tr[data-snapshot="`+anomaly+`"] input`)),
		chromedp.WaitVisible(css("#restore-during")),
		chromedp.SendKeys(css("#restore-reason"), "bring back the hashes from before the attack"),
		chromedp.SendKeys(css("#restore-type"), db),
	)
	warning := get(t, ctx, "warning", chromedp.TextContent(css("#restore-during-text")))
	if !strings.Contains(warning, "after the first event; may hold changes made by the incident") {
		t.Fatalf("warning: %q", warning)
	}
	if !get(t, ctx, "restore disabled", chromedp.Evaluate[bool](`document.getElementById('restore-ok').disabled`)) {
		t.Fatal("a snapshot from during the incident can be restored without the extra confirmation")
	}
	screenshot(t, ctx, "recovery-4-during.png")
	restored := db + "_restored"
	pg.DropOnCleanup(t, restored)
	do(t, ctx, "back to the snapshot before, and restore",
		chromedp.Click(css(`#restore-points tr[data-snapshot="`+manual+`"] input`)),
		chromedp.WaitNotVisible(css("#restore-during")),
		chromedp.SetValue(css("#restore-name"), restored),
		chromedp.SendKeys(css("#restore-name"), ""),
		chromedp.Click(css("#restore-ok")),
		chromedp.WaitNotVisible(css("#restore-dialog")),
		chromedp.WaitVisible(css(`.restore-result[data-status]:not([data-status="running"])`)),
	)
	result := get(t, ctx, "result", chromedp.TextContent(css("#recovery")))
	if status := get(t, ctx, "status", chromedp.Evaluate[string](`document.querySelector('.restore-result').dataset.status`)); status != "succeeded" {
		t.Fatalf("restore %s:\n%s", status, result)
	}
	for _, want := range []string{"snapshot " + manual, "before the first event", "database " + restored,
		"host 127.0.0.1", fmt.Sprintf("port %d", pg.Port), "user " + role, "RPO", "RTO", "Next steps",
		"the password hashes of the affected users", "Plan the repair…"} {
		if !strings.Contains(result, want) {
			t.Errorf("result lacks %q:\n%s", want, result)
		}
	}
	if strings.Contains(result, agentPassword) {
		t.Errorf("the result shows the password")
	}
	screenshot(t, ctx, "recovery-5-restored.png")
	// The next step opens the repair page on the new database and the incident.
	href := get(t, ctx, "repair link", chromedp.Evaluate[string](`document.querySelector('#recovery a.repair-link').getAttribute('href')`))
	if fp := get(t, ctx, "fingerprint", chromedp.TextContent(css("#incident-page dd.fingerprint"))); href != "repair.html?restore="+restored+"&incident="+fp {
		t.Errorf("repair link %q", href)
	}
	if got := hashes(restored); got != before {
		t.Fatal("the restored hashes differ from those before the attack")
	}

	// 7. Close the incident with a note for the review: the state is normal again.
	do(t, ctx, "close with a note",
		press("#incident-page button.close-button"),
		chromedp.WaitVisible(css("#confirm-reason")),
		chromedp.SendKeys(css("#confirm-reason"), "15 passwords reset by mallory; hashes restored from before the incident"),
		chromedp.Click(css("#confirm-ok")),
		chromedp.WaitVisible(css("#incident-page dd.closed-note")),
	)
	waitText(t, ctx, "#status-word", "normal")

	// 8. Every step is in the audit log with what it acted on.
	do(t, ctx, "audit", chromedp.WaitVisible(css(`#audit tr.audit-entry[data-action="incident.close"]`)))
	audit := get(t, ctx, "audit", chromedp.TextContent(css("#audit-list")))
	for _, want := range []string{"snapshot.create", manual, "before the release",
		"snapshot.anomaly", "tda (system)", anomaly,
		"incident.open", "incident.resolve", "incident.acknowledge", "attacker reset passwords",
		"incident.close", "hashes restored from before the incident",
		"restore.start", "restore.finish", manual + " -> " + restored} {
		if !strings.Contains(audit, want) {
			t.Errorf("audit lacks %q:\n%s", want, audit)
		}
	}
	screenshot(t, ctx, "recovery-6-closed-audit.png")

	// 9. The snapshot target's credentials break: within a probe interval the state is
	// degraded with PostgreSQL's reason and the block to fix; fixed, it is normal again.
	pg.SetPassword(t, role, "changed-by-someone-else")
	waitText(t, ctx, "#status-word", "degraded")
	reasons := get(t, ctx, "reasons", chromedp.TextContent(css("#reasons")))
	for _, want := range []string{"snapshot target guard", `password authentication failed for user "` + role + `"`,
		"fix user and password in the postgres block", `sink "snapshot" "guard"`} {
		if !strings.Contains(reasons, want) {
			t.Errorf("degraded reasons lack %q:\n%s", want, reasons)
		}
	}
	screenshot(t, ctx, "recovery-7-target-degraded.png")
	pg.SetPassword(t, role, agentPassword)
	waitText(t, ctx, "#status-word", "normal")
}

// waitText waits until the element's text is want.
func waitText(t *testing.T, ctx context.Context, sel, want string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var got string
	for time.Now().Before(deadline) {
		got = get(t, ctx, sel, chromedp.Evaluate[string](`(document.querySelector(`+fmt.Sprintf("%q", sel)+`)||{}).textContent||''`))
		if got == want {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s is %q, want %q (page says: %s)", sel, got, want, pageMessages(ctx))
}
