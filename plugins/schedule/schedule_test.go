package schedule

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tda-dev/tda/sdk"
	"github.com/tda-dev/tda/sdk/sdktest"
)

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestDue(t *testing.T) {
	paris, _ := time.LoadLocation("Europe/Paris")
	newYork, _ := time.LoadLocation("America/New_York")
	tests := []struct {
		name       string
		expr       string
		loc        *time.Location
		last, now  string
		wantLatest string
		wantCount  int
	}{
		{"nothing due", "0 3 * * *", time.UTC, "2026-11-29T03:00:00Z", "2026-11-29T12:00:00Z", "", 0},
		{"exactly due", "0 3 * * *", time.UTC, "2026-11-29T03:00:00Z", "2026-11-30T03:00:00Z", "2026-11-30T03:00:00Z", 1},
		{"down three days", "0 3 * * *", time.UTC, "2026-11-26T03:00:00Z", "2026-11-29T12:00:00Z", "2026-11-29T03:00:00Z", 3},
		// 03:00 in Paris is 02:00 UTC in winter and 01:00 UTC once summer time starts (29 March 2026).
		{"across spring forward in Paris", "0 3 * * *", paris, "2026-03-27T02:00:00Z", "2026-03-30T12:00:00Z", "2026-03-30T01:00:00Z", 3},
		// 23:30 in New York on a Sunday is 04:30 UTC on Monday.
		{"Sundays in New York", "30 23 * * 0", newYork, "2026-11-20T00:00:00Z", "2026-11-30T12:00:00Z", "2026-11-30T04:30:00Z", 2},
		{"every second", "* * * * * *", time.UTC, "2026-11-29T12:00:00Z", "2026-11-29T12:00:10Z", "2026-11-29T12:00:10Z", 10},
		{"descriptor", "@hourly", time.UTC, "2026-11-29T09:59:59Z", "2026-11-29T12:30:00Z", "2026-11-29T12:00:00Z", 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sched, err := parser.Parse(tt.expr)
			if err != nil {
				t.Fatal(err)
			}
			latest, n := Due(sched, tt.loc, utc(tt.last), utc(tt.now))
			if n != tt.wantCount {
				t.Fatalf("count %d, want %d", n, tt.wantCount)
			}
			if tt.wantCount > 0 && !latest.Equal(utc(tt.wantLatest)) {
				t.Fatalf("latest %s, want %s", latest.UTC().Format(time.RFC3339), tt.wantLatest)
			}
		})
	}
}

func TestTicksAndCheckpoint(t *testing.T) {
	s := sdktest.NewSource(t, Component(), `cron = "* * * * * *"`, sdktest.WithInstance("source.schedule.fast"))
	s.Start(nil)
	got := s.Collect(2, 5*time.Second)
	if len(got) != 2 {
		t.Fatalf("%d ticks in 5s from an every-second schedule", len(got))
	}
	first, second := got[0], got[1]
	if first.Kind != sdk.KindTick || first.Field(FieldSchedule) != "fast" || first.Field(FieldCron) != "* * * * * *" ||
		first.Field(FieldTimezone) != "UTC" || first.Field(FieldMissed) != "0" || first.Field(FieldCatchUp) != "" {
		t.Fatalf("tick %+v", first)
	}
	a, _ := time.Parse(time.RFC3339Nano, first.Field(FieldScheduledAt))
	b, _ := time.Parse(time.RFC3339Nano, second.Field(FieldScheduledAt))
	if b.Sub(a) != time.Second || !first.Time.Equal(a) {
		t.Fatalf("scheduled %v then %v", a, b)
	}
	if cp := string(s.Checkpoints()[checkpointKey]); cp != second.Field(FieldScheduledAt) {
		t.Fatalf("checkpoint %q, want the last tick %q", cp, second.Field(FieldScheduledAt))
	}
	s.Stop()

	// Restart from the checkpoint: the next tick is after it (never the same one again), and
	// the seconds that passed meanwhile come as one catch-up tick.
	cps := s.Checkpoints()
	time.Sleep(2100 * time.Millisecond)
	s2 := sdktest.NewSource(t, Component(), `cron = "* * * * * *"`, sdktest.WithInstance("source.schedule.fast"))
	s2.Start(cps)
	resumed := s2.Collect(1, 5*time.Second)
	if len(resumed) != 1 {
		t.Fatal("no tick after restart")
	}
	r := resumed[0]
	at, _ := time.Parse(time.RFC3339Nano, r.Field(FieldScheduledAt))
	missed, _ := strconv.Atoi(r.Field(FieldMissed))
	if !at.After(b) || r.Field(FieldCatchUp) != "true" || missed < 1 || !strings.Contains(string(r.Line), "catch_up=true") {
		t.Fatalf("after restart: %s (last was %v)", r.Line, b)
	}
}

func TestMissedTicksOnceOrSkip(t *testing.T) {
	// Monthly at midnight UTC; last tick on 1 June 2026: every first of a month since is owed.
	last := "2026-06-01T00:00:00Z"
	now := time.Now().UTC()
	owed := (now.Year()-2026)*12 + int(now.Month()) - 6
	latest := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
	cps := map[string][]byte{checkpointKey: []byte(last)}

	once := sdktest.NewSource(t, Component(), `cron = "0 0 1 * *"`)
	once.Start(cps)
	got := once.Collect(1, 3*time.Second)
	if len(got) != 1 {
		t.Fatal("no catch-up tick")
	}
	if got[0].Field(FieldScheduledAt) != latest.Format(time.RFC3339Nano) || got[0].Field(FieldMissed) != strconv.Itoa(owed-1) ||
		got[0].Field(FieldCatchUp) != "true" {
		t.Fatalf("catch-up tick %v, want scheduled %s standing for %d more", got[0].Fields, latest, owed-1)
	}
	if extra := once.Collect(1, 500*time.Millisecond); len(extra) != 0 {
		t.Fatalf("more than one catch-up tick: %v", extra[0].Fields)
	}

	skip := sdktest.NewSource(t, Component(), "cron = \"0 0 1 * *\"\nmissed = \"skip\"")
	skip.Start(cps)
	if got := skip.Collect(1, time.Second); len(got) != 0 {
		t.Fatalf("missed = skip emitted %v", got[0].Fields)
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct{ src, want string }{
		{`cron = "61 * * * *"`, `1:8: Invalid cron: invalid cron expression "61 * * * *"`},
		{"cron = \"0 3 * * *\"\ntimezone = \"Mars/Olympus\"", `2:12: Invalid timezone: unknown time zone "Mars/Olympus"`},
		{`cron = "CRON_TZ=Europe/Paris 0 3 * * *"`, "set the time zone with the timezone attribute"},
		{"cron = \"@daily\"\nmissed = \"all\"", `missed must be one of "once" or "skip"`},
	}
	for _, tt := range tests {
		got := strings.Join(sdktest.Validate(t, Component(), tt.src), "\n")
		if !strings.Contains(got, tt.want) {
			t.Errorf("%s: %q does not contain %q", tt.src, got, tt.want)
		}
	}
}
