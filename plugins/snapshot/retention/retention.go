// Package retention decides which snapshots to keep: grandfather-father-son rules for scheduled
// snapshots with restic's semantics (keep the newest snapshot of each calendar day, ISO week and
// month in UTC, rules ORed, the oldest kept while a rule has slots left) and a keep-for age per
// trigger for the others. It never deletes a snapshot tda did not take, one that is not
// available, the newest one, or one pinned by an open incident: the newest available snapshot
// from before the incident began, which a restore of the incident would start from.
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
	// Open lists the incidents still open (not resolved): each pins its recovery snapshot.
	Open []Incident
}

// Incident is an open incident as retention sees it.
type Incident struct {
	// Name identifies the incident in the reasons ("mass_password_reset 3f9a1c0e5b7d2a64").
	Name string
	// Began is the time of the incident's first event.
	Began time.Time
}

// Pinned returns the index in snaps of the snapshot an incident that began at began pins: the
// newest available one taken strictly before began (one taken at began may already hold the
// first event), or -1 when there is none.
func Pinned(snaps []provider.Snapshot, began time.Time) int {
	best := -1
	for i, s := range snaps {
		if s.Available() && s.Time.Before(began) && (best < 0 || s.Time.After(snaps[best].Time)) {
			best = i
		}
	}
	return best
}

// Reasons, as printed by `tda snapshot prune`.
const (
	ReasonDaily    = "daily snapshot"
	ReasonWeekly   = "weekly snapshot"
	ReasonMonthly  = "monthly snapshot"
	ReasonNewest   = "newest snapshot (never deleted)"
	ReasonExternal = "not created by tda (never deleted)"
	// ReasonPinnedPrefix begins the reason of a snapshot an open incident pins.
	ReasonPinnedPrefix = "pinned by open incident "
)

// pinnedReason says which open incident pins a snapshot, and why.
func pinnedReason(in Incident) string {
	return fmt.Sprintf("%s%s (began %s): the last snapshot from before it, which its restore needs; kept until it is resolved",
		ReasonPinnedPrefix, in.Name, in.Began.UTC().Format(time.RFC3339))
}

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

	// Invariant: the recovery snapshot of every open incident is kept, whatever the rules
	// above decided; the reason names the incident (one kept anyway says it too, so that
	// nobody deletes it by hand). Only snapshots tda took are pinned: it never deletes the
	// others.
	var managed []provider.Snapshot
	var at []int
	for i, s := range sorted {
		if s.Managed() {
			managed, at = append(managed, s), append(at, i)
		}
	}
	for _, in := range opt.Open {
		j := Pinned(managed, in.Began)
		if j < 0 {
			continue
		}
		d := &out[at[j]]
		if !d.Keep {
			d.Keep, d.Reasons = true, nil
		}
		d.Reasons = append(d.Reasons, pinnedReason(in))
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
