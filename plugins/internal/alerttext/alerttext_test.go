package alerttext

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/tda-dev/tda/sdk"
)

func TestClean(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain text", "plain text"},
		{"a\tb", "a\tb"},
		{"CR\rLF\n", "CR␍LF␊"},
		{"\x1b[31m\x1b[1mPOST /login\x1b[0m", "POST /login"},
		{"bell\x07 del\x7f", "bell␇ del␡"},
		{"bad \xff utf8", "bad \uFFFD utf8"},
		{"evil\u202egnp.exe", "evil\uFFFDgnp.exe"},
		{"c1\u0085", "c1\uFFFD"},
		{"é ünïcode 日本", "é ünïcode 日本"},
		{"lone ESC \x1b end", "lone ESC ␛ end"},
	}
	for _, tt := range tests {
		if got := Clean(tt.in); got != tt.want {
			t.Errorf("Clean(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func FuzzClean(f *testing.F) {
	for _, s := range []string{"", "a\r\nb", "\x1b[", "\x1b[31", "\xff\xfe", "\u202e", "\t"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c := Clean(s)
		if !utf8.ValidString(c) {
			t.Fatalf("Clean(%q) = %q is not UTF-8", s, c)
		}
		for _, r := range c {
			if r < 0x20 && r != '\t' || r == 0x7f || r >= 0x80 && r <= 0x9f || isBidiControl(r) {
				t.Fatalf("Clean(%q) = %q keeps %U", s, c, r)
			}
		}
		if Clean(c) != c {
			t.Fatalf("Clean is not idempotent on %q", s)
		}
		for _, n := range []int{0, 1, 3, 4, 10} {
			tr := Truncate(c, n)
			if len(tr) > n || !utf8.ValidString(tr) {
				t.Fatalf("Truncate(%q, %d) = %q", c, n, tr)
			}
		}
	})
}

func TestTitlesAndStatus(t *testing.T) {
	a := &sdk.Alert{Rule: "mass_password_reset", Severity: "HIGH", State: sdk.StateFiring, Key: "alice", Count: 14, Threshold: 10}
	if got := Title(a); got != "HIGH mass_password_reset (alice)" {
		t.Errorf("Title = %q", got)
	}
	a.Realert, a.Count = 2, 31
	if got := Title(a); got != "HIGH mass_password_reset (alice): still firing, count now 31" {
		t.Errorf("reminder Title = %q", got)
	}
	a.State = sdk.StateResolved
	if got, st := Title(a), Status(a); got != "RESOLVED HIGH mass_password_reset (alice)" || st != "resolved" {
		t.Errorf("resolved Title = %q, Status = %q", got, st)
	}
	s := &sdk.Alert{Rule: "bulk_user_creation", Severity: "medium", State: sdk.StateSuppressed, SuppressedBy: "carol", OverrideReason: "import"}
	if got := Title(s); got != "SUPPRESSED MEDIUM bulk_user_creation" {
		t.Errorf("suppressed Title = %q", got)
	}
	if got := Suppression(s); got != "suppressed by carol: import" {
		t.Errorf("Suppression = %q", got)
	}
	if got := Title(&sdk.Alert{}); got != "UNKNOWN unnamed rule" {
		t.Errorf("empty Title = %q", got)
	}
	if got := Time(time.Time{}); got != "unknown" {
		t.Errorf("Time(zero) = %q", got)
	}
}

func TestAlertsOrderAndTally(t *testing.T) {
	ev := func(sev, state string) sdk.Event {
		return sdk.Event{Kind: sdk.KindAlert, Alert: &sdk.Alert{Severity: sev, State: state, Rule: sev + state}}
	}
	events := []sdk.Event{ev("LOW", "firing"), {Kind: sdk.KindLog}, ev("HIGH", "resolved"), ev("MEDIUM", "firing"), ev("HIGH", "firing"), ev("HIGH", "suppressed")}
	got := Alerts(events)
	var rules []string
	for _, e := range got {
		rules = append(rules, e.Alert.Rule)
	}
	if strings.Join(rules, ",") != "HIGHresolved,HIGHfiring,HIGHsuppressed,MEDIUMfiring,LOWfiring" {
		t.Errorf("order %v", rules)
	}
	if tally := Tally(got); tally != "1 HIGH, 1 MEDIUM, 1 LOW, 1 suppressed, 1 resolved" {
		t.Errorf("Tally = %q", tally)
	}
}

func TestPanelLink(t *testing.T) {
	a := &sdk.Alert{Fingerprint: "ab/c d"}
	if got := PanelLink("https://p.example/alerts/{fingerprint}", a); got != "https://p.example/alerts/ab%2Fc%20d" {
		t.Errorf("PanelLink = %q", got)
	}
	if got := PanelLink("https://p.example/", a); got != "https://p.example/" {
		t.Errorf("PanelLink without placeholder = %q", got)
	}
	for _, bad := range []string{"p.example", "javascript:alert(1)", "https://p.example/a|b", "ftp://x/"} {
		if CheckPanelURL(bad) == nil {
			t.Errorf("CheckPanelURL(%q) accepted it", bad)
		}
	}
}
