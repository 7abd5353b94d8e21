package rules

import (
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

func TestRequireApproval(t *testing.T) {
	// base is Sunday 10:00 UTC; the window is Sunday 09:00-12:00.
	sunday := &MaintenanceWindow{Start: 9 * time.Hour, End: 12 * time.Hour, Location: time.UTC}
	sunday.Days[time.Sunday] = true
	migration := func(at time.Duration, rev string) sdk.Event { return ev(at, "migration_started", "revision", rev) }
	approve := approvalEvent("3ab8b2dfb055", 0, time.Hour)
	tests := []struct {
		name    string
		require bool
		windows bool
		events  []sdk.Event
		alerts  int
	}{
		{"inside the window, approved", true, true, []sdk.Event{approve, migration(time.Minute, "3ab8b2dfb055")}, 0},
		{"inside the window, no approval", true, true, []sdk.Event{migration(time.Minute, "3ab8b2dfb055")}, 1},
		{"inside the window, another revision approved", true, true, []sdk.Event{approve, migration(time.Minute, "28af9800143f")}, 1},
		{"inside the window, approval expired", true, true, []sdk.Event{approve, migration(61*time.Minute, "3ab8b2dfb055")}, 1},
		{"inside the window, line well before the approval", true, true, []sdk.Event{approvalEvent("3ab8b2dfb055", 30*time.Minute, time.Hour), migration(time.Minute, "3ab8b2dfb055")}, 1},
		{"inside the window, line within the clock-skew grace", true, true, []sdk.Event{approvalEvent("3ab8b2dfb055", 30*time.Second, time.Hour), migration(0, "3ab8b2dfb055")}, 0},
		{"outside the window, approved", true, true, []sdk.Event{approvalEvent("3ab8b2dfb055", 0, 5*time.Hour), migration(3*time.Hour, "3ab8b2dfb055")}, 1},
		{"flyway version with description", true, true, []sdk.Event{approvalEvent("1.0.0", 0, time.Hour), migration(time.Minute, "1.0.0 - init")}, 0},
		{"no windows, approved", true, false, []sdk.Event{approve, migration(time.Minute, "3ab8b2dfb055")}, 0},
		{"no windows, not approved", true, false, []sdk.Event{migration(time.Minute, "3ab8b2dfb055")}, 1},
		{"approval not required: the window alone", false, true, []sdk.Event{migration(time.Minute, "28af9800143f")}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newRule(t, func(r *Rule) {
				r.Name, r.Match, r.Threshold, r.Window, r.RequireApproval = "migration_outside_window", []string{"migration_started"}, 0, 10*time.Minute, tc.require
				if tc.windows {
					r.Exemptions = []Exemption{sunday}
				}
			})
			out := run(NewEngine([]*Rule{r}, Options{Instance: "processor.rules.t"}), tc.events)
			firing := 0
			for _, a := range out {
				if a.Kind == sdk.KindAlert && a.Alert.State == sdk.StateFiring {
					firing++
					if tc.require && a.Alert.Explanation == "" {
						t.Error("alert without explanation")
					}
				}
			}
			if firing != tc.alerts {
				t.Fatalf("firing alerts: %d, want %d (%s)", firing, tc.alerts, states(out))
			}
		})
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
	old = old[:len(old)-1] // drop the (empty) approvals section
	if err := restored.Restore(old); err != nil {
		t.Fatalf("snapshot without approvals: %v", err)
	}
	if out := run(restored, []sdk.Event{m}); len(out) == 0 {
		t.Fatal("no approvals after restoring an older snapshot, yet no alert")
	}
}
