// Package schedule is the source that emits tick events on a cron schedule in a time zone
// (github.com/robfig/cron/v3). The snapshot sink turns each tick into a scheduled snapshot.
//
// The scheduled time of the last tick emitted is the source's checkpoint. The agent stores it
// only once every sink accepted the tick, so after a crash or a restart a tick is neither lost
// (it is emitted again if its batch was not accepted) nor repeated (ticks at or before the
// checkpoint are never emitted again; a sink that saw a tick whose checkpoint was not yet
// committed sees the same scheduled_at again and can recognise it, as the snapshot sink does).
//
// Ticks missed while the agent was down: with missed = "once" (the default) one catch-up tick
// is emitted at start for the latest missed time, carrying how many earlier ones it stands for
// (like systemd's Persistent=true); with missed = "skip" they are dropped and the schedule
// resumes with the next future time. A tick that falls due while the agent runs but is
// delayed (backpressure) is emitted late, and ticks that fall due in the meantime are folded
// into it the same way.
package schedule

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // time zones without the system database (containers FROM scratch)

	"github.com/hashicorp/go-hclog"
	"github.com/robfig/cron/v3"

	"github.com/tda-dev/tda/sdk"
)

// Event fields of a tick.
const (
	FieldSchedule    = "schedule"
	FieldCron        = "cron"
	FieldTimezone    = "timezone"
	FieldScheduledAt = "scheduled_at"
	FieldLocalTime   = "local_time"
	FieldMissed      = "missed"
	FieldCatchUp     = "catch_up"
)

// checkpointKey holds the scheduled time of the last tick emitted (RFC 3339, UTC).
const checkpointKey = "last"

// maxCount bounds how many missed ticks are counted (an every-second schedule down for days).
const maxCount = 1_000_000

// Spec is the schedule source's config schema.
var Spec = &sdk.Spec{
	Summary: "Emits a tick event on a cron schedule in a time zone (e.g. for scheduled snapshots).",
	Description: "Each tick is an event of kind \"tick\" whose fields name the schedule (schedule, cron, " +
		"timezone), its scheduled time (scheduled_at, UTC; local_time in the time zone) and, for a " +
		"catch-up tick, how many earlier ticks it stands for (missed). The last tick is checkpointed, so " +
		"a restart neither loses nor repeats one.",
	Fields: []sdk.Field{
		{Name: "cron", Type: sdk.TypeString, Required: true,
			Description: "Cron expression: minute hour day-of-month month day-of-week, optionally preceded by seconds; or @hourly, @daily, @weekly, @monthly, @every 6h."},
		{Name: "timezone", Type: sdk.TypeString, Default: "UTC",
			Description: "IANA time zone the expression is read in, e.g. \"Europe/Paris\"."},
		{Name: "missed", Type: sdk.TypeString, Default: "once", Enum: []string{"once", "skip"},
			Description: "Ticks missed while the agent was down: \"once\" emits one catch-up tick at start, \"skip\" drops them."},
	},
	Example: `source "schedule" "nightly" {
  cron     = "0 3 * * *"
  timezone = "Europe/Paris"
}`,
}

// Component returns the schedule source.
func Component() sdk.Component {
	return sdk.SourceComponent("schedule", Spec, New)
}

var parser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// Source emits ticks.
type Source struct {
	name     string
	expr     string
	location *time.Location
	sched    cron.Schedule
	skip     bool
	log      hclog.Logger
}

// New builds the source from its config; it does no I/O.
func New(conf *sdk.Config, res sdk.Resources) (sdk.Source, error) {
	expr := strings.TrimSpace(conf.String("cron"))
	if strings.HasPrefix(expr, "TZ=") || strings.HasPrefix(expr, "CRON_TZ=") {
		return nil, conf.Errorf("cron", "set the time zone with the timezone attribute, not inside the expression")
	}
	loc, err := time.LoadLocation(conf.String("timezone"))
	if err != nil {
		return nil, conf.Errorf("timezone", "unknown time zone %q: use an IANA name such as \"UTC\" or \"Europe/Paris\"", conf.String("timezone"))
	}
	sched, err := parser.Parse(expr)
	if err != nil {
		return nil, conf.Errorf("cron", "invalid cron expression %q: %v", expr, err)
	}
	name := res.Instance
	if i := strings.LastIndexByte(name, '.'); i >= 0 {
		name = name[i+1:]
	}
	return &Source{name: name, expr: expr, location: loc, sched: sched, skip: conf.String("missed") == "skip",
		log: res.Logger}, nil
}

// Due returns the latest scheduled time in (last, now] and how many scheduled times that
// interval holds (0 when none is due). Times are computed in the schedule's time zone.
func Due(sched cron.Schedule, loc *time.Location, last, now time.Time) (time.Time, int) {
	var latest time.Time
	n := 0
	for t := sched.Next(last.In(loc)); !t.IsZero() && !t.After(now) && n < maxCount; t = sched.Next(t) {
		latest = t
		n++
	}
	return latest, n
}

// Run emits ticks until ctx ends.
func (s *Source) Run(ctx context.Context, out sdk.Output) error {
	var last time.Time
	if v, ok := out.Checkpoints()[checkpointKey]; ok {
		t, err := time.Parse(time.RFC3339Nano, string(v))
		if err != nil {
			s.log.Warn("ignoring unreadable checkpoint", "value", string(v), "error", err)
		} else {
			last = t
		}
	}
	start := time.Now()
	if last.IsZero() {
		last = start // first run: the schedule starts now, nothing is owed
	}
	startup, healthy := true, false
	for {
		now := time.Now()
		latest, due := Due(s.sched, s.location, last, now)
		if due == 0 {
			startup = false
			next := s.sched.Next(last.In(s.location))
			if next.IsZero() {
				out.SetStatus(sdk.Status{Healthy: true, Reason: "the schedule has no future time"})
				<-ctx.Done()
				return nil
			}
			if !healthy {
				out.SetStatus(sdk.Status{Healthy: true, Reason: fmt.Sprintf("ticking on %q in %s", s.expr, s.location)})
				healthy = true
			}
			s.log.Debug("next tick", "scheduled_at", next.UTC())
			timer := time.NewTimer(time.Until(next))
			select {
			case <-ctx.Done():
				timer.Stop()
				return nil
			case <-timer.C:
			}
			continue
		}
		missedWhileDown := startup && latest.Before(start)
		startup = false
		if missedWhileDown && s.skip {
			s.log.Info("ticks missed while the agent was down are skipped", "missed", due, "latest", latest.UTC())
			last = latest
			continue
		}
		ev := s.tick(latest, due-1, missedWhileDown)
		if missedWhileDown {
			s.log.Info("catching up on ticks missed while the agent was down", "missed", due, "scheduled_at", latest.UTC())
		} else if due > 1 {
			s.log.Warn("ticks were late; emitting the latest", "folded", due-1, "scheduled_at", latest.UTC())
		}
		if err := out.Emit(ctx, []sdk.Event{ev}, sdk.Checkpoint{Key: checkpointKey,
			Value: []byte(latest.UTC().Format(time.RFC3339Nano))}); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("emit tick: %w", err)
		}
		last = latest
	}
}

func (s *Source) tick(at time.Time, missed int, catchUp bool) sdk.Event {
	utc := at.UTC().Format(time.RFC3339Nano)
	fields := map[string]string{
		FieldSchedule:    s.name,
		FieldCron:        s.expr,
		FieldTimezone:    s.location.String(),
		FieldScheduledAt: utc,
		FieldLocalTime:   at.In(s.location).Format(time.RFC3339),
		FieldMissed:      strconv.Itoa(missed),
	}
	line := "tick schedule=" + s.name + " scheduled_at=" + utc
	if catchUp {
		fields[FieldCatchUp] = "true"
		line += " catch_up=true missed=" + strconv.Itoa(missed)
	}
	return sdk.Event{Kind: sdk.KindTick, Time: at.UTC(), Origin: s.name, Line: []byte(line), Fields: fields}
}
