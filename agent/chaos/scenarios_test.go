package chaos

import (
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tda-dev/tda/agent/agenttest"
)

// detectConfig is a file source feeding a raw capture (logfile, with the settings in
// captureExtra) and a detection pipeline (the mass password reset rule) to the alert audit
// file and a Slack double.
const detectConfig = `
agent {
  data_dir = "DIR/data"
}
source "file" "app" {
  paths     = ["DIR/app/*.log"]
  read_from = "beginning"
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
}
sink "logfile" "capture" {
  dir = %q
  %s
}
sink "jsonl" "audit" {
  path = "DIR/alerts/alerts.jsonl"
}
sink "slack" "oncall" {
  webhook_url = %q
  retry {
    initial = "200ms"
    max     = "1s"
  }
}
pipeline "capture" {
  from = [source.file.app]
  to   = [sink.logfile.capture]
}
pipeline "detect" {
  from    = [source.file.app]
  through = [processor.rules.anomalies]
  to      = [sink.jsonl.audit, sink.slack.oncall]
}
`

// spillBuffer keeps a failing capture from holding back detection: its backlog goes to disk.
const spillBuffer = `buffer {
    max_size      = "16MiB"
    when_full     = "spill"
    max_disk_size = "1GiB"
  }`

// alertLatency writes a mass password reset and returns how long until the alert reached
// alerts.jsonl and Slack (0 when it did not within timeout).
func alertLatency(t *testing.T, a *agenttest.Agent, slack *slackDouble, timeout time.Duration) (jsonl, toSlack time.Duration) {
	t.Helper()
	start := time.Now()
	appLog(t, a.Path("app", "app.log"), passwordResets()...)
	deadline := start.Add(timeout)
	for time.Now().Before(deadline) && (jsonl == 0 || toSlack == 0) {
		if jsonl == 0 && fileHolds(a.Path("alerts", "alerts.jsonl"), "mass_password_reset") {
			jsonl = time.Since(start)
		}
		if toSlack == 0 {
			if count, first := slack.seen(); len(count) > 0 {
				for _, at := range first {
					toSlack = at.Sub(start)
				}
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	return jsonl, toSlack
}

func ms(d time.Duration) string {
	if d == 0 {
		return "never"
	}
	return fmt.Sprintf("%d ms", d.Milliseconds())
}

// scenarioDiskFull: a mass password reset while the capture's disk is full. The alert must
// reach alerts.jsonl and Slack as fast as without the fault, the state must say the capture
// is failing, and once space returns the capture must catch up with every line, once.
func scenarioDiskFull(t *testing.T) {
	o := record(t, "capture disk full (1 MiB tmpfs) during a mass password reset",
		"alert as fast as without the fault; degraded with a reason; capture catches up, 0 lost, 0 repeated")
	bins := []string{"file", "detect", "logfile", "jsonl", "slack"}

	// Without the fault, for comparison.
	slack := newSlackDouble(t)
	base := newAgent(t, fmt.Sprintf(detectConfig, "DIR/capture", spillBuffer, slack.URL()), bins...)
	validConfig(t, o, base)
	base.Start()
	appLog(t, base.Path("app", "app.log"), noise("base", 0, 200)...)
	baseJSONL, baseSlack := alertLatency(t, base, slack, 30*time.Second)
	base.Stop()
	o.figure("alert latency without the fault: %s to alerts.jsonl, %s to Slack", ms(baseJSONL), ms(baseSlack))

	slack = newSlackDouble(t)
	a := newAgent(t, fmt.Sprintf(detectConfig, "DIR/capture", spillBuffer, slack.URL()), bins...)
	mountTmpfs(t, a.Path("capture"), "1m")
	filler := fill(t, a.Path("capture"))
	a.Start()
	const lines = 5000 // about 530 KB captured: they fit once the filler is gone
	appLog(t, a.Path("app", "app.log"), noise("full", 0, lines)...)
	gotJSONL, gotSlack := alertLatency(t, a, slack, 30*time.Second)
	o.figure("with the disk full: %s to alerts.jsonl, %s to Slack", ms(gotJSONL), ms(gotSlack))
	if gotJSONL == 0 || gotSlack == 0 {
		o.happened("the alert did not arrive within 30 s")
		t.Errorf("alert with the capture's disk full: %s to alerts.jsonl, %s to Slack", ms(gotJSONL), ms(gotSlack))
	} else {
		o.happened("alert arrived")
	}
	reason, ok := degradedFor(t, a, "sink.logfile.capture", 15*time.Second)
	if ok {
		o.happened("degraded: %s", reason)
	} else {
		o.happened("state not degraded for the capture (%s)", reason)
		t.Errorf("the state does not report the full disk: %s", reason)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	freed := time.Now()
	caughtUp := waitUntil(90*time.Second, func() bool {
		lost, _ := lostAndRepeated(captured(t, a.Path("capture"), "full"), lines)
		return lost == 0
	})
	lost, repeated := lostAndRepeated(captured(t, a.Path("capture"), "full"), lines)
	o.figure("capture after space returned: %d of %d lines, %d repeated, caught up in %s", lines-lost, lines, repeated,
		ms(time.Since(freed)))
	if !caughtUp || repeated > 0 {
		t.Errorf("capture after the disk freed: %d lost, %d repeated", lost, repeated)
	}
	o.happened("capture caught up: %d lost, %d repeated", lost, repeated)
	a.Stop()
}

// scenarioCaptureDiskFull: the capture's disk is full, with the capture fed by a source of
// its own (so no other pipeline waits for it). The state must say why the capture fails, and
// once space returns the capture must hold every line once: a batch that did not fit leaves
// nothing behind, and its retry is written once.
func scenarioCaptureDiskFull(t *testing.T) {
	o := record(t, "capture disk full (1 MiB tmpfs), capture on its own source",
		"degraded with the disk's error; capture catches up, 0 lost, 0 repeated")
	a := newAgent(t, `
agent {
  data_dir = "DIR/data"
}
source "file" "capture" {
  paths     = ["DIR/app/*.log"]
  read_from = "beginning"
}
sink "logfile" "capture" {
  dir = "DIR/capture"
}
pipeline "capture" {
  from = [source.file.capture]
  to   = [sink.logfile.capture]
}
`, "file", "logfile")
	validConfig(t, o, a)
	mountTmpfs(t, a.Path("capture"), "1m")
	filler := fill(t, a.Path("capture"))
	a.Start()
	const lines = 5000 // about 530 KB captured: they fit once the filler is gone
	appLog(t, a.Path("app", "app.log"), noise("alone", 0, lines)...)
	if reason, ok := degradedFor(t, a, "sink.logfile.capture", 30*time.Second, "no space left on device"); ok {
		o.happened("degraded: %s", reason)
	} else {
		o.happened("not degraded (%s)", reason)
		t.Errorf("the state does not report the full disk: %s", reason)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	freed := time.Now()
	caughtUp := waitUntil(90*time.Second, func() bool {
		lost, _ := lostAndRepeated(captured(t, a.Path("capture"), "alone"), lines)
		return lost == 0
	})
	took := time.Since(freed)
	lost, repeated := lostAndRepeated(captured(t, a.Path("capture"), "alone"), lines)
	o.figure("%d of %d lines captured, %d repeated, %s after space returned", lines-lost, lines, repeated, ms(took))
	o.happened("capture caught up: %d lost, %d repeated", lost, repeated)
	if !caughtUp || repeated > 0 {
		t.Errorf("capture after the disk freed: %d lost, %d repeated", lost, repeated)
	}
	if _, ok := degradedFor(t, a, "sink.logfile.capture", time.Second); ok {
		t.Errorf("the state still reports the capture failing after it caught up")
	}
	a.Stop()
}

// scenarioSinkStopped: the capture's plugin process is stopped (SIGSTOP) for 60 s. Detection
// must go on, the hung sink must be reported and restarted, and no line may be lost.
func scenarioSinkStopped(t *testing.T) {
	o := record(t, "capture sink plugin stopped (SIGSTOP) for 60 s",
		"alerts go on; hung sink reported and restarted; 0 lost")
	slack := newSlackDouble(t)
	a := newAgent(t, fmt.Sprintf(detectConfig, "DIR/capture", spillBuffer+"\n  call_timeout = \"5s\"", slack.URL()),
		"file", "detect", "logfile", "jsonl", "slack")
	validConfig(t, o, a)
	a.Start()
	const before, during = 500, 2000
	appLog(t, a.Path("app", "app.log"), noise("stop", 0, before)...)
	if !waitUntil(30*time.Second, func() bool {
		lost, _ := lostAndRepeated(captured(t, a.Path("capture"), "stop"), before)
		return lost == 0
	}) {
		t.Fatal("the capture did not start")
	}
	pid := pluginPid(a, "tda-plugin-logfile")
	if pid == 0 {
		t.Fatal("no logfile plugin process")
	}
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	defer syscall.Kill(pid, syscall.SIGCONT)
	appLog(t, a.Path("app", "app.log"), noise("stop", before, during)...)
	gotJSONL, gotSlack := alertLatency(t, a, slack, 30*time.Second)
	o.figure("alert with the sink stopped: %s to alerts.jsonl, %s to Slack", ms(gotJSONL), ms(gotSlack))
	if gotJSONL == 0 {
		o.happened("no alert while the sink was stopped")
		t.Errorf("detection stalled behind the stopped sink")
	} else {
		o.happened("alerts went on")
	}
	// The hang is reported as it happens: the state is degraded while the sink does not
	// answer, and from call_timeout on the agent logs it, kills the plugin and counts the
	// restart. A restart takes a fraction of a second, so the degraded spell can end between
	// two looks at the state; the log line and the restart count stay.
	var reason string
	reported := waitUntil(30*time.Second, func() bool {
		st, err := stateOf(t, a)
		if err != nil {
			return false
		}
		for _, r := range st.Degraded {
			if strings.Contains(r, "sink.logfile.capture") {
				reason = "degraded: " + r
				return true
			}
		}
		for _, c := range st.Components {
			if c.Address == "sink.logfile.capture" && c.Restarts > 0 &&
				strings.Contains(a.Logs(), "did not answer within call_timeout") {
				reason = fmt.Sprintf("logged as hung (no answer within call_timeout), killed and restarted (restarts: %d)", c.Restarts)
				return true
			}
		}
		return false
	})
	if reported {
		o.happened("%s", reason)
	} else {
		o.happened("hung sink not reported")
		t.Errorf("neither the state nor the log reports the hung sink")
	}
	restarted := waitUntil(30*time.Second, func() bool {
		p := pluginPid(a, "tda-plugin-logfile")
		return p != 0 && p != pid
	})
	if restarted {
		o.happened("sink restarted after %s", ms(time.Since(stopped)))
	} else {
		o.happened("sink not restarted")
		t.Errorf("the hung sink plugin was not replaced")
	}
	time.Sleep(time.Until(stopped.Add(60 * time.Second)))
	_ = syscall.Kill(pid, syscall.SIGCONT)
	total := before + during
	waitUntil(60*time.Second, func() bool {
		lost, _ := lostAndRepeated(captured(t, a.Path("capture"), "stop"), total)
		return lost == 0
	})
	lost, repeated := lostAndRepeated(captured(t, a.Path("capture"), "stop"), total)
	o.figure("capture: %d of %d lines, %d repeated", total-lost, total, repeated)
	if lost > 0 {
		t.Errorf("%d lines lost", lost)
	}
	a.Stop()
}

// scenarioPoisonLine: a processor panics on one line. The batch holding it must go to the
// dead letters, the lines after it must go through, and the state must say so.
func scenarioPoisonLine(t *testing.T) {
	o := record(t, "processor panics on one poison line",
		"batch dead-lettered; the pipeline moves on; degraded with a reason")
	a := newAgent(t, `
agent {
  data_dir = "DIR/data"
}
source "file" "app" {
  paths     = ["DIR/app/*.log"]
  read_from = "beginning"
}
processor "poison" "bug" {
  max_attempts = 2
}
sink "jsonl" "out" {
  path = "DIR/out/lines.jsonl"
}
pipeline "lines" {
  from    = [source.file.app]
  through = [processor.poison.bug]
  to      = [sink.jsonl.out]
}
`, "file", "jsonl")
	validConfig(t, o, a)
	a.Start()
	appLog(t, a.Path("app", "app.log"), noise("poison", 0, 100)...)
	if !waitUntil(30*time.Second, func() bool { return agenttest.CountLines(a.Path("out", "lines.jsonl")) >= 100 }) {
		t.Fatal("lines before the poison did not go through")
	}
	appLog(t, a.Path("app", "app.log"), flaskLine(time.Now(), "POISON run=poison n=100"))
	time.Sleep(2 * time.Second) // the poison line travels alone
	appLog(t, a.Path("app", "app.log"), noise("poison", 101, 100)...)
	moved := waitUntil(60*time.Second, func() bool {
		return fileHolds(a.Path("out", "lines.jsonl"), "run=poison n=200")
	})
	if moved {
		o.happened("lines after the poison went through")
	} else {
		o.happened("the pipeline is stuck behind the poison line")
		t.Errorf("the lines after the poison line did not go through")
	}
	letters, err := deadLetters(t, a)
	found := false
	for _, l := range letters {
		if l.Instance == "processor.poison.bug" && strings.Contains(strings.Join(l.Preview, " ")+l.Error, "POISON") {
			found = true
			o.happened("dead letter %d: %s after %d attempts (%s)", l.ID, l.Reason, l.Attempts, l.Error)
		}
	}
	if err != nil {
		o.happened("no dead letters: %v", err)
		t.Errorf("dead letters: %v", err)
	} else if !found {
		o.happened("the poison batch is not among %d dead letters", len(letters))
		t.Errorf("no dead letter holds the poison line: %+v", letters)
	}
	if reason, ok := degradedFor(t, a, "processor.poison.bug", 10*time.Second); ok {
		o.happened("degraded: %s", reason)
	} else {
		o.happened("not degraded (%s)", reason)
		t.Errorf("the state does not report the dead-lettered batch: %s", reason)
	}
	a.Stop()
}

// scenarioSlackRevoked: Slack answers 404 no_service. The state must be degraded with the
// refusal's reason, and the alert must go to the email fallback and to the dead letters.
func scenarioSlackRevoked(t *testing.T) {
	o := record(t, "Slack webhook revoked (404 no_service)",
		"degraded with the refusal; alert mailed by the fallback and dead-lettered")
	slack := newSlackDouble(t)
	slack.revoke(404, "no_service")
	mail := newMailServer(t)
	a := newAgent(t, fmt.Sprintf(`
agent {
  data_dir = "DIR/data"
}
source "alertfeed" "feed" {
  path = "DIR/feed.jsonl"
}
sink "slack" "oncall" {
  webhook_url = %q
  fallback    = sink.email.ops
}
sink "email" "ops" {
  server = %q
  tls    = "none"
  from   = "tda <tda@example.com>"
  to     = ["ops@example.com"]
}
pipeline "alerts" {
  from = [source.alertfeed.feed]
  to   = [sink.slack.oncall]
}
`, slack.URL(), mail.Addr), "slack", "email")
	validConfig(t, o, a)
	a.Start()
	appendAlerts(t, a.Path("feed.jsonl"), "revoked", 0, 1)
	fp := "revoked-000000"
	if waitUntil(30*time.Second, func() bool { return mail.holds(fp) }) {
		o.happened("alert mailed by the fallback")
	} else {
		o.happened("no mail")
		t.Errorf("the fallback did not mail the alert")
	}
	want := "webhook revoked (404 no_service): fix webhook_url"
	if reason, ok := degradedFor(t, a, "sink.slack.oncall", 15*time.Second, want); ok {
		o.happened("degraded: %s", reason)
	} else {
		o.happened("state: %s", reason)
		t.Errorf("the state does not say %q: %s", want, reason)
	}
	letters, err := deadLetters(t, a)
	found := false
	for _, l := range letters {
		if l.Instance == "sink.slack.oncall" && l.Reason == "refused" {
			found = true
			o.happened("dead letter %d: %s", l.ID, l.Error)
		}
	}
	if err != nil {
		o.happened("no dead letters: %v", err)
		t.Errorf("dead letters: %v", err)
	} else if !found {
		o.happened("not dead-lettered (%d letters)", len(letters))
		t.Errorf("the refused alert is not a dead letter: %+v", letters)
	}
	_, attempts := slack.stats()
	o.figure("Slack attempts: %d", attempts)
	a.Stop()
}

const webhookSecret = "0123456789abcdef0123456789abcdef"

// scenarioKilledFiveTimes: the agent is killed with SIGKILL five times while 20,000 alerts go
// through. alerts.jsonl must hold each exactly once; a webhook receiver may see a request
// again (at most one per kill), always under the same X-Tda-Delivery.
func scenarioKilledFiveTimes(t *testing.T) {
	o := record(t, "kill -9 of the agent 5 times during 20,000 alerts",
		"jsonl: 0 lost, 0 repeated; webhook: 0 lost, at most 1 repeated request per kill, same X-Tda-Delivery")
	hook := newWebhookDouble(t)
	a := newAgent(t, fmt.Sprintf(`
agent {
  data_dir = "DIR/data"
}
source "alertfeed" "feed" {
  path = "DIR/feed.jsonl"
}
sink "jsonl" "audit" {
  path = "DIR/alerts/alerts.jsonl"
}
sink "webhook" "hook" {
  url    = %q
  secret = %q
}
pipeline "alerts" {
  from = [source.alertfeed.feed]
  to   = [sink.jsonl.audit, sink.webhook.hook]
}
`, hook.URL(), webhookSecret), "jsonl", "webhook")
	validConfig(t, o, a)
	a.Start()
	const total, chunk, kills = 20000, 500, 5
	feed := a.Path("feed.jsonl")
	killed := 0
	for from := 0; from < total; from += chunk {
		appendAlerts(t, feed, "kill", from, from+chunk)
		time.Sleep(100 * time.Millisecond)
		if killed < kills && from > 0 && (from/chunk)%7 == 0 {
			a.Kill()
			killed++
			a.Start()
		}
	}
	jsonlCounts := func() (distinct, lines int) {
		seen := map[string]bool{}
		for _, e := range agenttest.ReadJSONL(t, a.Path("alerts", "alerts.jsonl")) {
			if e.Alert != nil {
				seen[e.Alert.Fingerprint] = true
				lines++
			}
		}
		return len(seen), lines
	}
	waitUntil(120*time.Second, func() bool {
		d, _ := jsonlCounts()
		wd, _, _, _ := hook.tally()
		return d >= total && wd >= total
	})
	a.Stop()
	distinct, lines := jsonlCounts()
	wd, repeats, otherID, repeatedRequests := hook.tally()
	o.figure("%d kills", killed)
	o.figure("jsonl: %d lost, %d repeated", total-distinct, lines-distinct)
	o.figure("webhook: %d lost, %d records repeated in %d repeated requests, %d under another X-Tda-Delivery",
		total-wd, repeats, repeatedRequests, otherID)
	o.happened("jsonl %d/%d once", distinct, total)
	if distinct != total || lines != distinct {
		t.Errorf("alerts.jsonl: %d of %d alerts, %d lines", distinct, total, lines)
	}
	if wd != total {
		t.Errorf("the webhook received %d of %d alerts", wd, total)
	}
	if repeatedRequests > killed || otherID > 0 {
		t.Errorf("the webhook saw %d repeated requests for %d kills, %d repeats under another delivery id",
			repeatedRequests, killed, otherID)
	}
}

// scenarioSlackOutage: 100,000 alerts arrive during a 30-minute Slack outage (run on the
// double's clock, 60 times faster). Nothing may be lost or sent twice; the agent's memory is
// reported.
func scenarioSlackOutage(t *testing.T) {
	o := record(t, "100,000 alerts through a 30-minute Slack outage (clock 60x)",
		"0 lost (delivered + queued = 100,000), 0 sent twice; peak RSS reported")
	slack := newSlackDouble(t)
	a := newAgent(t, fmt.Sprintf(`
agent {
  data_dir = "DIR/data"
}
source "alertfeed" "feed" {
  path = "DIR/feed.jsonl"
}
sink "jsonl" "audit" {
  path = "DIR/alerts/alerts.jsonl"
}
sink "slack" "oncall" {
  webhook_url = %q
  retry {
    initial = "200ms"
    max     = "1s"
  }
}
pipeline "alerts" {
  from = [source.alertfeed.feed]
  to   = [sink.jsonl.audit, sink.slack.oncall]
}
`, slack.URL()), "jsonl", "slack")
	validConfig(t, o, a)
	const total = 100000
	outage := slack.outage(30*time.Minute, 60)
	outageEnd := time.Now().Add(outage)
	a.Start()
	appendAlerts(t, a.Path("feed.jsonl"), "outage", 0, total)
	var peak int64
	sample := func() {
		if v := agenttest.ProcStatus(a.Pid(), "VmHWM:"); v > peak {
			peak = v
		}
	}
	inJSONL := func() int { return agenttest.CountLines(a.Path("alerts", "alerts.jsonl")) }
	accepted := waitUntil(180*time.Second, func() bool { sample(); return inJSONL() >= total })
	o.figure("alerts.jsonl: %d of %d", inJSONL(), total)
	if !accepted {
		t.Errorf("alerts.jsonl holds %d of %d alerts", inJSONL(), total)
	}
	for time.Now().Before(outageEnd.Add(10 * time.Second)) {
		sample()
		time.Sleep(200 * time.Millisecond)
	}
	counts, _ := slack.seen()
	twice := 0
	for _, n := range counts {
		if n > 1 {
			twice += n - 1
		}
	}
	queued, qerr := queuedAt(t, a, "sink.slack.oncall")
	messages, attempts := slack.stats()
	sample()
	o.figure("Slack: %d alerts in %d messages after the outage (%d attempts), %d sent twice", len(counts), messages, attempts, twice)
	o.figure("queued at the Slack sink: %d", queued)
	o.figure("agent peak RSS %d MiB", peak>>20)
	if qerr != nil {
		t.Errorf("queue depth: %v", qerr)
	}
	if lost := total - len(counts) - queued; lost != 0 {
		o.happened("%d alerts neither delivered nor queued", lost)
		t.Errorf("%d alerts neither delivered to Slack nor queued", lost)
	} else {
		o.happened("nothing lost")
	}
	if twice > 0 {
		t.Errorf("%d alerts sent to Slack twice", twice)
	}
	a.Stop()
}
