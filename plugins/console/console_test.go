package console_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tda-dev/tda/plugins/console"
	"github.com/tda-dev/tda/sdk"
	"github.com/tda-dev/tda/sdk/sdktest"
)

func alert(state string) sdk.Event {
	return sdk.Event{Time: time.Date(2026, 11, 29, 10, 15, 30, 0, time.UTC), Kind: sdk.KindAlert,
		Source: "file.examples", Origin: "flask.log", Alert: &sdk.Alert{Rule: "auth_failures", Severity: "MEDIUM",
			State: state, Key: "203.0.113.9", Count: 6, Threshold: 5, Window: time.Minute,
			FirstSeen: time.Date(2026, 11, 29, 10, 15, 0, 0, time.UTC), LastSeen: time.Date(2026, 11, 29, 10, 15, 30, 0, time.UTC),
			Excerpt: []string{"one", "two", "three", "four \x1b[2J\x1b]0;pwned\x07"}, Fingerprint: "fp",
			SuppressedBy: "carol", OverrideReason: "import", Explanation: "Repeated failures.\nBlock the IP."}}
}

func TestTextRendering(t *testing.T) {
	tests := []struct {
		name  string
		event sdk.Event
		want  []string
		not   []string
	}{
		{"firing", alert("firing"), []string{
			"FIRING MEDIUM auth_failures: 6 in 1m (threshold 5) key 203.0.113.9",
			"first 2026-11-29 10:15:00Z, last 2026-11-29 10:15:30Z, flask.log from file.examples",
			"  Repeated failures.\n  Block the IP.",
			"  > two\n  > three\n  > four ·[2J·]0;pwned·",
		}, []string{"> one", "\x1b"}},
		{"suppressed", alert("suppressed"), []string{"SUPPRESSED", "suppressed by override of carol: import"}, nil},
		{"resolved", alert("resolved"), []string{"RESOLVED"}, []string{"Block the IP"}},
		{"audit", sdk.Event{Time: time.Date(2026, 11, 29, 10, 50, 0, 0, time.UTC), Kind: sdk.KindAudit,
			Fields: map[string]string{"event": "override_enabled", "actor": "carol"}},
			[]string{"2026-11-29 10:50:00Z audit     actor=carol event=override_enabled"}, nil},
		{"incident update", sdk.IncidentUpdate{Fingerprint: "fp", Rule: "mass_password_reset", Count: 15,
			Entities: map[string][]string{"user_id": {"7", "8", "9"}, "ip": {"203.0.113.9\x1b[2J"}}}.
			Event(time.Date(2026, 11, 29, 10, 50, 0, 0, time.UTC), "file.app", "app.log"),
			[]string{"2026-11-29 10:50:00Z update    mass_password_reset: 15 events so far, 4 new entities\n"},
			[]string{"203.0.113.9", "\x1b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			s := console.NewWriter(&out, false)
			if err := s.Write(context.Background(), sdk.Batch{Events: []sdk.Event{tt.event}}); err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
			for _, n := range tt.not {
				if strings.Contains(out.String(), n) {
					t.Errorf("output has %q:\n%s", n, out.String())
				}
			}
		})
	}
}

func TestConfig(t *testing.T) {
	if d := sdktest.Validate(t, console.Component(), `format = "xml"`); len(d) != 1 ||
		!strings.Contains(d[0], `format must be one of "text" or "json"`) {
		t.Fatalf("diagnostics %v", d)
	}
	if d := sdktest.Validate(t, console.Component(), `excerpt_lines = -1`); len(d) != 1 {
		t.Fatalf("diagnostics %v", d)
	}
}
