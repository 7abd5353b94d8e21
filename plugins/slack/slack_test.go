package slack_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tda-dev/tda/plugins/internal/alerttext"
	"github.com/tda-dev/tda/plugins/slack"
	"github.com/tda-dev/tda/sdk"
	"github.com/tda-dev/tda/sdk/sdktest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

var t0 = time.Date(2026, 11, 29, 10, 15, 29, 769230769, time.UTC)

// alert returns a firing alert event like the rules processor emits.
func alert(rule, key string) sdk.Event {
	return sdk.Event{
		Time: t0.Add(13 * time.Second), Kind: sdk.KindAlert, Source: "file.hosts",
		Origin: "/var/log/flask/app.log",
		Alert: &sdk.Alert{
			Rule: rule, Severity: sdk.SeverityHigh, State: sdk.StateFiring, Key: key,
			Count: 14, Threshold: 10, Window: time.Minute,
			FirstSeen: t0, LastSeen: t0.Add(13 * time.Second),
			Excerpt: []string{
				"[2026-11-29 10:15:29,769] INFO in auth: password_changed user_id=42 actor=alice actor_role=user ip=10.1.2.3",
				"[2026-11-29 10:15:31,002] INFO in auth: password_changed user_id=43 actor=alice actor_role=user ip=10.1.2.3",
			},
			Fingerprint: "3f9a1c0e5b7d2a64",
			Explanation: "Many passwords were changed by non-admin users in a short time: an account " +
				"takeover or a broken reset flow. Check who triggered the resets and lock the accounts involved.",
		},
	}
}

func newSink(t *testing.T, comp sdk.Component, hcl string, mode sdktest.Mode) *sdktest.Sink {
	t.Helper()
	return sdktest.NewSink(t, comp, hcl, sdktest.WithMode(mode))
}

func TestStatusCodesMapToOutcomes(t *testing.T) {
	fs := newFakeSlack(t)
	tests := []struct {
		behaviour  string
		want       string // ok, permanent, retry-after, transient
		retryAfter time.Duration
		reason     string
	}{
		{"ok", "ok", 0, ""},
		{"invalid_payload", "permanent", 0, "invalid_payload"},
		{"user_not_found", "permanent", 0, "user_not_found"},
		{"action_prohibited", "permanent", 0, "action_prohibited"},
		{"invalid_token", "permanent", 0, "invalid_token"},
		{"no_service", "permanent", 0, "no_service"},
		{"channel_not_found", "permanent", 0, "channel_not_found"},
		{"channel_is_archived", "permanent", 0, "channel_is_archived"},
		{"rate_limited", "retry-after", 3 * time.Second, "rate_limited"},
		{"rate_limited_body", "retry-after", 2 * time.Second, "rate_limited"},
		{"rollup_error", "transient", 0, "rollup_error"},
		{"unavailable", "transient", 0, "service_unavailable"},
		{"redirect", "permanent", 0, "redirects"},
	}
	for _, tt := range tests {
		t.Run(tt.behaviour, func(t *testing.T) {
			s := newSink(t, slack.Component(), fmt.Sprintf("webhook_url = %q", fs.URL(tt.behaviour)), sdktest.Direct)
			err := s.Write(alert("mass_password_reset", "alice"))
			checkOutcome(t, err, tt.want, tt.retryAfter, tt.reason)
		})
	}
}

func checkOutcome(t *testing.T, err error, want string, retryAfter time.Duration, reason string) {
	t.Helper()
	after, hasAfter := sdk.RetryAfter(err)
	switch want {
	case "ok":
		if err != nil {
			t.Fatalf("Write = %v, want nil", err)
		}
		return
	case "permanent":
		if !sdk.IsPermanent(err) {
			t.Fatalf("Write = %v, want a permanent error", err)
		}
	case "retry-after":
		if err == nil || sdk.IsPermanent(err) || !hasAfter || after != retryAfter {
			t.Fatalf("Write = %v (retry after %v, %v), want sdk.Retry after %v", err, after, hasAfter, retryAfter)
		}
	case "transient":
		if err == nil || sdk.IsPermanent(err) || hasAfter {
			t.Fatalf("Write = %v, want a plain transient error", err)
		}
	}
	if !strings.Contains(err.Error(), reason) {
		t.Errorf("error %q does not give the reason %q", err, reason)
	}
	if strings.Contains(err.Error(), "SECRET") {
		t.Errorf("error %q reveals the webhook URL's secret path", err)
	}
}

func TestUnreachableAndSlowWebhooksAreTransient(t *testing.T) {
	// A port nobody listens on.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String() + "/services/T000SECRET/B000SECRET/x"
	l.Close()

	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(slow.Close)
	t.Cleanup(func() { close(release) })

	for name, hcl := range map[string]string{
		"refused": fmt.Sprintf("webhook_url = %q", closed),
		"timeout": fmt.Sprintf("webhook_url = %q\ntimeout = \"300ms\"", slow.URL+"/services/T000SECRET/B000SECRET/x"),
	} {
		t.Run(name, func(t *testing.T) {
			s := newSink(t, slack.Component(), hcl, sdktest.Direct)
			err := s.Write(alert("bulk_deletion", ""))
			checkOutcome(t, err, "transient", 0, "")
			if name == "timeout" && !strings.Contains(err.Error(), "timed out") {
				t.Errorf("error %q does not say it timed out", err)
			}
		})
	}
}

// After a 429 the sink itself refuses to send before Retry-After has passed, whatever the
// caller does.
func TestRetryAfterIsHonouredBeforeAnyNewRequest(t *testing.T) {
	fs := newFakeSlack(t)
	s := newSink(t, slack.Component(), fmt.Sprintf("webhook_url = %q", fs.URL("rate_limited")), sdktest.GRPC)
	err := s.Write(alert("mass_password_reset", "alice"))
	checkOutcome(t, err, "retry-after", 3*time.Second, "rate_limited")
	for i := 0; i < 3; i++ {
		err = s.Write(alert("mass_password_reset", "alice"))
		after, ok := sdk.RetryAfter(err)
		if !ok || after <= 0 || after > 3*time.Second {
			t.Fatalf("write %d during the pause = %v (after %v), want sdk.Retry with the time left", i+2, err, after)
		}
	}
	if n := len(fs.Requests()); n != 1 {
		t.Fatalf("server got %d requests during the Retry-After pause, want 1", n)
	}
}

func TestLogTextCannotPingOrLink(t *testing.T) {
	fs := newFakeSlack(t)
	const panel = "https://panel.example/alerts/{fingerprint}"
	s := newSink(t, slack.Component(), fmt.Sprintf("webhook_url = %q\npanel_url = %q", fs.URL("ok"), panel), sdktest.GRPC)
	evil := alert("mass_password_reset", "<!channel>")
	evil.Origin = "<!everyone> & co"
	evil.Alert.Excerpt = []string{
		"INFO in auth: password_changed actor=<!channel> note=<http://evil|bank> <@U123> <!here>",
		"line with ``` fence and \x1b[31mcolour\x1b[0m and CR\rLF\n",
	}
	evil.Alert.Explanation = "Click <https://evil.example|your bank> now <!subteam^S1>"
	evil.Alert.SuppressedBy = "<!channel>"
	if err := s.Write(evil); err != nil {
		t.Fatalf("Write = %v", err)
	}
	reqs := fs.Requests()
	if len(reqs) != 1 || reqs[0].Status != 200 {
		t.Fatalf("requests = %+v, want one accepted", reqs)
	}
	body := string(reqs[0].Body)
	for _, raw := range []string{"<!channel>", "<http://evil|bank>", "<@U123>", "<!here>", "<!everyone>", "<https://evil.example", "<!subteam"} {
		if strings.Contains(body, raw) || strings.Contains(body, strings.ReplaceAll(raw, "<", `\u003c`)) {
			t.Errorf("payload contains %q unescaped", raw)
		}
	}
	for _, escaped := range []string{"&lt;!channel&gt;", "&lt;http://evil|bank&gt;", "&lt;@U123&gt;", "&lt;!everyone&gt; &amp; co"} {
		if !strings.Contains(body, escaped) {
			t.Errorf("payload lacks %q", escaped)
		}
	}
	texts := payloadTexts(reqs[0].Payload)
	for _, txt := range texts {
		if rest := stripOwnMarkup(txt); strings.ContainsAny(rest, "<>") {
			t.Errorf("text has a control sequence tda did not write: %q", txt)
		}
		if strings.ContainsAny(txt, "\r\x1b") {
			t.Errorf("text keeps a control character: %q", txt)
		}
	}
	if !strings.Contains(body, "<https://panel.example/alerts/3f9a1c0e5b7d2a64|Open in the control panel>") {
		t.Errorf("payload lacks the control panel link:\n%s", body)
	}
}

var ownMarkup = regexp.MustCompile(`<!date\^\d+\^\{date_short_pretty\} \{time_secs\}\|[^<>|]*>|<https://panel\.example/alerts/[^<>|]*\|Open in the control panel>`)

func stripOwnMarkup(s string) string { return ownMarkup.ReplaceAllString(s, "") }

// payloadTexts returns every string in a decoded JSON payload.
func payloadTexts(v any) []string {
	var out []string
	switch t := v.(type) {
	case string:
		out = append(out, t)
	case []any:
		for _, e := range t {
			out = append(out, payloadTexts(e)...)
		}
	case map[string]any:
		for _, e := range t {
			out = append(out, payloadTexts(e)...)
		}
	}
	return out
}

func TestOversizedBatchIsTruncatedNotRejected(t *testing.T) {
	fs := newFakeSlack(t)
	s := newSink(t, slack.Component(), fmt.Sprintf("webhook_url = %q\nexcerpt_lines = 100", fs.URL("ok")), sdktest.Direct)
	long := strings.Repeat("<x>&", 300)
	var batch []sdk.Event
	for i := 0; i < 40; i++ {
		a := alert(strings.Repeat("r", 200), fmt.Sprintf("key-%02d-%s", i, long))
		a.Alert.Excerpt = nil
		for j := 0; j < 100; j++ {
			a.Alert.Excerpt = append(a.Alert.Excerpt, long)
		}
		a.Alert.Explanation = strings.Repeat("explain <!channel> ", 400)
		batch = append(batch, a)
	}
	if err := s.Write(batch...); err != nil {
		t.Fatalf("Write = %v", err)
	}
	reqs := fs.Requests()
	if len(reqs) != 1 || reqs[0].Status != 200 {
		t.Fatalf("got %d requests (status %d), want one accepted", len(reqs), reqs[0].Status)
	}
	m := regexp.MustCompile(`… and (\d+) more alerts not shown`).FindStringSubmatch(string(reqs[0].Body))
	if m == nil {
		t.Fatalf("payload has no \"… and N more\" line")
	}
	var more int
	fmt.Sscan(m[1], &more)
	shown := strings.Count(string(reqs[0].Body), "Fingerprint `")
	if shown+more != 40 || shown == 0 {
		t.Fatalf("%d shown + %d more, want 40 in all", shown, more)
	}

	// One alert whose every field is huge still makes one valid message.
	huge := alert(strings.Repeat("rule<", 100), strings.Repeat("k&", 3000))
	huge.Alert.Excerpt = []string{strings.Repeat("y", 10000)}
	huge.Origin = strings.Repeat("o", 5000)
	if err := s.Write(huge); err != nil {
		t.Fatalf("Write huge = %v", err)
	}
}

// The pacer keeps one message per second per webhook, also across sink instances of one
// plugin process posting to the same webhook concurrently.
func TestOneMessagePerSecondPerWebhook(t *testing.T) {
	fs := newFakeSlack(t)
	comp := slack.Component()
	hcl := fmt.Sprintf("webhook_url = %q", fs.URL("ok"))
	sinks := []*sdktest.Sink{newSink(t, comp, hcl, sdktest.GRPC), newSink(t, comp, hcl, sdktest.GRPC)}
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for _, s := range sinks {
		wg.Add(1)
		go func(s *sdktest.Sink) {
			defer wg.Done()
			for i := 0; i < 2; i++ {
				errs <- s.Write(alert("auth_failures", fmt.Sprint(i)))
			}
		}(s)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("Write = %v", err)
		}
	}
	reqs := fs.Requests()
	if len(reqs) != 4 {
		t.Fatalf("server got %d requests, want 4", len(reqs))
	}
	for i := 1; i < len(reqs); i++ {
		// The interval runs from the end of one request to the start of the next, so it
		// holds between arrivals whatever the scheduling: no allowance for noise.
		if gap := reqs[i].At.Sub(reqs[i-1].At); gap < time.Second {
			t.Errorf("messages %d and %d arrived %v apart, want at least 1s", i, i+1, gap)
		}
	}
}

// A message that is slow to arrive (a new connection, a busy machine) does not bring the next
// one closer to it than the interval: Slack counts arrivals.
func TestIntervalHoldsBetweenArrivalsWhenAMessageIsSlow(t *testing.T) {
	for _, delay := range []time.Duration{0, 300 * time.Millisecond, 900 * time.Millisecond} {
		t.Run(delay.String(), func(t *testing.T) {
			var mu sync.Mutex
			var arrivals []time.Time
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				first := len(arrivals) == 0
				mu.Unlock()
				if first {
					time.Sleep(delay) // the first message is in transit this long
				}
				mu.Lock()
				arrivals = append(arrivals, time.Now())
				mu.Unlock()
				_, _ = io.Copy(io.Discard, r.Body)
				_, _ = io.WriteString(w, "ok")
			}))
			t.Cleanup(srv.Close)
			s := newSink(t, slack.Component(), fmt.Sprintf("webhook_url = %q", srv.URL+"/services/T/B/x"), sdktest.Direct)
			for i := 0; i < 3; i++ {
				if err := s.Write(alert("auth_failures", fmt.Sprint(i))); err != nil {
					t.Fatalf("Write %d = %v", i, err)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if len(arrivals) != 3 {
				t.Fatalf("server got %d messages, want 3", len(arrivals))
			}
			for i := 1; i < len(arrivals); i++ {
				if gap := arrivals[i].Sub(arrivals[i-1]); gap < time.Second {
					t.Errorf("messages %d and %d arrived %v apart, want at least 1s", i, i+1, gap)
				}
			}
		})
	}
}

// A Write whose context ends before the next slot does not send late: it asks to be retried.
func TestPacingRespectsTheCallersDeadline(t *testing.T) {
	fs := newFakeSlack(t)
	comp := slack.Component()
	inst, diags := comp.NewInstance(sdktest.Config(t, comp, fmt.Sprintf("webhook_url = %q", fs.URL("ok"))), sdk.Resources{})
	if diags.HasErrors() {
		t.Fatal(diags.Err())
	}
	s := inst.Sink
	if err := s.Write(context.Background(), sdk.Batch{ID: 1, Events: []sdk.Event{alert("r", "1")}}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := s.Write(ctx, sdk.Batch{ID: 2, Events: []sdk.Event{alert("r", "2")}})
	if after, ok := sdk.RetryAfter(err); !ok || after <= 0 || after > time.Second {
		t.Fatalf("Write with a short deadline = %v, want sdk.Retry within a second", err)
	}
	if n := len(fs.Requests()); n != 1 {
		t.Fatalf("server got %d requests, want 1", n)
	}
}

func TestBatchWithoutAlertsSendsNothing(t *testing.T) {
	fs := newFakeSlack(t)
	s := newSink(t, slack.Component(), fmt.Sprintf("webhook_url = %q", fs.URL("ok")), sdktest.Direct)
	if err := s.Write(sdk.Event{Kind: sdk.KindLog, Line: []byte("hello")}); err != nil {
		t.Fatal(err)
	}
	if n := len(fs.Requests()); n != 0 {
		t.Fatalf("server got %d requests for a batch without alerts", n)
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct{ name, src, want string }{
		{"missing", ``, "Missing required argument"},
		{"plain http", `webhook_url = "http://hooks.example.com/services/T/B/SECRETTOKEN"`, "1:15: Invalid webhook_url: the URL must use https://"},
		{"not a url", `webhook_url = "hooks.slack.com/services/T/B/SECRETTOKEN"`, "must start with https://"},
		{"interval", "webhook_url = \"https://hooks.slack.com/x\"\nmessage_interval = \"200ms\"", "2:20: Invalid message_interval: message_interval must be at least 1s"},
		{"panel", "webhook_url = \"https://hooks.slack.com/x\"\npanel_url = \"tda.local\"", "2:13: Invalid panel_url: panel_url must be an http:// or https:// URL"},
		{"excerpt", "webhook_url = \"https://hooks.slack.com/x\"\nexcerpt_lines = 0", "2:17: Invalid excerpt_lines: excerpt_lines must be between 1 and 100"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			diags := strings.Join(sdktest.Validate(t, slack.Component(), tt.src), "\n")
			if !strings.Contains(diags, tt.want) {
				t.Fatalf("diagnostics %q do not contain %q", diags, tt.want)
			}
			if strings.Contains(diags, "SECRETTOKEN") {
				t.Fatalf("diagnostics %q reveal the webhook URL", diags)
			}
		})
	}
	if d := sdktest.Validate(t, slack.Component(), `webhook_url = "https://hooks.slack.com/services/T/B/x"`); len(d) != 0 {
		t.Fatalf("valid config reported %v", d)
	}
}

func TestComponentDeclaresAlertsAndDurableQueue(t *testing.T) {
	c := slack.Component()
	if len(c.Accepts) != 1 || c.Accepts[0] != sdk.KindAlert || c.Queue != sdk.QueueDurable {
		t.Fatalf("accepts %v queue %q, want [alert] durable", c.Accepts, c.Queue)
	}
	f, _ := c.Spec.FieldByName("webhook_url")
	if !f.Sensitive {
		t.Fatal("webhook_url is not marked sensitive")
	}
}

// Golden messages: what an operator sees for each kind of alert record.
func TestMessagesMatchGolden(t *testing.T) {
	reminder := alert("mass_password_reset", "alice")
	reminder.Alert.Realert, reminder.Alert.Count = 2, 31
	resolved := alert("bulk_deletion", "")
	resolved.Alert.State, resolved.Alert.Severity = sdk.StateResolved, sdk.SeverityMedium
	suppressed := alert("bulk_user_creation", "")
	suppressed.Alert.State = sdk.StateSuppressed
	suppressed.Alert.SuppressedBy, suppressed.Alert.OverrideReason = "carol", "partner bulk import"
	low := alert("auth_failures", "203.0.113.9")
	low.Alert.Severity = sdk.SeverityLow
	fleet := alert("mass_password_reset", "")
	fleet.Alert.Count = 12
	fleet.SetField(slack.FieldFleetSummary, "12 resets across 3 replicas (web-1: 4, web-2: 4, web-3: 4)")
	f := slack.Format{PanelURL: "https://tda.example.com/alerts/{fingerprint}", Mention: "<!here>",
		MentionSeverities: []string{"HIGH"}, ExcerptLines: 10}
	tests := map[string][]sdk.Event{
		"firing":     {alert("mass_password_reset", "alice")},
		"reminder":   {reminder},
		"resolved":   {resolved},
		"suppressed": {suppressed},
		"batch":      {low, alert("mass_password_reset", "alice"), resolved},
		"fleet":      {fleet},
	}
	for name, events := range tests {
		t.Run(name, func(t *testing.T) {
			body, err := slack.Payload(alerttext.Alerts(events), f)
			if err != nil {
				t.Fatal(err)
			}
			var payload map[string]any
			if p := checkSlackPayload("application/json", body, &payload); p != "" {
				t.Fatalf("payload breaks Slack's limits: %s", p)
			}
			var pretty bytes.Buffer
			if err := json.Indent(&pretty, body, "", "  "); err != nil {
				t.Fatal(err)
			}
			golden(t, filepath.Join("testdata", name+".golden.json"), pretty.Bytes())
		})
	}
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if string(want) != string(got) {
		t.Fatalf("%s differs from the message built now:\n%s", path, got)
	}
}

func TestAdviceCoversDocumentedRefusals(t *testing.T) {
	for _, reason := range []string{"invalid_payload", "no_service", "channel_not_found", "channel_is_archived",
		"invalid_token", "action_prohibited", "user_not_found"} {
		if a := slack.Advice(400, reason); a == slack.Advice(400, "something else") {
			t.Errorf("no specific advice for %s", reason)
		}
	}
}

// The agent puts at most MaxAlertsPerMessage alerts in a batch: that many ordinary alerts,
// with a mention, all show in full.
func TestFullBatchShowsEveryAlert(t *testing.T) {
	var events []sdk.Event
	for i := 0; i < slack.MaxAlertsPerMessage; i++ {
		events = append(events, alert("auth_failures", fmt.Sprintf("203.0.113.%d", i)))
	}
	body, err := slack.Payload(alerttext.Alerts(events), slack.Format{Mention: "<!here>",
		MentionSeverities: []string{"HIGH"}, PanelURL: "https://tda.example.com/a/{fingerprint}"})
	if err != nil {
		t.Fatal(err)
	}
	var payload map[string]any
	if p := checkSlackPayload("application/json", body, &payload); p != "" {
		t.Fatalf("payload breaks Slack's limits: %s", p)
	}
	if strings.Contains(string(body), "more alert") {
		t.Fatalf("a full batch was truncated")
	}
	if n := strings.Count(string(body), "Fingerprint `"); n != slack.MaxAlertsPerMessage {
		t.Fatalf("%d alerts shown, want %d", n, slack.MaxAlertsPerMessage)
	}
	if c := slack.Component(); c.MaxBatch != slack.MaxAlertsPerMessage {
		t.Fatalf("component caps batches at %d", c.MaxBatch)
	}
}

// TestRefusalSaysWhatAndWhatToDo: the error of a permanent refusal, which the agent shows in
// its state and dead letters, names what happened, Slack's answer and the fix.
func TestRefusalSaysWhatAndWhatToDo(t *testing.T) {
	fs := newFakeSlack(t)
	tests := []struct{ behaviour, want string }{
		{"no_service", "webhook revoked (404 no_service): fix webhook_url"},
		{"invalid_token", "webhook token revoked (403 invalid_token): fix webhook_url"},
		{"channel_is_archived", "channel archived (410 channel_is_archived): unarchive the channel or fix webhook_url"},
		{"channel_not_found", "channel deleted (404 channel_not_found): fix webhook_url"},
		{"invalid_payload", "message rejected as malformed (400 invalid_payload): report a bug in tda with the agent log"},
	}
	for _, tt := range tests {
		t.Run(tt.behaviour, func(t *testing.T) {
			s := newSink(t, slack.Component(), fmt.Sprintf("webhook_url = %q", fs.URL(tt.behaviour)), sdktest.GRPC)
			err := s.Write(alert("mass_password_reset", "alice"))
			if !sdk.IsPermanent(err) {
				t.Fatalf("Write = %v, want a permanent error", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q, want %q", err, tt.want)
			}
		})
	}
}
