package override

import (
	"testing"
	"time"

	"github.com/tda-dev/tda/sdk"
)

// FuzzOrigins: any pattern is accepted or refused with an error, and any origin (a file path
// or a container name from outside) is matched without a panic; "*" allows every non-empty
// origin.
func FuzzOrigins(f *testing.F) {
	f.Add("/var/log/app/*.log", "/var/log/app/web.log")
	f.Add("flask_web_*", "flask_web_1")
	f.Add("[a-", "x")
	f.Add("*", "C:\\logs\\app.log")
	f.Fuzz(func(t *testing.T, pattern, origin string) {
		o, err := NewOrigins([]string{pattern})
		if err == nil {
			_ = o.Allows(origin)
		}
		all, _ := NewOrigins([]string{"*"})
		if origin != "" && !all.Allows(origin) && !containsSlashOnlyEnd(origin) {
			t.Fatalf("* does not allow %q", origin)
		}
	})
}

// containsSlashOnlyEnd reports origins whose last path element is empty ("dir/"): "*"
// matches neither the whole (it has a "/") nor the empty last element.
func containsSlashOnlyEnd(s string) bool {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '/' || s[i] == '\\' {
			return i == len(s)-1 || allSlashes(s[i:])
		}
	}
	return false
}

func allSlashes(s string) bool {
	for _, c := range s {
		if c != '/' && c != '\\' {
			return false
		}
	}
	return true
}

// FuzzApply: any declaration line (actor, reason, ttl, until as written) at any time gives a
// bounded history and never an override longer than max_ttl: a log line cannot set until.
func FuzzApply(f *testing.F) {
	f.Add("carol", "import", "30m", "", int64(0))
	f.Add("", "", "9999h", "9999-12-31T23:59:59Z", int64(-1<<62))
	f.Fuzz(func(t *testing.T, actor, reason, ttl, until string, sec int64) {
		var s State
		at := time.Unix(sec%(1<<40), 0).UTC()
		ev := &sdk.Event{Kind: sdk.KindLog, Time: at, Origin: "app.log", Fields: map[string]string{
			"event": Enabled, FieldActor: actor, FieldReason: reason, FieldTTL: ttl, FieldUntil: until}}
		for i := 0; i < maxHistory+3; i++ {
			s.Apply(ev, DefaultConfig)
			ev.Time = ev.Time.Add(time.Minute)
		}
		if len(s.History) > maxHistory {
			t.Fatalf("history of %d", len(s.History))
		}
		if c := s.Current; c != nil && c.Until.Sub(c.Since) > DefaultConfig.MaxTTL {
			t.Fatalf("override of %s from ttl %q, until %q", c.Until.Sub(c.Since), ttl, until)
		}
	})
}
