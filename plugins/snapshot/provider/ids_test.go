package provider

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestNewID(t *testing.T) {
	when := time.Date(2026, 11, 29, 23, 57, 5, 0, time.FixedZone("CET", 3600))
	tests := []struct {
		target, trigger, suffix, want string
	}{
		{"prod-aurora", TriggerScheduled, "", "tda-prod-aurora-scheduled-20261129t225705z"},
		{"prod-aurora", TriggerAnomaly, "3f9a0c1d", "tda-prod-aurora-anomaly-20261129t225705z-3f9a0c1d"},
		{"Orders_DB", TriggerPreMigration, "", "tda-orders-db-pre-migration-20261129t225705z"},
		{"--", TriggerManual, "", "tda-db-manual-20261129t225705z"},
		{strings.Repeat("x", 80), TriggerPreMigration, "abcdef12", "tda-" + strings.Repeat("x", 19) + "-pre-migration-20261129t225705z-abcdef12"},
	}
	for _, tt := range tests {
		got := NewID(tt.target, tt.trigger, when, tt.suffix)
		if got != tt.want {
			t.Errorf("NewID(%q, %q, %q) = %q, want %q", tt.target, tt.trigger, tt.suffix, got, tt.want)
		}
		if err := ValidIdentifier(got); err != nil {
			t.Errorf("NewID gave an invalid identifier: %v", err)
		}
	}
}

func TestValidIdentifier(t *testing.T) {
	tests := []struct {
		id, problem string
	}{
		{"orders-restored", ""},
		{"a", ""},
		{"", "empty"},
		{"1orders", "start with a letter"},
		{"orders-", "end with a hyphen"},
		{"orders--x", "two hyphens"},
		{"orders_x", "only letters, digits and hyphens"},
		{strings.Repeat("a", 64), "limit is 63"},
	}
	for _, tt := range tests {
		err := ValidIdentifier(tt.id)
		if (err == nil) != (tt.problem == "") || (err != nil && !strings.Contains(err.Error(), tt.problem)) {
			t.Errorf("ValidIdentifier(%q) = %v, want %q", tt.id, err, tt.problem)
		}
	}
}

func FuzzNewID(f *testing.F) {
	f.Add("prod-aurora", "scheduled", "", int64(0))
	f.Add("ÄÖ--__x", "pre-migration", "f00d", int64(1<<40))
	f.Fuzz(func(t *testing.T, target, trigger, suffix string, sec int64) {
		if sanitize(trigger) == "" || len(sanitize(trigger))+len(sanitize(suffix)) > 30 {
			return // triggers are tda's own short words, suffixes short hashes
		}
		id := NewID(target, trigger, time.Unix(sec%(1<<35), 0), suffix)
		if err := ValidIdentifier(id); err != nil {
			t.Fatalf("NewID(%q, %q, %q) = %q: %v", target, trigger, suffix, id, err)
		}
	})
}

func TestErrorClassesAndMessage(t *testing.T) {
	cause := errors.New("api error SnapshotQuotaExceeded: Cannot create more than 100 manual snapshots")
	err := &Error{Op: "create snapshot x", Class: ErrQuota, Err: cause, Advice: "run `tda snapshot prune`"}
	if !errors.Is(err, ErrQuota) || !errors.Is(err, cause) {
		t.Fatalf("errors.Is does not see class and cause")
	}
	if Transient(err) {
		t.Fatalf("quota errors are not transient")
	}
	if !Transient(&Error{Op: "create", Class: ErrBusy}) || !Transient(errors.New("connection reset")) {
		t.Fatalf("busy and unknown errors are transient")
	}
	want := "create snapshot x: api error SnapshotQuotaExceeded: Cannot create more than 100 manual snapshots. run `tda snapshot prune`"
	if err.Error() != want {
		t.Fatalf("message %q", err.Error())
	}
}

func TestCleanTagValue(t *testing.T) {
	if got := CleanTagValue("v1.4.2+build/7 (rc#1)"); got != "v1.4.2+build/7 _rc_1_" {
		t.Fatalf("got %q", got)
	}
	if got := CleanTagValue(strings.Repeat("é", 300)); len([]rune(got)) != MaxTagValueLength {
		t.Fatalf("not cut to 256 characters: %d", len([]rune(got)))
	}
}

func TestValidSnapshotID(t *testing.T) {
	tests := []struct {
		id      string
		problem string
	}{
		{"tda-orders-manual-20261129t225705z", ""},
		{"rds:prod-aurora-2026-11-29-03-05", ""},
		{"arn:aws:rds:eu-west-1:123456789012:cluster-snapshot:shared-1", ""},
		{"", "empty"},
		{"../../../../x/e", "starts with a letter"},
		{"x/../../e", `not '/'`},
		{"tda-x/e", `not '/'`},
		{"tda..x", `not '.'`},
		{`tda\x`, `not '\\'`},
		{"tda\x00x", `not '\x00'`},
		{"tda x", `not ' '`},
		{"tda\nx", `not '\n'`},
		{"tdä", "only letters"},
		{strings.Repeat("a", 256), "limit is 255"},
	}
	for _, tt := range tests {
		err := ValidSnapshotID(tt.id)
		if (err == nil) != (tt.problem == "") || (err != nil && !strings.Contains(err.Error(), tt.problem)) {
			t.Errorf("ValidSnapshotID(%q) = %v, want %q", tt.id, err, tt.problem)
		}
		if err != nil && !errors.Is(err, ErrInvalid) {
			t.Errorf("ValidSnapshotID(%q) error is not ErrInvalid", tt.id)
		}
	}
}

// FuzzValidSnapshotID: an id that passes can only ever name a plain file inside the directory
// it is joined to, and every id NewID makes passes.
func FuzzValidSnapshotID(f *testing.F) {
	for _, s := range []string{"tda-prod-manual-20261129t225705z", "../../../../x/e", "rds:x", "a/b", "a\\b", ".hidden", "é"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		if ValidSnapshotID(id) != nil {
			if made := NewID(id, TriggerManual, time.Unix(0, 0), ""); ValidSnapshotID(made) != nil {
				t.Fatalf("NewID(%q) = %q is refused", id, made)
			}
			return
		}
		dir := filepath.FromSlash("/data/snapshots/orders")
		for _, name := range []string{id + ".json", id + ".dump", "." + id + ".lock"} {
			p := filepath.Join(dir, name)
			if filepath.Dir(p) != dir || filepath.Base(p) != name {
				t.Fatalf("id %q names %s, outside %s", id, p, dir)
			}
		}
		if strings.ContainsAny(id, "/\\.\x00 \t\r\n") {
			t.Fatalf("id %q passed with a path or control character", id)
		}
	})
}
