// Package drill runs the whole recovery of docs/recovery.md on real components, as `make
// drill` does: the example Flask app on PostgreSQL under gunicorn with traffic, tda tailing its
// log with scheduled snapshots, a mass password reset through the app's API and then a bulk
// deletion through its admin API, and for each the operator's path: alert, acknowledgement,
// restore of the last snapshot from before the incident into a new database, repair plan,
// repair. It checks the outcome through the app (every attacked user logs in with their old
// password; every legitimate change is kept) and prints a report with the figures.
package drill

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tda-dev/tda/agent/agenttest"
	"github.com/tda-dev/tda/agent/control"
	"github.com/tda-dev/tda/sdk"
)

func TestMain(m *testing.M) { agenttest.Main(m) }

const agentConfig = `
agent {
  data_dir    = "DIR/data"
  app_version = "drill"
}

source "file" "app" {
  paths     = ["DIR/logs/app.log"]
  read_from = "beginning"
}

source "schedule" "backups" {
  cron     = "@every 15s"
  timezone = "UTC"
}

processor "rules" "anomalies" {
  timezone = "UTC"
  rule "mass_password_reset" {
    match     = "password_changed"
    unless    = "actor_role == admin"
    threshold = 10
    window    = "60s"
    severity  = "HIGH"
  }
  rule "bulk_deletion" {
    match     = "user_deleted"
    threshold = 10
    window    = "60s"
    severity  = "HIGH"
  }
}

sink "jsonl" "audit" {
  path = "DIR/alerts/alerts.jsonl"
}

sink "slack" "oncall" {
  webhook_url      = %q
  message_interval = "1s"
  group_interval   = "0s"
}

sink "snapshot" "guard" {
  poll_interval    = "100ms"
  anomaly_interval = "10s"
  postgres {
    host     = %q
    port     = %d
    user     = %q
    password = env("TDA_DRILL_PGPASSWORD")
    database = %q
    sslmode  = "disable"
  }
}

pipeline "detect" {
  from    = [source.file.app]
  through = [processor.rules.anomalies]
  to      = [sink.jsonl.audit, sink.slack.oncall, sink.snapshot.guard]
}

pipeline "backups" {
  from = [source.schedule.backups]
  to   = [sink.snapshot.guard]
}
`

// The people of the drill.
const (
	users          = 240
	attacked       = 200 // users 1..200 have their password reset by the attacker
	changeAfter    = 5   // users 1..5 set a new password of their own after the attack
	deletedFrom    = 201 // users 201..230 are deleted with their orders in the second incident
	deletedTo      = 230
	ordersEach     = 2
	attacker       = "mallory@drill.test"
	attackPassword = "pwned-by-mallory"
)

var legitimateDuring = []int{231, 232, 233} // change their own password during the attack

func oldPassword(id int) string { return fmt.Sprintf("old-password-%d", id) }
func newPassword(id int) string { return fmt.Sprintf("new-password-%d", id) }

func TestDrill(t *testing.T) {
	if os.Getenv("TDA_DRILL") != "1" {
		t.Skip("the recovery drill runs with `make drill` (TDA_DRILL=1)")
	}
	began := time.Now()
	pg := requirePostgres(t)
	db := pg.createDatabase(t, "tda_drill")
	slack := newSlackDouble(t)
	bins := agenttest.Build(t, "file", "detect", "jsonl", "slack", "snapshot", "schedule")
	a := agenttest.New(t, bins, fmt.Sprintf(agentConfig, slack.url, pg.host, pg.port, pg.user, db))
	t.Setenv("TDA_DRILL_PGPASSWORD", pg.password) // for the agent and the CLI
	if err := os.MkdirAll(a.Path("logs"), 0o755); err != nil {
		t.Fatal(err)
	}
	logFile := a.Path("logs", "app.log")
	app := startApp(t, pg.url(db), logFile)
	op := &operator{t: t, bins: bins, dir: a.Dir, config: a.Config}

	// Sign-ups, and orders for the users of the second incident.
	for id := 1; id <= users; id++ {
		app.client().must(t, 201, "/api/signup", map[string]string{"email": email(id), "password": oldPassword(id)})
	}
	app.client().must(t, 201, "/api/signup", map[string]string{"email": attacker, "password": "mallory-password"})
	for id := deletedFrom; id <= deletedTo; id++ {
		c := app.client()
		c.must(t, 200, "/api/login", map[string]string{"email": email(id), "password": oldPassword(id)})
		for i := 0; i < ordersEach; i++ {
			c.must(t, 201, "/api/orders", map[string]int{"total_cents": 1000*id + i})
		}
	}
	a.Start()
	defer a.Stop()
	rep := &report{began: time.Now()}

	// --- Incident 1: a mass password reset through the app's API ---
	pre1 := op.waitSnapshot("scheduled", time.Time{})
	// People who are signed in before the attack and change their own password during or after it.
	sessions := map[int]*client{}
	for _, id := range append([]int{1, 2, 3, 4, 5}, legitimateDuring...) {
		c := app.client()
		c.must(t, 200, "/api/login", map[string]string{"email": email(id), "password": oldPassword(id)})
		sessions[id] = c
	}
	mallory := app.client()
	mallory.must(t, 200, "/api/login", map[string]string{"email": attacker, "password": "mallory-password"})
	waitAlert1 := op.watchAlert(a.Path("alerts", "alerts.jsonl"), "mass_password_reset")
	attackStart := time.Now()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // legitimate changes while the attack runs
		defer wg.Done()
		for _, id := range legitimateDuring {
			time.Sleep(300 * time.Millisecond)
			if code, _, err := sessions[id].post("/api/password", map[string]string{"password": newPassword(id)}); err != nil || code != 204 {
				t.Errorf("user %d changing their password during the attack: %d %v", id, code, err)
			}
		}
	}()
	for id := 1; id <= attacked; id++ {
		mallory.must(t, 204, fmt.Sprintf("/api/users/%d/password", id), map[string]string{"password": attackPassword})
	}
	attackEnd := time.Now()
	wg.Wait()
	alert1, alertSeen := waitAlert1(60 * time.Second)
	slackSeen := slack.waitPost(t, "mass_password_reset", 60*time.Second)
	// Users 1..5 take their accounts back and set a new password, after the attack.
	time.Sleep(3 * time.Second)
	for id := 1; id <= changeAfter; id++ {
		sessions[id].must(t, 204, "/api/password", map[string]string{"password": newPassword(id)})
	}
	anomaly := op.waitSnapshot("anomaly", attackStart.Add(-time.Second))
	inc1 := rep.incident("mass password reset: 200 accounts reset through POST /api/users/<id>/password by "+attacker,
		attackStart, attackEnd, alertSeen, slackSeen, anomaly.ID)
	actor := excerptActor(alert1)
	if actor != attacker {
		t.Fatalf("the alert's excerpt names %q, want %q:\n%s", actor, attacker, strings.Join(alert1.Excerpt, "\n"))
	}
	// The app must see these writes: the repair goes through its restore endpoint, which
	// stores hashed_password as it is.
	inc1.via = []string{"-via", "http", "-url-template", app.url + "/admin/users/{key}/restore",
		"-http-field", "password_hash=hashed_password", "-http-header", "Authorization: Bearer " + app.admin}
	op.recover(inc1, alert1.Fingerprint, pre1, db+"_r1", "-events", logFile, "-actor", actor, "-columns", "password_hash")
	// The agent's API makes the same plan (what the panel's repair page shows): nothing left.
	// The API takes the log's lines themselves: the agent reads no file for its callers.
	logData, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	inc1.apiPlan = op.apiPlan(a.Path("data", control.SocketName), map[string]any{"restore": db + "_r1",
		"incident": alert1.Fingerprint, "events": strings.Split(strings.TrimRight(string(logData), "\n"), "\n"),
		"actor": actor, "columns": []string{"password_hash"}})
	if !strings.HasPrefix(inc1.apiPlan, "0 to repair, 0 missing") {
		t.Errorf("the API's plan after the repair: %s", inc1.apiPlan)
	}

	// Through the app: the attacked users log in with their old password, except those who set
	// a new one since, whose new one is kept; the changes made during the attack are kept.
	for id := 1; id <= attacked; id++ {
		want := oldPassword(id)
		if id <= changeAfter {
			want = newPassword(id)
		}
		if !app.login(email(id), want) {
			t.Errorf("user %d cannot log in with %q after the repair", id, want)
			continue
		}
		inc1.loginsOK++
		if app.login(email(id), attackPassword) {
			t.Errorf("user %d still logs in with the attacker's password", id)
		}
	}
	for _, id := range legitimateDuring {
		if !app.login(email(id), newPassword(id)) {
			t.Errorf("user %d lost the password they set during the attack", id)
			continue
		}
		inc1.keptOK++
	}
	inc1.keptOK += changeAfter // checked above: their new password logs in
	inc1.legit = len(legitimateDuring) + changeAfter
	inc1.check = fmt.Sprintf("%d/%d attacked users log in (%d with their old password, %d with the one they set after the attack); %d/%d changes made during the attack kept",
		inc1.loginsOK, attacked, attacked-changeAfter, changeAfter, len(legitimateDuring), len(legitimateDuring))

	// --- Incident 2: a bulk deletion through the admin API ---
	pre2 := op.waitSnapshot("scheduled", inc1.repaired)
	admin := app.client()
	waitAlert2 := op.watchAlert(a.Path("alerts", "alerts.jsonl"), "bulk_deletion")
	deleteStart := time.Now()
	var ids []int
	for id := deletedFrom; id <= deletedTo; id++ {
		ids = append(ids, id)
	}
	admin.must(t, 200, "/admin/users/bulk", map[string]any{"action": "delete", "ids": ids}, "Authorization", "Bearer "+app.admin)
	deleteEnd := time.Now()
	// A legitimate order placed after the deletion stays.
	c231 := sessions[231]
	c231.must(t, 201, "/api/orders", map[string]int{"total_cents": 4242})
	alert2, alertSeen2 := waitAlert2(60 * time.Second)
	slackSeen2 := slack.waitPost(t, "bulk_deletion", 60*time.Second)
	anomaly2 := op.waitSnapshot("anomaly", deleteStart.Add(-time.Second))
	inc2 := rep.incident(fmt.Sprintf("bulk deletion: %d users (with their orders) deleted through POST /admin/users/bulk", len(ids)),
		deleteStart, deleteEnd, alertSeen2, slackSeen2, anomaly2.ID)
	op.recover(inc2, alert2.Fingerprint, pre2, db+"_r2", "-events", logFile, "-actor", excerptActor(alert2))
	conn, err := pgx.Connect(context.Background(), pg.url(db))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	for _, id := range ids {
		var orders int
		if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM orders WHERE user_id = $1", id).Scan(&orders); err != nil || orders != ordersEach {
			t.Errorf("user %d has %d orders after the repair (%v), want %d", id, orders, err, ordersEach)
		}
		if app.login(email(id), oldPassword(id)) {
			inc2.loginsOK++
		} else {
			t.Errorf("deleted user %d cannot log in after the repair", id)
		}
	}
	var kept int
	if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM orders WHERE user_id = 231 AND total_cents = 4242").Scan(&kept); err != nil || kept != 1 {
		t.Errorf("the order placed after the deletion: %d, %v", kept, err)
	}
	inc2.keptOK, inc2.legit = kept, 1
	inc2.check = fmt.Sprintf("%d/%d deleted users log in again, each with their %d orders; %d/1 order placed after the deletion kept",
		inc2.loginsOK, len(ids), ordersEach, kept)

	rep.total, rep.ended = time.Since(began), time.Now()
	text := rep.String()
	fmt.Print(text)
	if path := os.Getenv("TDA_DRILL_REPORT"); path != "" {
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Errorf("write the report: %v", err)
		}
	}
}

// operator runs tda's commands as the on-call engineer would.
type operator struct {
	t           *testing.T
	bins        agenttest.Binaries
	dir, config string
}

func (o *operator) tda(args ...string) string {
	o.t.Helper()
	code, out, errOut := agenttest.RunCLI(o.t, o.bins, o.dir, args...)
	if code != 0 {
		o.t.Fatalf("tda %s: exit %d\n%s\n%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

type listedSnapshot struct {
	ID      string    `json:"id"`
	Time    time.Time `json:"time"`
	Status  string    `json:"status"`
	Trigger string    `json:"trigger"`
}

// waitSnapshot waits for an available snapshot of trigger taken after after, and returns the
// newest.
func (o *operator) waitSnapshot(trigger string, after time.Time) listedSnapshot {
	o.t.Helper()
	var found listedSnapshot
	agenttest.WaitFor(o.t, "a "+trigger+" snapshot", 60*time.Second, func() bool {
		code, out, _ := agenttest.RunCLI(o.t, o.bins, o.dir, "snapshot", "list", "-config", o.config, "-json")
		if code != 0 {
			return false
		}
		var l struct {
			Tiers []struct {
				Snapshots []listedSnapshot `json:"snapshots"`
			} `json:"tiers"`
		}
		if json.Unmarshal([]byte(out), &l) != nil {
			return false
		}
		for _, tier := range l.Tiers {
			for _, s := range tier.Snapshots {
				if s.Trigger == trigger && s.Status == "available" && s.Time.After(after) && s.Time.After(found.Time) {
					found = s
				}
			}
		}
		return found.ID != ""
	})
	return found
}

// newestBefore returns the newest available snapshot taken before t, of any trigger.
func (o *operator) newestBefore(t time.Time) listedSnapshot {
	o.t.Helper()
	code, out, errOut := agenttest.RunCLI(o.t, o.bins, o.dir, "snapshot", "list", "-config", o.config, "-json")
	if code != 0 {
		o.t.Fatalf("tda snapshot list: %s", errOut)
	}
	var l struct {
		Tiers []struct {
			Snapshots []listedSnapshot `json:"snapshots"`
		} `json:"tiers"`
	}
	if err := json.Unmarshal([]byte(out), &l); err != nil {
		o.t.Fatal(err)
	}
	var found listedSnapshot
	for _, tier := range l.Tiers {
		for _, s := range tier.Snapshots {
			if s.Status == "available" && s.Time.Before(t) && s.Time.After(found.Time) {
				found = s
			}
		}
	}
	if found.ID == "" {
		o.t.Fatalf("no snapshot from before %s:\n%s", t, out)
	}
	return found
}

// watchAlert starts watching alerts.jsonl for the first firing record of rule, from now on,
// and returns a function that waits for it and says when it was first seen (polled every
// 20 ms, so that the detection time is measured while the attack still runs).
func (o *operator) watchAlert(path, rule string) func(timeout time.Duration) (*sdk.Alert, time.Time) {
	type seen struct {
		alert *sdk.Alert
		at    time.Time
	}
	found := make(chan seen, 1)
	stop := make(chan struct{})
	o.t.Cleanup(func() { close(stop) })
	go func() {
		for {
			data, _ := os.ReadFile(path)
			for _, line := range strings.Split(string(data), "\n") {
				var e sdk.Event
				if json.Unmarshal([]byte(line), &e) == nil && e.Alert != nil && e.Alert.Rule == rule && e.Alert.State == sdk.StateFiring {
					found <- seen{e.Alert, time.Now()}
					return
				}
			}
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	return func(timeout time.Duration) (*sdk.Alert, time.Time) {
		o.t.Helper()
		select {
		case s := <-found:
			return s.alert, s.at
		case <-time.After(timeout):
			o.t.Fatalf("no %s alert in %s within %s", rule, path, timeout)
			return nil, time.Time{}
		}
	}
}

var planCounts = regexp.MustCompile(`(\d+) to repair, (\d+) missing to re-insert, (\d+) skipped`)

// recover is the operator's path after an alert: acknowledge, restore the last snapshot from
// before the incident into a new database, make the repair plan, apply it, and check that a
// second plan finds nothing left to do.
func (o *operator) recover(inc *incident, fingerprint string, pre listedSnapshot, restoredDB string, scope ...string) {
	t := o.t
	t.Helper()
	ackAt := time.Now()
	o.tda("alerts", "ack", fingerprint, "-config", o.config, "-by", "oncall", "-comment", "drill: on it")
	// The newest snapshot from before the incident. Retention may delete a scheduled one the
	// moment the next tick is taken (it keeps the newest and the oldest of a day): then the
	// restore says it is not found, and the operator takes the newest one left.
	var out string
	for attempt := 0; ; attempt++ {
		code, stdout, stderr := agenttest.RunCLI(t, o.bins, o.dir, "restore", "-config", o.config, "-snapshot", pre.ID,
			"-to", restoredDB, "-yes", "-by", "oncall", "-reason", "drill: the last snapshot before the incident")
		if code == 0 {
			out = stdout
			break
		}
		if attempt == 3 || !strings.Contains(stderr, "not found") {
			t.Fatalf("tda restore -snapshot %s: exit %d\n%s%s", pre.ID, code, stdout, stderr)
		}
		pre = o.newestBefore(inc.start)
	}
	inc.snapshot, inc.recoveryPoint = pre.ID, pre.Time
	inc.restoreRPO = field(out, "RPO achieved")
	inc.restoreRTO = field(out, "RTO")
	base := append([]string{"repair", "-config", o.config, "-restore", restoredDB, "-incident", fingerprint}, scope...)
	plan := o.tda(base...)
	m := planCounts.FindStringSubmatch(plan)
	if m == nil {
		t.Fatalf("no summary in the plan:\n%s", plan)
	}
	inc.plan = m[0]
	fmt.Sscan(m[1], &inc.toRepair)
	fmt.Sscan(m[2], &inc.toInsert)
	fmt.Sscan(m[3], &inc.skipped)
	applyStart := time.Now()
	apply := append(append(append([]string{}, base...), inc.via...), "-apply", "-yes", "-by", "oncall", "-reason", "drill: put back what the incident damaged")
	out = o.tda(apply...)
	inc.repaired = time.Now()
	inc.applyTook = inc.repaired.Sub(applyStart)
	inc.sinceAck = inc.repaired.Sub(ackAt)
	inc.applied = strings.TrimSpace(lastLines(out, 3))
	if !strings.Contains(out, "Verified: all") {
		t.Fatalf("the repair was not verified:\n%s", out)
	}
	again := o.tda(base...)
	if m := planCounts.FindStringSubmatch(again); m == nil || m[1] != "0" || m[2] != "0" {
		t.Fatalf("a second plan still has work:\n%s", again)
	}
	inc.secondPlan = planCounts.FindString(again)
	audit := o.tda("audit", "-config", o.config)
	if !strings.Contains(audit, "repair.run") {
		t.Errorf("the repair is not in the audit log:\n%s", audit)
	}
}

// apiPlan asks the running agent for a repair plan through its control socket, as the
// panel's repair page does, and returns the plan's summary.
func (o *operator) apiPlan(socket string, body map[string]any) string {
	o.t.Helper()
	c := &http.Client{Timeout: time.Minute, Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", socket)
	}}}
	b, _ := json.Marshal(body)
	resp, err := c.Post("http://tda/api/repairs/plan", "application/json", bytes.NewReader(b))
	if err != nil {
		o.t.Fatalf("POST /api/repairs/plan: %v", err)
	}
	defer resp.Body.Close()
	var out struct {
		Summary string `json:"summary"`
		Error   string `json:"error"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&out)
	if resp.StatusCode != 200 {
		o.t.Fatalf("POST /api/repairs/plan: %d %s", resp.StatusCode, out.Error)
	}
	return out.Summary
}

// excerptActor is the actor most of the alert's excerpt lines name.
func excerptActor(a *sdk.Alert) string {
	counts := map[string]int{}
	re := regexp.MustCompile(`actor=(\S+)`)
	for _, l := range a.Excerpt {
		if m := re.FindStringSubmatch(l); m != nil {
			counts[m[1]]++
		}
	}
	best := ""
	for k, n := range counts {
		if n > counts[best] || (n == counts[best] && k < best) {
			best = k
		}
	}
	return best
}

func field(out, label string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), label) {
			f := strings.Fields(strings.TrimPrefix(strings.TrimSpace(l), label))
			if len(f) > 0 {
				return f[0]
			}
		}
	}
	return "?"
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// slackDouble is a Slack incoming webhook on 127.0.0.1: it answers "ok" and keeps the posts.
type slackDouble struct {
	url   string
	mu    sync.Mutex
	posts []post
}

type post struct {
	at   time.Time
	body string
}

func newSlackDouble(t *testing.T) *slackDouble {
	s := &slackDouble{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b strings.Builder
		buf := make([]byte, 4096)
		for {
			n, err := r.Body.Read(buf)
			b.Write(buf[:n])
			if err != nil {
				break
			}
		}
		s.mu.Lock()
		s.posts = append(s.posts, post{at: time.Now(), body: b.String()})
		s.mu.Unlock()
		_, _ = w.Write([]byte("ok"))
	}))
	t.Cleanup(srv.Close)
	s.url = srv.URL + "/services/T000/B000/drill"
	return s
}

func (s *slackDouble) waitPost(t *testing.T, rule string, timeout time.Duration) time.Time {
	t.Helper()
	var at time.Time
	agenttest.WaitFor(t, "a Slack message about "+rule, timeout, func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, p := range s.posts {
			if strings.Contains(p.body, rule) {
				at = p.at
				return true
			}
		}
		return false
	})
	return at
}

// incident is what the report says of one incident.
type incident struct {
	title                              string
	start, end, alerted, slacked       time.Time
	anomaly, snapshot                  string
	recoveryPoint                      time.Time
	restoreRPO, restoreRTO             string
	plan, applied, secondPlan, apiPlan string
	via                                []string
	toRepair, toInsert, skipped        int
	repaired                           time.Time
	applyTook, sinceAck                time.Duration
	loginsOK, keptOK, legit            int
	check                              string
}

type report struct {
	began     time.Time // the agent's start
	ended     time.Time
	total     time.Duration
	incidents []*incident
}

func (r *report) incident(title string, start, end, alerted, slacked time.Time, anomaly string) *incident {
	in := &incident{title: title, start: start, end: end, alerted: alerted, slacked: slacked, anomaly: anomaly}
	r.incidents = append(r.incidents, in)
	return in
}

func (r *report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "\n==== tda recovery drill, %s ====\n", r.began.UTC().Format(time.RFC3339))
	fmt.Fprintf(&b, "The example Flask app (examples/flask-app) on PostgreSQL under gunicorn; tda tails its log,\n")
	fmt.Fprintf(&b, "takes a scheduled snapshot every 15 s and an anomaly snapshot on HIGH alerts (jsonl + Slack double).\n")
	for i, in := range r.incidents {
		fmt.Fprintf(&b, "\nIncident %d: %s\n", i+1, in.title)
		fmt.Fprintf(&b, "  attack               %s to %s (%s)\n", clock(in.start), clock(in.end), in.end.Sub(in.start).Round(time.Millisecond))
		fmt.Fprintf(&b, "  detection time       %s after the first write (alerts.jsonl); Slack %s\n",
			in.alerted.Sub(in.start).Round(10*time.Millisecond), in.slacked.Sub(in.start).Round(10*time.Millisecond))
		fmt.Fprintf(&b, "  anomaly snapshot     %s\n", in.anomaly)
		fmt.Fprintf(&b, "  restored             %s (recovery point %s, %s before the first write)\n",
			in.snapshot, clock(in.recoveryPoint), in.start.Sub(in.recoveryPoint).Round(time.Millisecond))
		fmt.Fprintf(&b, "  restore RPO / RTO    %s / %s (tda restore's report)\n", in.restoreRPO, in.restoreRTO)
		fmt.Fprintf(&b, "  repair plan          %s\n", in.plan)
		fmt.Fprintf(&b, "  repair               applied and verified in %s: %s\n", in.applyTook.Round(time.Millisecond),
			strings.ReplaceAll(in.applied, "\n", " "))
		fmt.Fprintf(&b, "  second plan          %s\n", in.secondPlan)
		if in.apiPlan != "" {
			fmt.Fprintf(&b, "  agent API's plan     %s (POST /api/repairs/plan, as the panel asks)\n", in.apiPlan)
		}
		fmt.Fprintf(&b, "  RTO of the rows      %s from the first write to the verified repair (%s from the acknowledgement)\n",
			in.repaired.Sub(in.start).Round(100*time.Millisecond), in.sinceAck.Round(100*time.Millisecond))
		fmt.Fprintf(&b, "  legitimate changes   %d of %d made after the snapshot kept (checked in the app and the database)\n", in.keptOK, in.legit)
		fmt.Fprintf(&b, "  checked in the app   %s\n", in.check)
	}
	fmt.Fprintf(&b, "\nThe drill took %s: %s from the agent's start, the rest building the agent and plugins and seeding the app.\n",
		r.total.Round(time.Second), r.ended.Sub(r.began).Round(time.Second))
	return b.String()
}

func clock(t time.Time) string { return t.UTC().Format("15:04:05.000Z") }
