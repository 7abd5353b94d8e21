package rules

import (
	"reflect"
	"testing"
	"time"

	"github.com/tda-dev/tda/sdk"
)

func TestTrace(t *testing.T) {
	// base is Sunday 10:00 UTC; the window is Sunday 09:00-12:00.
	sunday := &MaintenanceWindow{Start: 9 * time.Hour, End: 12 * time.Hour, Location: time.UTC}
	sunday.Days[time.Sunday] = true
	// Threshold 0: an event the engine counts fires an alert, so the test can check that
	// Trace's decision is the one Event takes.
	rulesOf := func(t *testing.T) []*Rule {
		return []*Rule{
			newRule(t, func(r *Rule) {
				r.Name, r.Threshold = "mass_password_reset", 0
				r.Unless = mustCond(t, "actor_role == admin")
			}),
			newRule(t, func(r *Rule) {
				r.Name, r.Threshold, r.Match = "api_resets", 0, []string{"password_changed", "user_deleted"}
				r.Where = mustCond(t, `path =~ "^/api/"`)
			}),
			newRule(t, func(r *Rule) {
				r.Name, r.Threshold, r.Match = "migration_outside_window", 0, []string{"migration_started"}
				r.Exemptions = []Exemption{sunday}
			}),
			newRule(t, func(r *Rule) {
				r.Name, r.Threshold, r.Match, r.RequireApproval = "unapproved", 0, []string{"migration_started"}, true
			}),
		}
	}
	tests := []struct {
		name   string
		before []sdk.Event
		ev     sdk.Event
		want   []Decision
	}{
		{"counted by one, where fails for the other",
			nil, ev(0, "password_changed", "path", "/account/password"),
			[]Decision{{Rule: "mass_password_reset", Counted: true},
				{Rule: "api_resets", Reason: "where does not hold"}}},
		{"unless names its condition",
			nil, ev(0, "password_changed", "actor_role", "admin", "path", "/api/users/1/password"),
			[]Decision{{Rule: "mass_password_reset", Reason: "unless holds: actor_role == admin"},
				{Rule: "api_resets", Counted: true}}},
		{"no rule matches",
			nil, ev(0, "login_failed", "ip", "203.0.113.9"), nil},
		{"not an event",
			nil, sdk.Event{Kind: sdk.KindLog, Time: base, Line: []byte("GET / 200")}, nil},
		{"maintenance window, no approval",
			nil, ev(time.Minute, "migration_started", "revision", "3ab8b2dfb055"),
			[]Decision{{Rule: "migration_outside_window", Reason: "inside the maintenance window Sun 09:00-12:00 UTC"},
				{Rule: "unapproved", Counted: true, Reason: `no approved migration request matches revision "3ab8b2dfb055"`}}},
		{"outside the window, approved",
			[]sdk.Event{approvalEvent("3ab8b2dfb055", 2*time.Hour, 5*time.Hour)}, ev(3*time.Hour, "migration_started", "revision", "3ab8b2dfb055"),
			[]Decision{{Rule: "migration_outside_window", Counted: true},
				{Rule: "unapproved", Reason: "an approved migration"}}},
		{"migration without revision",
			nil, ev(3*time.Hour, "migration_started"),
			[]Decision{{Rule: "migration_outside_window", Counted: true},
				{Rule: "unapproved", Counted: true, Reason: "no approved migration request matches revision (none)"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := NewEngine(rulesOf(t), Options{Instance: "processor.rules.t"})
			for i := range tc.before {
				e.Event(&tc.before[i], nil)
			}
			before := e.Stats()
			got := e.Trace(&tc.ev)
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Trace:\n got %+v\nwant %+v", got, tc.want)
			}
			if after := e.Stats(); !reflect.DeepEqual(before, after) {
				t.Fatalf("Trace changed the engine: %+v -> %+v", before, after)
			}
			// The engine takes the decisions Trace reported.
			fired := map[string]bool{}
			for _, a := range e.Event(&tc.ev, nil) {
				if a.Kind == sdk.KindAlert && a.Alert.State == sdk.StateFiring {
					fired[a.Alert.Rule] = true
				}
			}
			for _, d := range got {
				if fired[d.Rule] != d.Counted {
					t.Errorf("rule %s: Trace says counted=%v, the engine fired=%v", d.Rule, d.Counted, fired[d.Rule])
				}
				delete(fired, d.Rule)
			}
			if len(fired) > 0 {
				t.Errorf("rules fired that Trace did not report: %v", fired)
			}
		})
	}
}
