// Package rules is the detection engine: threshold rules over exact sliding windows in event
// time, per rule and key, with one incident per burst (firing or suppressed, reminders after
// `realert`, a resolved record when the burst has drained), bounded memory per rule and state
// that can be snapshotted and restored byte for byte.
package rules

import (
	"fmt"
	"strings"
	"time"

	"github.com/tda-dev/tda/plugins/detect/cond"
	"github.com/tda-dev/tda/sdk"
)

// Rule is one configured detection rule.
type Rule struct {
	Name string
	// Match lists the event types the rule counts.
	Match []string
	// Where, when set, must hold for an event to count.
	Where *cond.Expr
	// Unless, when it holds, keeps an event from counting (e.g. admin actors).
	Unless *cond.Expr
	// Threshold: the rule fires when the count in the window is more than this.
	Threshold int64
	Window    time.Duration
	// GroupBy lists the fields whose values make the key (empty: one key for everything).
	GroupBy  []string
	Severity string
	// Realert is the interval of reminders while an incident stays above the threshold
	// (0: none).
	Realert time.Duration
	// Overridable rules are recorded as suppressed while override mode is active.
	Overridable bool
	// AcrossOrigins counts the lines of every origin in one window per key, judged in the
	// newest time over all origins (one stream), instead of one window per key and origin in
	// that origin's own time. It sees a burst spread over the replicas of an app, at a price:
	// its incidents depend on how the origins' lines interleave (a lagging origin's lines
	// arrive "late" and may fall outside the lateness allowance).
	AcrossOrigins bool
	// MaxKeys bounds the keys tracked; the least recently seen is evicted beyond it.
	MaxKeys int
	// Excerpt is how many lines an alert quotes.
	Excerpt int
	// Exemptions keep events from counting: maintenance windows, and later approvals.
	Exemptions []Exemption
	// Explanation replaces the built-in explanation when set.
	Explanation string
	// RequireApproval makes an event count unless an approved migration request matches it
	// (announced by the agent), whatever the time: the rule reports unapproved migrations.
	// It takes no maintenance window (a migration outside the window is another rule's
	// business), so that every alert has one true reason.
	RequireApproval bool
}

// MaxWindow bounds a rule's window (and the lateness allowance): event times are at most
// eventtime.MaxTime, and a time plus a window must stay far inside int64 nanoseconds.
const MaxWindow = 366 * 24 * time.Hour

// Check validates a rule and fills defaults.
func (r *Rule) Check() error {
	if len(r.Match) == 0 {
		return fmt.Errorf("rule %q matches no event type", r.Name)
	}
	if r.Window <= 0 {
		return fmt.Errorf("rule %q: window must be positive", r.Name)
	}
	if r.Window > MaxWindow {
		return fmt.Errorf("rule %q: window must be at most %s", r.Name, sdk.FormatDuration(MaxWindow))
	}
	if r.Threshold < 0 {
		return fmt.Errorf("rule %q: threshold must not be negative", r.Name)
	}
	if r.MaxKeys <= 0 {
		r.MaxKeys = 100000
	}
	if r.Excerpt < 0 {
		r.Excerpt = 0
	}
	if r.Severity == "" {
		r.Severity = sdk.SeverityMedium
	}
	if r.RequireApproval && len(r.Exemptions) > 0 {
		return fmt.Errorf("rule %q: require_approval takes no maintenance_window; write one rule for migrations "+
			"outside the window and another with require_approval for unapproved ones", r.Name)
	}
	return nil
}

// Exemption keeps an event from counting for a rule. Maintenance windows are one kind; an
// approval lookup (a migration that matches an approved request) is another.
type Exemption interface {
	// Exempts reports whether the event is allowed, with a short reason.
	Exempts(ev *sdk.Event) (bool, string)
	// Describe says in words what is allowed (for explanations).
	Describe() string
}

// MaintenanceWindow allows events on given weekdays between two clock times in a time zone.
// A window whose end is not after its start runs past midnight into the next day. It is
// sdk.MaintenanceWindow, the form in which the agent learns the windows (rules.describe), so
// that the agent and the engine judge a time by the same code.
type MaintenanceWindow sdk.MaintenanceWindow

// ParseDays parses weekday names ("sun", "Monday", ...); none means every day.
func ParseDays(names []string) ([7]bool, error) { return sdk.ParseWeekdays(names) }

// ParseClock parses "HH:MM" (or "24:00") into a duration since midnight.
func ParseClock(s string) (time.Duration, error) { return sdk.ParseTimeOfDay(s) }

// Window returns the window in the sdk's form.
func (w *MaintenanceWindow) Window() *sdk.MaintenanceWindow { return (*sdk.MaintenanceWindow)(w) }

// Contains reports whether t falls in the window.
func (w *MaintenanceWindow) Contains(t time.Time) bool { return w.Window().Contains(t) }

// Exempts implements Exemption.
func (w *MaintenanceWindow) Exempts(ev *sdk.Event) (bool, string) {
	if w.Contains(ev.Time) {
		return true, "inside the maintenance window " + w.Describe()
	}
	return false, ""
}

// Describe implements Exemption.
func (w *MaintenanceWindow) Describe() string { return w.Window().Describe() }

// keyOf builds the rule's key for an event.
func (r *Rule) keyOf(ev *sdk.Event) string {
	switch len(r.GroupBy) {
	case 0:
		return ""
	case 1:
		return fieldOf(ev, r.GroupBy[0])
	}
	parts := make([]string, len(r.GroupBy))
	for i, f := range r.GroupBy {
		parts[i] = fieldOf(ev, f)
	}
	return strings.Join(parts, "|")
}

func fieldOf(ev *sdk.Event, name string) string {
	switch name {
	case "origin":
		return ev.Origin
	case "source":
		return ev.Source
	}
	if v := ev.Field(name); v != "" {
		return v
	}
	return "-"
}

// Lookup returns the condition lookup of an event.
func Lookup(ev *sdk.Event) cond.Lookup {
	return func(name string) string {
		switch name {
		case "origin":
			return ev.Origin
		case "source":
			return ev.Source
		}
		return ev.Field(name)
	}
}

// Counts reports whether an event counts for the rule (conditions, then the approval lookup
// or the exemptions); the reason says why not. With RequireApproval and no approvals known,
// every event counts.
func (r *Rule) Counts(ev *sdk.Event) (bool, string) { return r.counts(ev, nil) }

func (r *Rule) counts(ev *sdk.Event, approved func(*sdk.Event) bool) (bool, string) {
	if r.Where != nil || r.Unless != nil {
		get := Lookup(ev)
		if r.Where != nil && !r.Where.Eval(get) {
			return false, "where does not hold"
		}
		if r.Unless != nil && r.Unless.Eval(get) {
			return false, "unless holds: " + r.Unless.String()
		}
	}
	if r.RequireApproval {
		if approved != nil && approved(ev) {
			return false, "an approved migration"
		}
		return true, ""
	}
	for _, x := range r.Exemptions {
		if ok, why := x.Exempts(ev); ok {
			return false, why
		}
	}
	return true, ""
}
