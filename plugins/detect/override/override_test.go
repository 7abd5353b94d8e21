package override

import (
	"testing"
	"time"

	"github.com/tda-dev/tda/sdk"
)

var t0 = time.Date(2026, 11, 29, 10, 50, 0, 0, time.UTC)

func change(kind, event string, at time.Time, kv ...string) *sdk.Event {
	f := map[string]string{"event": event}
	for i := 0; i+1 < len(kv); i += 2 {
		f[kv[i]] = kv[i+1]
	}
	return &sdk.Event{Kind: kind, Time: at, Origin: "app.log", Source: "file.x", Fields: f}
}

func TestStateTransitions(t *testing.T) {
	cfg := Config{DefaultTTL: time.Hour, MaxTTL: 2 * time.Hour}
	tests := []struct {
		name      string
		ttl       string
		wantUntil time.Duration
	}{
		{"ttl given", "10m", 10 * time.Minute},
		{"no ttl: default", "", time.Hour},
		{"invalid ttl: default", "soon", time.Hour},
		{"negative ttl: default", "-5m", time.Hour},
		{"too long: capped", "3d", 2 * time.Hour},
		{"days", "1d", 2 * time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s State
			rec := s.Apply(change(sdk.KindLog, Enabled, t0, "actor", "carol", "reason", "import", "ttl", tt.ttl), cfg)
			if rec == nil || rec.Kind != sdk.KindAudit || rec.Fields[FieldUntil] != sdk.FormatTime(t0.Add(tt.wantUntil)) {
				t.Fatalf("record %+v", rec)
			}
			if _, ok := s.Active(t0.Add(tt.wantUntil - time.Nanosecond)); !ok {
				t.Fatal("inactive before until")
			}
			if _, ok := s.Active(t0.Add(tt.wantUntil)); ok {
				t.Fatal("active at until")
			}
		})
	}
}

func TestApplyIsIdempotentAndExpires(t *testing.T) {
	var s State
	cfg := DefaultConfig
	line := change(sdk.KindLog, Enabled, t0, "actor", "carol", "reason", "import", "ttl", "10m")
	rec := s.Apply(line, cfg)
	if rec == nil || rec.Fields[FieldOrigin] != "app.log" || rec.Fields[FieldActor] != "carol" {
		t.Fatalf("enable: %+v", rec)
	}
	// The same declaration again (the audit record that follows the line) changes nothing.
	if again := s.Apply(rec, cfg); again != nil {
		t.Fatalf("re-applying the record changed state: %+v", again)
	}
	if s.Expire(t0.Add(9*time.Minute)) != nil {
		t.Fatal("expired early")
	}
	exp := s.Expire(t0.Add(11 * time.Minute))
	if exp == nil || exp.Fields["event"] != Expired || !exp.Time.Equal(t0.Add(10*time.Minute)) {
		t.Fatalf("expiry %+v", exp)
	}
	if s.Apply(change(sdk.KindLog, Disabled, t0.Add(12*time.Minute), "actor", "carol"), cfg) != nil {
		t.Fatal("disabling nothing must not record a change")
	}
}

func TestOperatorDisable(t *testing.T) {
	var s State
	s.Apply(change(sdk.KindLog, Enabled, t0, "actor", "carol", "reason", "import", "ttl", "1h"), DefaultConfig)
	op := change(sdk.KindAudit, Disabled, t0.Add(time.Minute), "actor", "dana", "reason", "import finished")
	op.Origin = OriginOperator
	rec := s.Apply(op, DefaultConfig)
	if rec == nil || rec.Fields[FieldActor] != "dana" || rec.Fields["enabled_by"] != "carol" ||
		rec.Fields[FieldOrigin] != OriginOperator || rec.Fields[FieldReason] != "import finished" ||
		rec.Fields[FieldUntil] != sdk.FormatTime(t0.Add(time.Minute)) {
		t.Fatalf("disable record %+v", rec)
	}
	if _, ok := s.Active(t0.Add(2 * time.Minute)); ok {
		t.Fatal("still active")
	}
}
