package retention

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tda-dev/tda/plugins/snapshot/provider"
)

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

// snap is a snapshot tda took; its ID is its time in RFC 3339 (in the time's own zone).
func snap(trigger string, t time.Time) provider.Snapshot {
	return provider.Snapshot{ID: t.Format(time.RFC3339), Time: t, Status: provider.StatusAvailable,
		Tags: map[string]string{provider.TagTrigger: trigger, provider.TagCreatedBy: provider.CreatedByTDA}}
}

func scheduled(times ...time.Time) []provider.Snapshot {
	var out []provider.Snapshot
	for _, t := range times {
		out = append(out, snap(provider.TriggerScheduled, t))
	}
	return out
}

// everyDay returns one time a day at hh:mm UTC from first to last inclusive.
func everyDay(first, last string, hhmm string) []time.Time {
	var out []time.Time
	for d := at(first + "T00:00:00Z"); !d.After(at(last + "T00:00:00Z")); d = d.AddDate(0, 0, 1) {
		out = append(out, at(d.Format("2006-01-02")+"T"+hhmm+":00Z"))
	}
	return out
}

func days(month string, ds ...int) []time.Time {
	var out []time.Time
	for _, d := range ds {
		out = append(out, at(fmt.Sprintf("%s-%02dT03:00:00Z", month, d)))
	}
	return out
}

func ids(times ...time.Time) []string {
	var out []string
	for _, t := range times {
		out = append(out, t.Format(time.RFC3339))
	}
	return out
}

func kept(ds []Decision) []string {
	var out []string
	for _, d := range ds {
		if d.Keep {
			out = append(out, d.Snapshot.ID)
		}
	}
	slices.Sort(out)
	return out
}

func TestApplyScheduledGFS(t *testing.T) {
	std := Policy{Daily: 7, Weekly: 4, Monthly: 3}
	paris, _ := time.LoadLocation("Europe/Paris")
	newYork, _ := time.LoadLocation("America/New_York")

	var severalPerDay []time.Time
	for _, d := range everyDay("2025-12-01", "2025-12-10", "00:00") {
		for _, h := range []int{1, 9, 17} {
			severalPerDay = append(severalPerDay, d.Add(time.Duration(h)*time.Hour))
		}
	}

	tests := []struct {
		name   string
		policy Policy
		snaps  []provider.Snapshot
		want   []string
	}{
		{
			// 365 daily snapshots ending on Wednesday 2025-12-31 (ISO week 2026-W01):
			// 7 dailies, the Sundays closing W52, W51, W50, and the month ends of Nov and Oct.
			name: "a year of daily snapshots", policy: std,
			snaps: scheduled(everyDay("2025-01-01", "2025-12-31", "03:00")...),
			want: ids(append(days("2025-12", 25, 26, 27, 28, 29, 30, 31, 21, 14),
				at("2025-11-30T03:00:00Z"), at("2025-10-31T03:00:00Z"))...),
		},
		{
			// Empty days do not use up slots: the 7 dailies reach back to November.
			name: "gaps", policy: std,
			snaps: scheduled(append(days("2025-12", 1, 2, 5, 10, 20, 31),
				at("2025-11-15T03:00:00Z"), at("2025-10-03T03:00:00Z"), at("2025-09-09T03:00:00Z"),
				at("2025-08-08T03:00:00Z"))...),
			want: ids(append(days("2025-12", 1, 2, 5, 10, 20, 31),
				at("2025-11-15T03:00:00Z"), at("2025-10-03T03:00:00Z"))...),
		},
		{
			// The newest of each day wins; weekly and monthly still have slots at the end of
			// the history, so the oldest snapshot is kept as well (restic#3624).
			name: "several per day", policy: std,
			snaps: scheduled(severalPerDay...),
			want: ids(at("2025-12-04T17:00:00Z"), at("2025-12-05T17:00:00Z"), at("2025-12-06T17:00:00Z"),
				at("2025-12-07T17:00:00Z"), at("2025-12-08T17:00:00Z"), at("2025-12-09T17:00:00Z"),
				at("2025-12-10T17:00:00Z"), at("2025-12-01T01:00:00Z")),
		},
		{
			// Local times just after midnight in Paris are the previous day in UTC: 00:30 and
			// 23:30 (previous local day) share the UTC day 2025-12-09, whose newest is kept.
			name: "around midnight east of UTC", policy: Policy{Daily: 2},
			snaps: scheduled(
				time.Date(2025, 12, 10, 23, 30, 0, 0, paris), // 2025-12-10T22:30Z
				time.Date(2025, 12, 10, 0, 30, 0, 0, paris),  // 2025-12-09T23:30Z
				time.Date(2025, 12, 9, 23, 30, 0, 0, paris),  // 2025-12-09T22:30Z
				time.Date(2025, 12, 9, 0, 30, 0, 0, paris),   // 2025-12-08T23:30Z
			),
			want: []string{"2025-12-10T00:30:00+01:00", "2025-12-10T23:30:00+01:00"},
		},
		{
			// Sunday 20:00 in New York is Monday 01:00 UTC: a new ISO week in UTC.
			name: "week boundary west of UTC", policy: Policy{Weekly: 2},
			snaps: scheduled(
				time.Date(2025, 12, 14, 20, 0, 0, 0, newYork), // Mon 2025-12-15T01:00Z, W51
				time.Date(2025, 12, 14, 10, 0, 0, 0, newYork), // Sun 2025-12-14T15:00Z, W50
				time.Date(2025, 12, 13, 10, 0, 0, 0, newYork), // Sat, W50
				time.Date(2025, 12, 6, 10, 0, 0, 0, newYork),  // Sat, W49
			),
			// W51's only snapshot, W50's newest, and nothing else: two slots.
			want: []string{"2025-12-14T10:00:00-05:00", "2025-12-14T20:00:00-05:00"},
		},
		{
			name: "young history", policy: std,
			snaps: scheduled(days("2025-12", 29, 30, 31)...),
			want:  ids(days("2025-12", 29, 30, 31)...),
		},
		{
			// One snapshot fills the daily, weekly and monthly slot at once.
			name: "one snapshot", policy: std,
			snaps: scheduled(days("2025-12", 31)...),
			want:  ids(days("2025-12", 31)...),
		},
		{
			name: "all rules off still keeps the newest", policy: Policy{},
			snaps: scheduled(days("2025-12", 29, 30, 31)...),
			want:  ids(days("2025-12", 31)...),
		},
		{
			// Monthly only: the newest of each of the last 3 months with a snapshot.
			name: "monthly only", policy: Policy{Monthly: 3},
			snaps: scheduled(everyDay("2025-06-01", "2025-09-10", "03:00")...),
			want:  ids(at("2025-09-10T03:00:00Z"), at("2025-08-31T03:00:00Z"), at("2025-07-31T03:00:00Z")),
		},
		{
			// ISO week 2026-W01 starts on Monday 2025-12-29: 2025-12-28 and 2025-12-29 are in
			// different weeks, 2025-12-29 and 2026-01-01 in the same one.
			name: "ISO week across the new year", policy: Policy{Weekly: 3},
			snaps: scheduled(at("2026-01-01T03:00:00Z"), at("2025-12-29T03:00:00Z"),
				at("2025-12-28T03:00:00Z"), at("2025-12-22T03:00:00Z"), at("2025-12-21T03:00:00Z")),
			want: ids(at("2026-01-01T03:00:00Z"), at("2025-12-28T03:00:00Z"), at("2025-12-21T03:00:00Z")),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := kept(Apply(tt.snaps, tt.policy, at("2026-01-02T00:00:00Z"), Options{}))
			want := append([]string(nil), tt.want...)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Fatalf("kept\n  %v\nwant\n  %v", got, want)
			}
		})
	}
}

func TestApplyReasons(t *testing.T) {
	ds := Apply(scheduled(everyDay("2025-01-01", "2025-12-31", "03:00")...),
		Policy{Daily: 7, Weekly: 4, Monthly: 3}, at("2026-01-01T00:00:00Z"), Options{})
	if len(ds) != 365 || ds[0].Snapshot.ID != "2025-12-31T03:00:00Z" {
		t.Fatalf("decisions not newest first: %d, first %s", len(ds), ds[0].Snapshot.ID)
	}
	want := map[string]string{
		"2025-12-31T03:00:00Z": "daily snapshot, weekly snapshot, monthly snapshot",
		"2025-12-28T03:00:00Z": "daily snapshot, weekly snapshot",
		"2025-11-30T03:00:00Z": "monthly snapshot",
		"2025-12-24T03:00:00Z": "not needed by keep_daily 7, keep_weekly 4, keep_monthly 3",
	}
	for _, d := range ds {
		if w, ok := want[d.Snapshot.ID]; ok {
			if got := strings.Join(d.Reasons, ", "); got != w {
				t.Errorf("%s: reasons %q, want %q", d.Snapshot.ID, got, w)
			}
		}
	}
}

func TestApplyOtherTriggersAndSafety(t *testing.T) {
	now := at("2026-01-31T12:00:00Z")
	ago := func(d time.Duration) time.Time { return now.Add(-d) }
	day := 24 * time.Hour
	external := provider.Snapshot{ID: "aws-backup-1", Time: ago(400 * day), Status: provider.StatusAvailable,
		Tags: map[string]string{"owner": "backup-team"}}
	creating := snap(provider.TriggerScheduled, ago(time.Minute))
	creating.ID, creating.Status = "creating", provider.StatusCreating
	failed := snap(provider.TriggerAnomaly, ago(50*day))
	failed.ID, failed.Status = "failed", provider.StatusFailed
	oldAnomaly := snap(provider.TriggerAnomaly, ago(40*day))
	oldAnomaly.ID = "old-anomaly"
	newAnomaly := snap(provider.TriggerAnomaly, ago(2*day))
	newAnomaly.ID = "new-anomaly"
	oldMigration := snap(provider.TriggerPreMigration, ago(20*day))
	oldMigration.ID = "old-migration"
	newMigration := snap(provider.TriggerPreMigration, ago(3*day))
	newMigration.ID = "new-migration"
	manual := snap(provider.TriggerManual, ago(300*day))
	manual.ID = "manual"
	policy := Policy{Daily: 7, Weekly: 4, Monthly: 3, KeepFor: map[string]time.Duration{
		provider.TriggerAnomaly: 30 * day, provider.TriggerPreMigration: 14 * day}}

	tests := []struct {
		name  string
		snaps []provider.Snapshot
		opt   Options
		want  map[string]string // id -> "keep: reason" or "delete: reason"
	}{
		{
			name:  "keep-for per trigger, external and unavailable snapshots",
			snaps: []provider.Snapshot{external, creating, failed, oldAnomaly, newAnomaly, oldMigration, newMigration, manual},
			want: map[string]string{
				"aws-backup-1":  "keep: " + ReasonExternal,
				"creating":      "keep: still creating",
				"failed":        "keep: failed; only available snapshots can be deleted: check why, then delete it by hand",
				"old-anomaly":   "delete: anomaly snapshot older than 30d",
				"new-anomaly":   "keep: anomaly snapshot younger than 30d",
				"old-migration": "delete: pre-migration snapshot older than 14d",
				"new-migration": "keep: pre-migration snapshot younger than 14d",
				"manual":        "keep: manual snapshot, kept forever",
			},
		},
		{
			name:  "failed snapshots deleted where the provider can",
			snaps: []provider.Snapshot{failed, newAnomaly},
			opt:   Options{DeleteFailed: true},
			want: map[string]string{
				"failed":      "delete: failed: holds no usable data",
				"new-anomaly": "keep: anomaly snapshot younger than 30d",
			},
		},
		{
			// The only available snapshot tda took is past its keep-for age: it stays.
			name:  "newest is never deleted",
			snaps: []provider.Snapshot{external, creating, oldAnomaly},
			want: map[string]string{
				"aws-backup-1": "keep: " + ReasonExternal,
				"creating":     "keep: still creating",
				"old-anomaly":  "keep: " + ReasonNewest,
			},
		},
		{
			// Scheduled retention counts only scheduled snapshots: an anomaly snapshot on the
			// same day does not take the daily slot.
			name: "series are not mixed",
			snaps: []provider.Snapshot{
				func() provider.Snapshot {
					s := snap(provider.TriggerAnomaly, ago(time.Hour))
					s.ID = "anomaly-today"
					return s
				}(),
				func() provider.Snapshot {
					s := snap(provider.TriggerScheduled, ago(2*time.Hour))
					s.ID = "sched-today"
					return s
				}(),
			},
			want: map[string]string{
				"anomaly-today": "keep: anomaly snapshot younger than 30d",
				"sched-today":   "keep: daily snapshot, weekly snapshot, monthly snapshot",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ds := Apply(tt.snaps, policy, now, tt.opt)
			if len(ds) != len(tt.want) {
				t.Fatalf("%d decisions, want %d", len(ds), len(tt.want))
			}
			for _, d := range ds {
				verdict := "delete: "
				if d.Keep {
					verdict = "keep: "
				}
				got := verdict + strings.Join(d.Reasons, ", ")
				if got != tt.want[d.Snapshot.ID] {
					t.Errorf("%s: %q, want %q", d.Snapshot.ID, got, tt.want[d.Snapshot.ID])
				}
			}
		})
	}
}

// An open incident pins the newest available snapshot tda took from before it began: hourly
// snapshots on one day keep only the newest by keep_daily, so without the pin the 10:00
// snapshot, the last before a 10:40 incident, would go when 11:00 is taken.
func TestApplyPinsTheRecoverySnapshotOfOpenIncidents(t *testing.T) {
	hourly := func(from, to int) []provider.Snapshot {
		var out []provider.Snapshot
		for h := from; h <= to; h++ {
			out = append(out, snap(provider.TriggerScheduled, at(fmt.Sprintf("2026-03-02T%02d:00:00Z", h))))
		}
		return out
	}
	now := at("2026-03-02T12:30:00Z")
	policy := Policy{Daily: 1}
	reset := Incident{Name: "mass_password_reset 3f9a1c0e5b7d2a64", Began: at("2026-03-02T10:40:00Z")}
	deletion := Incident{Name: "bulk_deletion 77aa", Began: at("2026-03-02T08:00:00Z")} // on the hour: 07:00 is the one before
	creating := snap(provider.TriggerScheduled, at("2026-03-02T10:30:00Z"))
	creating.ID, creating.Status = "creating", provider.StatusCreating
	external := provider.Snapshot{ID: "aws-backup", Time: at("2026-03-02T10:35:00Z"), Status: provider.StatusAvailable}
	anomaly := snap(provider.TriggerAnomaly, at("2026-03-02T10:39:00Z"))
	anomaly.ID = "anomaly"
	pinned := func(in Incident) string { return "keep: " + pinnedReason(in) }
	tests := []struct {
		name  string
		snaps []provider.Snapshot
		open  []Incident
		want  map[string]string // verdicts of the snapshots named; the others are deleted
	}{
		{"no open incident: only the newest of the day", hourly(6, 12), nil,
			map[string]string{"2026-03-02T12:00:00Z": "keep: daily snapshot"}},
		{"the last snapshot before the incident is pinned", hourly(6, 12), []Incident{reset},
			map[string]string{"2026-03-02T10:00:00Z": pinned(reset)}},
		{"one taken when the first event happened is not from before it", hourly(6, 12), []Incident{deletion},
			map[string]string{"2026-03-02T07:00:00Z": pinned(deletion)}},
		{"two incidents pin two snapshots", hourly(6, 12), []Incident{reset, deletion},
			map[string]string{"2026-03-02T10:00:00Z": pinned(reset), "2026-03-02T07:00:00Z": pinned(deletion)}},
		{"not available and not tda's: the newest available one of tda's is pinned",
			append(hourly(6, 12), creating, external), []Incident{reset},
			map[string]string{"2026-03-02T10:00:00Z": pinned(reset), "creating": "keep: still creating", "aws-backup": "keep: " + ReasonExternal}},
		{"any trigger: an anomaly snapshot just before the incident is the one", append(hourly(6, 12), anomaly), []Incident{reset},
			map[string]string{"anomaly": "keep: anomaly snapshot younger than 30d, " + pinnedReason(reset)}},
		{"a snapshot kept anyway says it is pinned too", hourly(6, 10), []Incident{{Name: "late", Began: at("2026-03-02T11:00:00Z")}},
			map[string]string{"2026-03-02T10:00:00Z": "keep: daily snapshot, " + pinnedReason(Incident{Name: "late", Began: at("2026-03-02T11:00:00Z")})}},
		{"nothing from before the incident: nothing pinned", hourly(11, 12), []Incident{reset},
			map[string]string{"2026-03-02T12:00:00Z": "keep: daily snapshot"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := policy
			p.KeepFor = map[string]time.Duration{provider.TriggerAnomaly: 30 * 24 * time.Hour}
			ds := Apply(tt.snaps, p, now, Options{Open: tt.open})
			for _, d := range ds {
				verdict := "delete: "
				if d.Keep {
					verdict = "keep: "
				}
				got := verdict + strings.Join(d.Reasons, ", ")
				want, named := tt.want[d.Snapshot.ID]
				switch {
				case named && got != want:
					t.Errorf("%s: %q, want %q", d.Snapshot.ID, got, want)
				case !named && d.Keep && d.Snapshot.ID != "2026-03-02T12:00:00Z":
					t.Errorf("%s: %q, want it deleted", d.Snapshot.ID, got)
				}
			}
		})
	}
}

// Property: whatever the policy, the order the provider lists snapshots in and the open
// incidents, every open incident's recovery snapshot is kept and says so, the decisions do not
// depend on the order, and an incident only ever adds keeps.
func TestApplyPinsHoldWhateverThePolicyAndOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	now := at("2026-06-30T00:00:00Z")
	triggers := []string{provider.TriggerScheduled, provider.TriggerScheduled, provider.TriggerAnomaly, provider.TriggerManual, provider.TriggerPreMigration}
	for round := 0; round < 300; round++ {
		var snaps []provider.Snapshot
		for i := 0; i < 1+rng.IntN(40); i++ {
			s := snap(triggers[rng.IntN(len(triggers))], now.Add(-time.Duration(rng.Int64N(int64(120*24*time.Hour)))))
			s.ID = fmt.Sprintf("s%02d", i)
			if rng.IntN(10) == 0 {
				s.Status = provider.StatusCreating
			}
			snaps = append(snaps, s)
		}
		p := Policy{Daily: rng.IntN(4), Weekly: rng.IntN(3), Monthly: rng.IntN(3),
			KeepFor: map[string]time.Duration{provider.TriggerAnomaly: time.Duration(rng.IntN(60)) * 24 * time.Hour}}
		var open []Incident
		for i := 0; i < rng.IntN(4); i++ {
			open = append(open, Incident{Name: fmt.Sprint("incident-", i), Began: now.Add(-time.Duration(rng.Int64N(int64(130 * 24 * time.Hour))))})
		}
		base := verdicts(Apply(snaps, p, now, Options{}))
		got := verdicts(Apply(snaps, p, now, Options{Open: open}))
		shuffled := append([]provider.Snapshot(nil), snaps...)
		rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		if again := verdicts(Apply(shuffled, p, now, Options{Open: open})); !maps.Equal(got, again) {
			t.Fatalf("round %d: the order changed the decisions:\n%v\n%v", round, got, again)
		}
		for id, v := range base {
			if strings.HasPrefix(v, "keep") && !strings.HasPrefix(got[id], "keep") {
				t.Fatalf("round %d: %s was kept without incidents (%s) and not with them (%s)", round, id, v, got[id])
			}
		}
		for _, in := range open {
			j := Pinned(snaps, in.Began)
			if j < 0 {
				continue
			}
			if v := got[snaps[j].ID]; !strings.HasPrefix(v, "keep") || !strings.Contains(v, pinnedReason(in)) {
				t.Fatalf("round %d: %s, the last snapshot before %s, is %q", round, snaps[j].ID, in.Name, v)
			}
		}
	}
}

func verdicts(ds []Decision) map[string]string {
	out := map[string]string{}
	for _, d := range ds {
		v := "delete: "
		if d.Keep {
			v = "keep: "
		}
		out[d.Snapshot.ID] = v + strings.Join(d.Reasons, ", ")
	}
	return out
}
