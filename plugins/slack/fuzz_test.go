package slack_test

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/tda-dev/tda/plugins/internal/alerttext"
	"github.com/tda-dev/tda/plugins/slack"
	"github.com/tda-dev/tda/sdk"
)

// FuzzPayload feeds arbitrary log-derived text into every alert field: the message must stay
// valid for Slack and carry no control sequence that tda did not write.
func FuzzPayload(f *testing.F) {
	f.Add("mass_password_reset", "alice", "<!channel> <http://evil|bank>", "x & y > z", "flask_web_1", 3)
	f.Add("r", "", "```\x00\r\n\x1b[31m", "\u202egnp.exe", "\xff\xfe", 1)
	f.Add(strings.Repeat("<", 200), strings.Repeat("&", 2000), strings.Repeat("é", 2000), "", "", 60)
	f.Fuzz(func(t *testing.T, rule, key, line, explanation, origin string, n int) {
		n = n%60 + 1
		if n < 1 {
			n = -n + 1
		}
		events := make([]sdk.Event, n)
		for i := range events {
			events[i] = sdk.Event{Kind: sdk.KindAlert, Origin: origin, Source: "file.x", Alert: &sdk.Alert{
				Rule: rule, Severity: []string{"HIGH", "MEDIUM", "LOW", key}[i%4], State: sdk.StateFiring,
				Key: key, Count: int64(i), Window: time.Minute, Excerpt: []string{line, line + line},
				Fingerprint: key + rule, Explanation: explanation, FirstSeen: time.Unix(int64(i), 0),
				SuppressedBy: key, OverrideReason: line, Realert: i % 3,
			}}
		}
		body, err := slack.Payload(alerttext.Alerts(events), slack.Format{
			PanelURL: "https://panel.example/alerts/{fingerprint}", ExcerptLines: 10})
		if err != nil {
			t.Fatal(err)
		}
		if !utf8.Valid(body) {
			t.Fatal("payload is not UTF-8")
		}
		var payload map[string]any
		if p := checkSlackPayload("application/json", body, &payload); p != "" {
			t.Fatalf("payload breaks Slack's limits: %s", p)
		}
		for _, txt := range payloadTexts(payload) {
			if rest := stripOwnMarkup(txt); strings.ContainsAny(rest, "<>") {
				t.Fatalf("text has a control sequence tda did not write: %q", txt)
			}
			for _, r := range txt {
				if r < 0x20 && r != '\n' && r != '\t' {
					t.Fatalf("text keeps control character %U: %q", r, txt)
				}
			}
		}
	})
}
