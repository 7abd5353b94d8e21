// Package alerttext words alerts for humans: the titles, status phrases, counts and times that
// the Slack and email notifiers show, and the cleaning that makes log-derived text safe to
// display (valid UTF-8, no control characters, no terminal colour codes, no bidi overrides).
// Escaping for a particular medium (Slack mrkdwn, HTML, mail headers) stays with each notifier.
package alerttext

import (
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tda-dev/tda/sdk"
)

// Alerts returns the alert events of a batch, most severe first and otherwise in batch order.
// Events of other kinds are not notifications and are left out.
func Alerts(events []sdk.Event) []*sdk.Event {
	out := make([]*sdk.Event, 0, len(events))
	for i := range events {
		if events[i].Kind == sdk.KindAlert && events[i].Alert != nil {
			out = append(out, &events[i])
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		return SeverityRank(out[i].Alert.Severity) < SeverityRank(out[j].Alert.Severity)
	})
	return out
}

// SeverityRank orders severities: HIGH 0, MEDIUM 1, LOW 2, anything else 3.
func SeverityRank(s string) int {
	switch strings.ToUpper(s) {
	case sdk.SeverityHigh:
		return 0
	case sdk.SeverityMedium:
		return 1
	case sdk.SeverityLow:
		return 2
	}
	return 3
}

// Severity returns the alert's severity for display ("UNKNOWN" when empty).
func Severity(a *sdk.Alert) string {
	if s := strings.ToUpper(Clean(a.Severity)); s != "" {
		return s
	}
	return "UNKNOWN"
}

// Rule returns the alert's rule for display ("unnamed rule" when empty).
func Rule(a *sdk.Alert) string {
	if r := Clean(a.Rule); r != "" {
		return r
	}
	return "unnamed rule"
}

// Status says where the incident stands: "firing", "still firing, count now N" for a
// reminder, "resolved" or "suppressed".
func Status(a *sdk.Alert) string {
	switch a.State {
	case sdk.StateResolved:
		return "resolved"
	case sdk.StateSuppressed:
		return "suppressed"
	case sdk.StateFiring, "":
		if a.Realert > 0 {
			return fmt.Sprintf("still firing, count now %d", a.Count)
		}
		return "firing"
	}
	return Clean(a.State)
}

// Title is the one-line summary: "HIGH mass_password_reset", preceded by RESOLVED or
// SUPPRESSED when the record is not a firing alert, and followed by the key when there is one.
func Title(a *sdk.Alert) string {
	var b strings.Builder
	switch a.State {
	case sdk.StateResolved:
		b.WriteString("RESOLVED ")
	case sdk.StateSuppressed:
		b.WriteString("SUPPRESSED ")
	}
	b.WriteString(Severity(a))
	b.WriteByte(' ')
	b.WriteString(Rule(a))
	if k := Clean(a.Key); k != "" {
		b.WriteString(" (")
		b.WriteString(k)
		b.WriteByte(')')
	}
	if a.State != sdk.StateResolved && a.State != sdk.StateSuppressed && a.Realert > 0 {
		b.WriteString(": ")
		b.WriteString(Status(a))
	}
	return b.String()
}

// Count is "14 (threshold 10)".
func Count(a *sdk.Alert) string {
	if a.Threshold > 0 {
		return fmt.Sprintf("%d (threshold %d)", a.Count, a.Threshold)
	}
	return strconv.FormatInt(a.Count, 10)
}

// Window is the rule's window ("1m") or "none".
func Window(a *sdk.Alert) string {
	if a.Window <= 0 {
		return "none"
	}
	return sdk.FormatDuration(a.Window)
}

// Origin is where the lines came from: "flask_web_1 via docker.apps".
func Origin(e *sdk.Event) string {
	o, s := Clean(e.Origin), Clean(e.Source)
	switch {
	case o != "" && s != "":
		return o + " via " + s
	case o != "":
		return o
	case s != "":
		return s
	}
	return "unknown"
}

// Suppression says who suppressed the alert and why, or "" when it is not suppressed.
func Suppression(a *sdk.Alert) string {
	if a.State != sdk.StateSuppressed && a.SuppressedBy == "" && a.OverrideReason == "" {
		return ""
	}
	who := Clean(a.SuppressedBy)
	if who == "" {
		who = "an override"
	}
	if r := Clean(a.OverrideReason); r != "" {
		return "suppressed by " + who + ": " + r
	}
	return "suppressed by " + who
}

// Time formats t as "2026-11-29 10:15:29 UTC", or "unknown" for the zero time.
func Time(t time.Time) string {
	if t.IsZero() {
		return "unknown"
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

// Tally counts alerts for a summary: firing ones by severity, most severe first, then the
// suppressed and the resolved ones: "2 HIGH, 1 LOW, 1 suppressed, 1 resolved".
func Tally(alerts []*sdk.Event) string {
	counts := map[string]int{}
	var order []string
	var suppressed, resolved int
	for _, e := range alerts {
		switch e.Alert.State {
		case sdk.StateSuppressed:
			suppressed++
			continue
		case sdk.StateResolved:
			resolved++
			continue
		}
		s := Severity(e.Alert)
		if counts[s] == 0 {
			order = append(order, s)
		}
		counts[s]++
	}
	sort.SliceStable(order, func(i, j int) bool { return SeverityRank(order[i]) < SeverityRank(order[j]) })
	parts := make([]string, 0, len(order)+2)
	for _, s := range order {
		parts = append(parts, fmt.Sprintf("%d %s", counts[s], s))
	}
	if suppressed > 0 {
		parts = append(parts, fmt.Sprintf("%d suppressed", suppressed))
	}
	if resolved > 0 {
		parts = append(parts, fmt.Sprintf("%d resolved", resolved))
	}
	return strings.Join(parts, ", ")
}

// PanelLink returns the control panel link for an alert: panel with "{fingerprint}" replaced
// by the path-escaped fingerprint, or panel itself when it has no placeholder; "" when panel
// is "".
func PanelLink(panel string, a *sdk.Alert) string {
	if panel == "" {
		return ""
	}
	return strings.ReplaceAll(panel, "{fingerprint}", url.PathEscape(a.Fingerprint))
}

// CheckPanelURL reports what is wrong with a configured control panel URL.
func CheckPanelURL(panel string) error {
	u, err := url.Parse(strings.ReplaceAll(panel, "{fingerprint}", "x"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || strings.ContainsAny(panel, "|<> \t\r\n") {
		return fmt.Errorf("panel_url must be an http:// or https:// URL, e.g. \"https://tda.example.com/alerts/{fingerprint}\"")
	}
	return nil
}

// Clean makes log-derived text safe to display on one line: invalid UTF-8 becomes U+FFFD,
// terminal colour sequences (ESC [ ... letter) are dropped, other control characters become
// their visible Unicode pictures (CR is ␍, LF is ␊), and bidirectional overrides, which can
// make text read differently from what it is, become U+FFFD. Tabs are kept.
func Clean(s string) string {
	if isClean(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); {
		c := s[i]
		if c == 0x1b && i+1 < len(s) && s[i+1] == '[' {
			j := i + 2
			for j < len(s) && (s[j] >= 0x30 && s[j] <= 0x3f || s[j] >= 0x20 && s[j] <= 0x2f) {
				j++
			}
			if j < len(s) && s[j] >= 0x40 && s[j] <= 0x7e {
				i = j + 1
				continue
			}
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		switch {
		case r == utf8.RuneError && size == 1:
			b.WriteRune(utf8.RuneError)
		case r == '\t':
			b.WriteByte('\t')
		case r < 0x20:
			b.WriteRune(0x2400 + r)
		case r == 0x7f:
			b.WriteRune('\u2421')
		case r >= 0x80 && r <= 0x9f, isBidiControl(r):
			b.WriteRune(utf8.RuneError)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func isClean(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 && c != '\t' || c == 0x7f || c >= utf8.RuneSelf {
			if c >= utf8.RuneSelf {
				return cleanUnicode(s[i:])
			}
			return false
		}
	}
	return true
}

func cleanUnicode(s string) bool {
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 || r < 0x20 && r != '\t' || r >= 0x7f && r <= 0x9f || isBidiControl(r) {
			return false
		}
		i += size
	}
	return true
}

func isBidiControl(r rune) bool {
	return r >= 0x202a && r <= 0x202e || r >= 0x2066 && r <= 0x2069 || r == 0x200e || r == 0x200f || r == 0x061c
}

// Truncate shortens s to at most max bytes at a rune boundary, ending with "…" when it cut.
func Truncate(s string, max int) string {
	if len(s) <= max {
		return s
	}
	const ellipsis = "…"
	if max < len(ellipsis) {
		return ""
	}
	cut := max - len(ellipsis)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + ellipsis
}
