package override

import (
	"testing"
	"time"

	"github.com/tda-dev/tda/sdk"
)

// TestHistoryJudgesInEventTime: the override in force at t comes from the changes at or
// before t, whatever order the changes and the questions arrive in; a change seen again
// records nothing.
func TestHistoryJudgesInEventTime(t *testing.T) {
	var s State
	on := change(sdk.KindLog, Enabled, t0, "actor", "carol", "reason", "import", "ttl", "30m")
	off := change(sdk.KindLog, Disabled, t0.Add(10*time.Minute), "actor", "carol")
	again := change(sdk.KindLog, Enabled, t0.Add(20*time.Minute), "actor", "dan", "reason", "reindex", "ttl", "5m")
	for _, c := range []*sdk.Event{on, off, again} {
		if s.Apply(c, DefaultConfig) == nil {
			t.Fatalf("no record for %v", c.Fields)
		}
	}
	tests := []struct {
		at    time.Duration
		actor string
	}{
		{-time.Second, ""},
		{0, "carol"},
		{5 * time.Minute, "carol"},
		{10 * time.Minute, ""}, // disabled
		{20 * time.Minute, "dan"},
		{25*time.Minute - 1, "dan"},
		{25 * time.Minute, ""}, // expired
	}
	for _, tt := range tests {
		o, ok := s.Active(t0.Add(tt.at))
		if got := ""; ok {
			got = o.Actor
			if got != tt.actor {
				t.Fatalf("at %s: %q, want %q", tt.at, got, tt.actor)
			}
		} else if tt.actor != "" {
			t.Fatalf("at %s: none, want %q", tt.at, tt.actor)
		}
	}
	// Reading the same changes again (a replay) records nothing and changes nothing.
	for _, c := range []*sdk.Event{on, off, again} {
		if rec := s.Apply(c, DefaultConfig); rec != nil {
			t.Fatalf("replayed change recorded again: %v", rec.Fields)
		}
	}
	if s.Current == nil || s.Current.Actor != "dan" {
		t.Fatalf("current after the replay: %+v", s.Current)
	}
	if rec := s.Expire(t0.Add(26 * time.Minute)); rec == nil || rec.Fields[FieldActor] != "dan" {
		t.Fatalf("expiry %v", rec)
	}
	if rec := s.Apply(again, DefaultConfig); rec != nil {
		t.Fatalf("expired change recorded again: %v", rec.Fields)
	}
	if rec := s.Expire(t0.Add(27 * time.Minute)); rec != nil {
		t.Fatalf("expiry recorded twice: %v", rec.Fields)
	}
}

func TestHistoryIsBounded(t *testing.T) {
	var s State
	for i := 0; i < 3*maxHistory; i++ {
		s.Apply(change(sdk.KindLog, Enabled, t0.Add(time.Duration(i)*time.Minute), "actor", "a", "reason", string(rune('a'+i%26)), "ttl", "1m"), DefaultConfig)
	}
	if len(s.History) != maxHistory {
		t.Fatalf("history holds %d changes", len(s.History))
	}
	// A change older than everything kept is a replay of forgotten history: ignored.
	if rec := s.Apply(change(sdk.KindLog, Enabled, t0.Add(-time.Hour), "actor", "old", "ttl", "5h"), DefaultConfig); rec != nil {
		t.Fatalf("forgotten history re-applied: %v", rec.Fields)
	}
}

func TestVia(t *testing.T) {
	tests := []struct {
		name string
		ev   *sdk.Event
		want string
	}{
		{"log line", change(sdk.KindLog, Enabled, t0, "actor", "a"), ViaLogLine},
		{"log line from a container named operator", func() *sdk.Event {
			e := change(sdk.KindLog, Enabled, t0, "actor", "a")
			e.Origin = OriginOperator
			return e
		}(), ViaLogLine},
		{"log line claiming via=operator", change(sdk.KindLog, Enabled, t0, "actor", "a", FieldVia, ViaOperator), ViaLogLine},
		{"operator declaration", func() *sdk.Event {
			e := change(sdk.KindAudit, Enabled, t0, "actor", "a", "ttl", "1h")
			e.Origin = OriginOperator
			return e
		}(), ViaOperator},
		{"upstream record of a log line", change(sdk.KindAudit, Enabled, t0, "actor", "a", FieldUntil, sdk.FormatTime(t0.Add(time.Hour)),
			FieldOrigin, "operator", FieldVia, ViaLogLine), ViaLogLine},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s State
			rec := s.Apply(tt.ev, DefaultConfig)
			if rec == nil || rec.Fields[FieldVia] != tt.want {
				t.Fatalf("record %v, want via %s", rec, tt.want)
			}
		})
	}
}

func TestOrigins(t *testing.T) {
	o, err := NewOrigins([]string{"/var/log/app/*.log", "flask_web_*", "flask-*.log"})
	if err != nil {
		t.Fatal(err)
	}
	for origin, want := range map[string]bool{
		"/var/log/app/web.log":     true,
		"/var/log/app/sub/web.log": false,
		"/var/log/other/web.log":   false,
		"flask_web_1":              true,
		"spring-web-1":             false,
		"/srv/logs/flask-a.log":    true,
		"":                         false,
		"operator":                 false,
	} {
		if got := o.Allows(origin); got != want {
			t.Errorf("Allows(%q) = %v, want %v", origin, got, want)
		}
	}
	var none Origins
	if none.Allows("/var/log/app/web.log") || none.Any() {
		t.Fatal("the zero Origins allows an origin")
	}
	all, _ := NewOrigins([]string{"*"})
	if !all.Allows("/var/log/x.log") || !all.Allows("c1") {
		t.Fatal(`"*" does not allow every origin`)
	}
	for _, bad := range [][]string{{""}, {"["}} {
		if _, err := NewOrigins(bad); err == nil {
			t.Fatalf("NewOrigins(%q) accepted", bad)
		}
	}
}

func TestRefuseOnce(t *testing.T) {
	var s State
	ev := change(sdk.KindLog, Enabled, t0, "actor", "eve", "reason", "x")
	if rec := s.Refuse(ev, "none"); rec == nil || rec.Fields["event"] != Refused {
		t.Fatalf("first refusal %v", rec)
	}
	if rec := s.Refuse(ev, "none"); rec != nil {
		t.Fatalf("refused twice: %v", rec.Fields)
	}
	if _, ok := s.Active(t0); ok {
		t.Fatal("a refused line declared an override")
	}
}

func TestSanitize(t *testing.T) {
	var s State
	s.Apply(change(sdk.KindLog, Enabled, t0, "actor", "a", "ttl", "1h"), DefaultConfig)
	s.Apply(change(sdk.KindLog, Enabled, time.Date(2150, 1, 1, 0, 0, 0, 0, time.UTC), "actor", "future", "ttl", "1h"), DefaultConfig)
	if !s.Sanitize(time.Unix(1, 0), t0.Add(time.Hour)) {
		t.Fatal("nothing dropped")
	}
	if o, ok := s.Active(t0.Add(time.Minute)); !ok || o.Actor != "a" {
		t.Fatalf("after sanitising: %+v %v", o, ok)
	}
}
