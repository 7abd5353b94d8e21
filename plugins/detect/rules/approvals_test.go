package rules

import (
	"strings"
	"testing"
	"time"

	"github.com/tda-dev/tda/sdk"
)

// approvalEvent is the audit event the agent injects for an approved migration request.
func approvalEvent(name string, approvedAt, until time.Duration) sdk.Event {
	return sdk.Event{Kind: sdk.KindAudit, Origin: "operator", Time: base.Add(approvedAt), Fields: map[string]string{
		"event": EventMigrationApproved, "migration": name, "request_id": "7", "actor": "bob",
		"approved_at": sdk.FormatTime(base.Add(approvedAt)), "valid_until": sdk.FormatTime(base.Add(until))}}
}

// TestMigrationRules runs the two migration rules side by side: migration_outside_window
// (maintenance window only) and unapproved_migration (require_approval only). Each fires for
// its own reason, and its explanation states that reason.
func TestMigrationRules(t *testing.T) {
	// base is Sunday 10:00 UTC; the window is Sunday 09:00-12:00.
	sunday := &MaintenanceWindow{Start: 9 * time.Hour, End: 12 * time.Hour, Location: time.UTC}
	sunday.Days[time.Sunday] = true
	migration := func(at time.Duration, rev string) sdk.Event { return ev(at, "migration_started", "revision", rev) }
	approve := approvalEvent("3ab8b2dfb055", 0, time.Hour)
	tests := []struct {
		name       string
		events     []sdk.Event
		outside    int // alerts of migration_outside_window
		unapproved int // alerts of unapproved_migration
	}{
		{"inside the window, approved", []sdk.Event{approve, migration(time.Minute, "3ab8b2dfb055")}, 0, 0},
		{"inside the window, no approval", []sdk.Event{migration(time.Minute, "3ab8b2dfb055")}, 0, 1},
		{"inside the window, another revision approved", []sdk.Event{approve, migration(time.Minute, "28af9800143f")}, 0, 1},
		{"inside the window, approval expired", []sdk.Event{approve, migration(61*time.Minute, "3ab8b2dfb055")}, 0, 1},
		{"inside the window, line well before the approval", []sdk.Event{approvalEvent("3ab8b2dfb055", 30*time.Minute, time.Hour), migration(time.Minute, "3ab8b2dfb055")}, 0, 1},
		{"inside the window, line within the clock-skew grace", []sdk.Event{approvalEvent("3ab8b2dfb055", 30*time.Second, time.Hour), migration(0, "3ab8b2dfb055")}, 0, 0},
		{"outside the window, approved", []sdk.Event{approvalEvent("3ab8b2dfb055", 0, 5*time.Hour), migration(3*time.Hour, "3ab8b2dfb055")}, 1, 0},
		{"outside the window, not approved", []sdk.Event{migration(3*time.Hour, "3ab8b2dfb055")}, 1, 1},
		{"flyway version with description", []sdk.Event{approvalEvent("1.0.0", 0, time.Hour), migration(time.Minute, "1.0.0 - init")}, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			outside := newRule(t, func(r *Rule) {
				r.Name, r.Match, r.Threshold, r.Window = "migration_outside_window", []string{"migration_started"}, 0, 10*time.Minute
				r.Exemptions = []Exemption{sunday}
			})
			unapproved := newRule(t, func(r *Rule) {
				r.Name, r.Match, r.Threshold, r.Window, r.RequireApproval = "unapproved_migration", []string{"migration_started"}, 0, 10*time.Minute, true
			})
			out := run(NewEngine([]*Rule{outside, unapproved}, Options{Instance: "processor.rules.t"}), tc.events)
			firing := map[string]int{}
			for _, a := range out {
				if a.Kind != sdk.KindAlert || a.Alert.State != sdk.StateFiring {
					continue
				}
				firing[a.Alert.Rule]++
				x := a.Alert.Explanation
				switch a.Alert.Rule {
				case "migration_outside_window":
					if !strings.Contains(x, "outside every allowed window (Sun 09:00-12:00 UTC)") || strings.Contains(x, "approv") {
						t.Errorf("outside-window explanation: %s", x)
					}
				case "unapproved_migration":
					if !strings.Contains(x, "no approved migration request matches") || strings.Contains(x, "window") {
						t.Errorf("unapproved explanation: %s", x)
					}
				}
			}
			if firing["migration_outside_window"] != tc.outside || firing["unapproved_migration"] != tc.unapproved {
				t.Fatalf("firing %v, want outside=%d unapproved=%d (%s)", firing, tc.outside, tc.unapproved, states(out))
			}
		})
	}
}

func TestRequireApprovalTakesNoWindow(t *testing.T) {
	r := &Rule{Name: "m", Match: []string{"migration_started"}, Window: time.Minute, RequireApproval: true,
		Exemptions: []Exemption{&MaintenanceWindow{}}}
	if err := r.Check(); err == nil || !strings.Contains(err.Error(), "another with require_approval") {
		t.Fatalf("Check: %v", err)
	}
}

func TestApprovalsSurviveARestart(t *testing.T) {
	r := newRule(t, func(r *Rule) {
		r.Name, r.Match, r.Threshold, r.Window, r.RequireApproval = "m", []string{"migration_started"}, 0, time.Minute, true
	})
	e := NewEngine([]*Rule{r}, Options{Instance: "p"})
	a := approvalEvent("V2", 0, time.Hour)
	e.Event(&a, nil)
	snap := e.Snapshot()

	restored := NewEngine([]*Rule{r}, Options{Instance: "p"})
	if err := restored.Restore(snap); err != nil {
		t.Fatal(err)
	}
	m := ev(time.Minute, "migration_started", "revision", "V2")
	if out := run(restored, []sdk.Event{m}); len(out) != 0 {
		t.Fatalf("approved migration alerted after a restore: %s", states(out))
	}
	// A snapshot written before approvals existed restores with none.
	old := NewEngine([]*Rule{r}, Options{Instance: "p"}).Snapshot()
	old = old[:len(old)-4] // drop the (empty) approvals, closed and hosts sections, one byte each
	if err := restored.Restore(old); err != nil {
		t.Fatalf("snapshot without approvals: %v", err)
	}
	if out := run(restored, []sdk.Event{m}); len(out) == 0 {
		t.Fatal("no approvals after restoring an older snapshot, yet no alert")
	}
}
