package slack_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tda-dev/tda/agent/agenttest"
	"github.com/tda-dev/tda/plugins/webhook"
	"github.com/tda-dev/tda/sdk"
)

var fingerprintRE = regexp.MustCompile("Fingerprint:? `?(fp-\\d{4})")

// delivered returns the fingerprints of the alerts in Slack's accepted messages, in the order
// Slack received them.
func delivered(fs *fakeSlack) []string {
	var out []string
	for _, r := range fs.Requests() {
		if r.Status != http.StatusOK {
			continue
		}
		for _, m := range fingerprintRE.FindAllStringSubmatch(string(r.Body), -1) {
			out = append(out, m[1])
		}
	}
	return out
}

func checkOnceInOrder(t *testing.T, what string, got, want []string) {
	t.Helper()
	if strings.Join(got, ",") == strings.Join(want, ",") {
		return
	}
	seen := map[string]int{}
	for _, fp := range got {
		seen[fp]++
	}
	var missing, twice []string
	for _, fp := range want {
		switch seen[fp] {
		case 0:
			missing = append(missing, fp)
		case 1:
		default:
			twice = append(twice, fp)
		}
	}
	t.Fatalf("%s: got %d alerts, want %d once each in order\nmissing %v\nmore than once %v\ngot  %v\nwant %v",
		what, len(got), len(want), missing, twice, got, want)
}

func outage(t *testing.T) time.Duration {
	if v := os.Getenv("TDA_E2E_OUTAGE"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("TDA_E2E_OUTAGE: %v", err)
		}
		return d
	}
	return 12 * time.Second
}

const slackAgentConfig = `
agent {
  data_dir   = "DIR/data"
}
source "alertfeed" "feed" {
  path = "DIR/alerts.in"
}
sink "slack" "oncall" {
  webhook_url = %q
  %s
  retry {
    initial = "200ms"
    max     = "2s"
  }
}
%s
pipeline "alerts" {
  from = [source.alertfeed.feed]
  to   = [sink.slack.oncall]
}
`

// Slack is down for a while (12 s; TDA_E2E_OUTAGE sets a longer one) during a burst of alerts: the email fallback gets them once
// fallback_after has passed, and once Slack is back every alert reaches it exactly once, in
// the order the alerts were raised.
func TestAgentSlackOutageFallsBackToEmailAndLosesNothing(t *testing.T) {
	down := outage(t)
	const fallbackAfter = 4 * time.Second
	fs := newFakeSlack(t)
	fs.SetDown(true)
	mb := newMailbox(t)
	a := newAgent(t, fmt.Sprintf(slackAgentConfig, fs.URL("ok"),
		fmt.Sprintf("fallback = sink.email.ops\n  fallback_after = %q", sdk.FormatDuration(fallbackAfter)),
		fmt.Sprintf(`sink "email" "ops" {
  server = %q
  tls    = "none"
  from   = "tda@example.com"
  to     = ["oncall@example.com"]
}`, mb.Addr)))
	f := newFeed(a)
	a.Start()
	start := time.Now()
	var want []string
	for i := 0; i < 10; i++ { // a burst: 30 alerts in 3 seconds
		want = append(want, f.add(t, 3)...)
		time.Sleep(300 * time.Millisecond)
	}
	mailed := func() []string {
		var fps []string
		for _, m := range mb.messages() {
			for _, s := range fingerprintRE.FindAllStringSubmatch(string(m.Data), -1) {
				fps = append(fps, s[1])
			}
		}
		return fps
	}
	agenttest.WaitFor(t, "the email fallback", fallbackAfter+30*time.Second, func() bool { return len(mailed()) >= len(want) })
	if first := mb.messages()[0].At; first.Sub(start) < fallbackAfter {
		t.Errorf("the first fallback mail came %v after the first alert, before fallback_after (%v)", first.Sub(start), fallbackAfter)
	}
	got := mailed()
	sort.Strings(got)
	checkOnceInOrder(t, "email fallback", got, want)
	if n := len(delivered(fs)); n != 0 {
		t.Fatalf("Slack accepted %d alerts while down", n)
	}

	time.Sleep(time.Until(start.Add(down)))
	attempts := len(fs.Requests())
	fs.SetDown(false)
	agenttest.WaitFor(t, "Slack to receive every alert", time.Minute, func() bool { return len(delivered(fs)) >= len(want) })
	time.Sleep(time.Second) // a duplicate would come now
	checkOnceInOrder(t, "Slack after the outage", delivered(fs), want)
	if attempts < 5 {
		t.Errorf("only %d attempts during a %v outage: retries are not happening", attempts, down)
	}
	if n := len(mailed()); n != len(want) {
		t.Errorf("the fallback got %d alerts in all, want %d (each once)", n, len(want))
	}
	a.Stop()
	t.Logf("outage %v: %d attempts while down, %d mails, %d Slack requests in all", down, attempts, len(mb.messages()), len(fs.Requests()))
}

// Slack answers 429 with Retry-After: 3; nothing reaches it again before three seconds.
func TestAgentHonoursRetryAfter(t *testing.T) {
	fs := newFakeSlack(t)
	fs.Limit(1)
	a := newAgent(t, fmt.Sprintf(slackAgentConfig, fs.URL("ok"), "", ""))
	f := newFeed(a)
	a.Start()
	want := f.add(t, 2)
	agenttest.WaitFor(t, "the 429", 30*time.Second, func() bool { return len(fs.Requests()) >= 1 })
	want = append(want, f.add(t, 1)...) // arrives during the pause
	agenttest.WaitFor(t, "delivery after the pause", 30*time.Second, func() bool { return len(delivered(fs)) >= len(want) })
	reqs := fs.Requests()
	if reqs[0].Status != http.StatusTooManyRequests {
		t.Fatalf("first answer %d, want 429", reqs[0].Status)
	}
	if gap := reqs[1].At.Sub(reqs[0].At); gap < 3*time.Second {
		t.Fatalf("a request came %v after the 429 with Retry-After: 3", gap)
	}
	time.Sleep(2 * time.Second)
	checkOnceInOrder(t, "Slack", delivered(fs), want)
	a.Stop()
}

// The agent is killed with -9 while alerts wait in Slack's queue; after a restart each alert
// reaches Slack exactly once.
func TestAgentKilledWithQueuedAlertsDeliversEachOnce(t *testing.T) {
	fs := newFakeSlack(t)
	fs.SetDown(true)
	a := newAgent(t, fmt.Sprintf(slackAgentConfig, fs.URL("ok"), "", ""))
	f := newFeed(a)
	a.Start()
	want := f.add(t, 20)
	agenttest.WaitFor(t, "a first failed attempt", 30*time.Second, func() bool { return len(fs.Requests()) >= 1 })
	a.Kill()
	fs.SetDown(false)
	want = append(want, f.add(t, 5)...) // written while the agent is down
	a.Start()
	agenttest.WaitFor(t, "every alert after the restart", time.Minute, func() bool { return len(delivered(fs)) >= len(want) })
	time.Sleep(3 * time.Second)
	checkOnceInOrder(t, "Slack after kill -9", delivered(fs), want)

	// A second kill -9 and restart, with everything delivered, sends nothing again.
	before := len(fs.Requests())
	a.Kill()
	a.Start()
	time.Sleep(5 * time.Second)
	if n := len(fs.Requests()); n != before {
		t.Fatalf("%d requests after a restart with nothing queued", n-before)
	}
	a.Stop()
}

// BenchmarkAgentAlertLatency measures, through the real agent and plugin processes, the time
// from an alert being emitted by its source to the webhook receiving it (signature
// verified), and reports p50 and p99.
func BenchmarkAgentAlertLatency(b *testing.B) {
	const perRun = 200
	var mu sync.Mutex
	var lat []time.Duration
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		now := time.Now()
		body, _ := io.ReadAll(r.Body)
		p, err := webhook.Verify([]byte("0123456789abcdef0123456789abcdef"), body,
			r.Header.Get(webhook.HeaderSignature), r.Header.Get(webhook.HeaderTimestamp), now, time.Minute)
		if err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		mu.Lock()
		for _, raw := range p.Alerts {
			var e sdk.Event
			if e.UnmarshalJSON(raw) == nil {
				lat = append(lat, now.Sub(e.Time))
			}
		}
		mu.Unlock()
	}))
	defer recv.Close()
	a := newAgent(b, fmt.Sprintf(`
agent {
  data_dir   = "DIR/data"
}
source "alertfeed" "feed" {
  path = "DIR/alerts.in"
}
sink "webhook" "pager" {
  url    = %q
  secret = "0123456789abcdef0123456789abcdef"
}
pipeline "alerts" {
  from = [source.alertfeed.feed]
  to   = [sink.webhook.pager]
}`, recv.URL))
	f := newFeed(a)
	a.Start()
	defer a.Stop()
	time.Sleep(2 * time.Second) // let the plugins start
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for j := 0; j < perRun; j++ {
			f.add(b, 1)
			time.Sleep(20 * time.Millisecond)
		}
	}
	want := b.N * perRun
	deadline := time.Now().Add(time.Minute)
	for {
		mu.Lock()
		n := len(lat)
		mu.Unlock()
		if n >= want || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.StopTimer()
	mu.Lock()
	defer mu.Unlock()
	if len(lat) < want {
		b.Fatalf("the webhook received %d of %d alerts", len(lat), want)
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))]) / float64(time.Millisecond) }
	b.ReportMetric(q(0.50), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
	b.ReportMetric(float64(lat[len(lat)-1])/float64(time.Millisecond), "max-ms")
}

// The whole chain with the bundled file source and rules processor: password resets whose
// log lines carry "<!channel>" and a fake link raise a mass_password_reset alert, and the
// message Slack receives shows them as text.
func TestAgentFullPipelineEscapesLogText(t *testing.T) {
	fs := newFakeSlack(t)
	a := newAgent(t, fmt.Sprintf(`
agent {
  data_dir = "DIR/data"
}
source "file" "app" {
  paths     = ["DIR/logs/*.log"]
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
sink "slack" "oncall" {
  webhook_url = %q
}
pipeline "detect" {
  from    = [source.file.app]
  through = [processor.rules.anomalies]
  to      = [sink.slack.oncall]
}`, fs.URL("ok")), "file", "detect")
	if err := os.MkdirAll(a.Path("logs"), 0o755); err != nil {
		t.Fatal(err)
	}
	var lines strings.Builder
	now := time.Now().UTC()
	for i := 0; i < 12; i++ {
		ts := now.Add(time.Duration(i) * time.Second)
		fmt.Fprintf(&lines, "[%s,%03d] INFO in auth: password_changed user_id=%d actor=<!channel> actor_role=user ip=10.1.2.3 note=<http://evil|bank>\n",
			ts.Format("2006-01-02 15:04:05"), ts.Nanosecond()/1e6, 40+i)
	}
	if err := os.WriteFile(a.Path("logs", "app.log"), []byte(lines.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	a.Start()
	agenttest.WaitFor(t, "the alert in Slack", 30*time.Second, func() bool {
		for _, r := range fs.Requests() {
			if r.Status == http.StatusOK {
				return true
			}
		}
		return false
	})
	a.Stop()
	var body string
	for _, r := range fs.Requests() {
		if r.Status != http.StatusOK {
			t.Fatalf("Slack answered %d (%s)", r.Status, r.Body)
		}
		body += string(r.Body)
	}
	if !strings.Contains(body, "mass_password_reset") {
		t.Fatalf("no mass_password_reset alert in:\n%s", body)
	}
	for _, raw := range []string{"<!channel>", "<http://evil|bank>"} {
		if strings.Contains(body, raw) {
			t.Errorf("the payload contains %q unescaped", raw)
		}
	}
	for _, escaped := range []string{"actor=&lt;!channel&gt;", "note=&lt;http://evil|bank&gt;"} {
		if !strings.Contains(body, escaped) {
			t.Errorf("the payload lacks %q:\n%s", escaped, body)
		}
	}
}
