package ops

import (
	"context"
	"strings"
	"testing"

	"github.com/tda-dev/tda/plugins/detect/override"
	"github.com/tda-dev/tda/sdk"
)

// TestLogLineOverrideKeepsBlocked: an override an app's log line declared (as the override
// processor records it) suppresses alerts, but never lifts the blocked state: approvals,
// migrations and restores still need an acknowledgement or an operator's override. A record
// without "via" (written before the field existed) counts as a log line's.
func TestLogLineOverrideKeepsBlocked(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		via  string
	}{
		{"log line", override.ViaLogLine},
		{"record without via", ""},
		{"container named operator", override.ViaLogLine},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, true)
			now := f.clock.Now()
			f.appendTrail(t, alertLine("fp-high", "mass_password_reset", "HIGH", "firing", now))
			origin := "/var/log/app.log"
			if tc.name == "container named operator" {
				origin = "operator"
			}
			line := &sdk.Event{Kind: sdk.KindLog, Time: now, Origin: origin, Source: "docker.apps",
				Fields: map[string]string{"event": override.Enabled, "actor": "mallory", "reason": "maintenance", "ttl": "1h"}}
			var st override.State
			rec := st.Apply(line, override.DefaultConfig)
			if rec == nil {
				t.Fatal("no record")
			}
			if rec.Fields[override.FieldVia] != override.ViaLogLine {
				t.Fatalf("record of a log line says via=%q", rec.Fields[override.FieldVia])
			}
			if tc.via == "" {
				delete(rec.Fields, override.FieldVia)
			}
			f.svc.Observe("detect", *rec)

			s := must(f.svc.State(ctx))(t)
			if s.Status != StatusBlocked || s.Override == nil || s.Override.Actor != "mallory" {
				t.Fatalf("state: %+v", s)
			}
			if !strings.Contains(strings.Join(s.Reasons, "\n"), "never lifts the blocked state") {
				t.Fatalf("reasons do not say why the override does not lift blocked: %q", s.Reasons)
			}
			req := must(f.svc.RequestMigration(ctx, alice, MigrationRequest{Name: "V9"}))(t)
			_, err := f.svc.DecideMigration(ctx, bob, Decision{ID: req.ID, Approve: true, Reason: "ok"})
			wantKind(t, err, KindForbidden)
			if !strings.Contains(err.Error(), "declared by a log line") {
				t.Fatalf("error does not name the log-line override: %v", err)
			}

			// An operator's override does lift it.
			must(f.svc.OverrideOn(ctx, bob, OverrideRequest{Reason: "restoring users", TTL: "30m"}))(t)
			if s := must(f.svc.State(ctx))(t); s.Status != StatusOverride || s.Override.Via != override.ViaOperator {
				t.Fatalf("state under the operator's override: %+v", s)
			}
			must(f.svc.DecideMigration(ctx, bob, Decision{ID: req.ID, Approve: true, Reason: "ok"}))(t)
		})
	}
}
