// Package retention decides which snapshots to keep: grandfather-father-son rules for scheduled
// snapshots with restic's semantics (keep the newest snapshot of each calendar day, ISO week and
// month in UTC, rules ORed, the oldest kept while a rule has slots left) and a keep-for age per
// trigger for the others. It never deletes a snapshot tda did not take, one that is not
// available, or the newest one.
package retention

import (
	"fmt"
	"time"

	"github.com/tda-dev/tda/plugins/snapshot/provider"
	"github.com/tda-dev/tda/sdk"
)

// Policy is a retention policy.
type Policy struct {
	// Daily, Weekly and Monthly are the GFS slots for scheduled snapshots (0 disables a rule).
	Daily, Weekly, Monthly int
	// KeepFor is how long snapshots of the other triggers are kept, by trigger; 0 (or a
	// missing trigger) keeps them forever.
	KeepFor map[string]time.Duration
}

// Default is 7 daily, 4 weekly, 3 monthly; anomaly and pre-migration snapshots for 30 days;
// manual snapshots forever.
func Default() Policy {
	return Policy{Daily: 7, Weekly: 4, Monthly: 3, KeepFor: map[string]time.Duration{
		provider.TriggerAnomaly:      30 * 24 * time.Hour,
		provider.TriggerPreMigration: 30 * 24 * time.Hour,
	}}
}

// Decision says whether one snapshot is kept and why.
type Decision struct {
	Snapshot provider.Snapshot
	Keep     bool
	// Reasons lists every rule that keeps the snapshot, or the one reason it goes.
	Reasons []string
}

// Options change how Apply treats snapshots that are not available.
type Options struct {
	// DeleteFailed deletes tda's failed snapshots (they hold nothing usable); providers that
	// can only delete available snapshots leave it false.
	DeleteFailed bool
}

// Reasons, as printed by `tda snapshot prune`.
const (
	ReasonDaily    = "daily snapshot"
	ReasonWeekly   = "weekly snapshot"
	ReasonMonthly  = "monthly snapshot"
	ReasonNewest   = "newest snapshot (never deleted)"
	ReasonExternal = "not created by tda (never deleted)"
)

type rule struct {
	count  int
	reason string
	bucket func(time.Time) int
	last   int
}

// Apply decides for every snapshot, given as taken of one target. Decisions come back newest
// first.
func Apply(snaps []provider.Snapshot, p Policy, now time.Time, opt Options) []Decision {
	sorted := append([]provider.Snapshot(nil), snaps...)
	provider.SortNewestFirst(sorted)
	out := make([]Decision, len(sorted))

	newest := -1
	var scheduled []int
	for i, s := range sorted {
		out[i].Snapshot = s
		if newest < 0 && s.Managed() && s.Available() {
			newest = i
		}
		if s.Managed() && s.Available() && s.Trigger() == provider.TriggerScheduled {
			scheduled = append(scheduled, i)
		}
	}

	// Scheduled snapshots: restic's ApplyPolicy over the available scheduled series.
	rules := []*rule{
		{count: p.Daily, reason: ReasonDaily, bucket: daily, last: -1},
		{count: p.Weekly, reason: ReasonWeekly, bucket: weekly, last: -1},
		{count: p.Monthly, reason: ReasonMonthly, bucket: monthly, last: -1},
	}
	for n, i := range scheduled {
		t := sorted[i].Time.UTC()
		for _, r := range rules {
			if r.count <= 0 {
				continue
			}
			b := r.bucket(t)
			if b != r.last || n == len(scheduled)-1 {
				r.last = b
				r.count--
				out[i].Keep = true
				out[i].Reasons = append(out[i].Reasons, r.reason)
			}
		}
	}

	for i := range out {
		d := &out[i]
		s := d.Snapshot
		switch {
		case !s.Managed():
			d.Keep, d.Reasons = true, []string{ReasonExternal}
		case s.Status == provider.StatusFailed && opt.DeleteFailed && i != newest:
			d.Keep, d.Reasons = false, []string{"failed: holds no usable data"}
		case !s.Available():
			d.Keep, d.Reasons = true, []string{notAvailableReason(s)}
		case s.Trigger() == provider.TriggerScheduled:
			if !d.Keep {
				d.Reasons = []string{fmt.Sprintf("not needed by keep_daily %d, keep_weekly %d, keep_monthly %d",
					p.Daily, p.Weekly, p.Monthly)}
			}
		default:
			d.Keep, d.Reasons = keepFor(s, p, now)
		}
		if i == newest && !d.Keep {
			d.Keep, d.Reasons = true, []string{ReasonNewest}
		}
	}
	return out
}

func notAvailableReason(s provider.Snapshot) string {
	switch s.Status {
	case provider.StatusCreating:
		return "still creating"
	case provider.StatusFailed:
		return "failed; only available snapshots can be deleted: check why, then delete it by hand"
	default:
		return fmt.Sprintf("status %s; only available snapshots are deleted", s.Status)
	}
}

func keepFor(s provider.Snapshot, p Policy, now time.Time) (bool, []string) {
	trigger := s.Trigger()
	known := false
	for _, t := range provider.Triggers {
		known = known || t == trigger
	}
	if !known {
		return true, []string{fmt.Sprintf("unknown trigger %q: kept", trigger)}
	}
	limit := p.KeepFor[trigger]
	if limit <= 0 {
		return true, []string{trigger + " snapshot, kept forever"}
	}
	age := now.Sub(s.Time)
	if age < limit {
		return true, []string{fmt.Sprintf("%s snapshot younger than %s", trigger, sdk.FormatDuration(limit))}
	}
	return false, []string{fmt.Sprintf("%s snapshot older than %s", trigger, sdk.FormatDuration(limit))}
}

// Bucket functions: calendar periods in UTC (never a local zone: DST would move snapshots
// between days).
func daily(t time.Time) int { return t.Year()*10000 + int(t.Month())*100 + t.Day() }

func weekly(t time.Time) int {
	y, w := t.ISOWeek()
	return y*100 + w
}

func monthly(t time.Time) int { return t.Year()*100 + int(t.Month()) }
