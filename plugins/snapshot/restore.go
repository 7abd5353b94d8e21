package snapshot

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tda-dev/tda/plugins/snapshot/provider"
)

// ErrAborted is returned when the operator declines a confirmation.
var ErrAborted = errors.New("aborted: nothing was changed")

// RestoreOptions ask for a restore into a new cluster or database.
type RestoreOptions struct {
	// SnapshotID restores a snapshot; ToTime restores to a point in time (Aurora), or with
	// PostgreSQL the newest snapshot taken at or before it.
	SnapshotID string
	ToTime     time.Time
	// NewName is the cluster or database to create; never the protected one.
	NewName string
	// Confirm is shown the plan and returns whether to go ahead; nil goes ahead.
	Confirm func(RestorePlan) (bool, error)
}

// RestorePlan says what a restore will do before it starts.
type RestorePlan struct {
	Kind    string // aurora, postgres
	Source  string // protected cluster or database
	NewName string
	// Snapshot is set for snapshot restores; zero for point-in-time.
	Snapshot *provider.Snapshot
	ToTime   time.Time
	// RecoveryPoint is the moment whose data the new target will hold.
	RecoveryPoint time.Time
	// Note explains a substitution (e.g. PostgreSQL restoring the snapshot before ToTime).
	Note string
}

// RestoreReport is a finished restore.
type RestoreReport struct {
	Plan   RestorePlan
	Result provider.RestoreResult
	// Started is when the restore began (after confirmation).
	Started time.Time
	// RPO is what the restore could not bring back: Started minus the recovery point.
	RPO time.Duration
	// RTO is how long the restore took until the new target served connections.
	RTO time.Duration
}

// PlanRestore resolves what a restore would do, without changing anything.
func (m *Manager) PlanRestore(ctx context.Context, opt RestoreOptions) (RestorePlan, error) {
	plan := RestorePlan{Kind: m.prov.Kind(), Source: m.prov.Target(), NewName: opt.NewName, ToTime: opt.ToTime}
	if opt.NewName == "" {
		return plan, errors.New("name the new cluster or database with -to (restores never overwrite)")
	}
	if opt.NewName == m.prov.Target() {
		what := "cluster"
		if m.prov.Kind() == "postgres" {
			what = "database"
		}
		return plan, fmt.Errorf("-to %s is the protected %s itself: restores never overwrite; choose a new name", opt.NewName, what)
	}
	switch {
	case opt.SnapshotID != "" && !opt.ToTime.IsZero():
		return plan, errors.New("give either -snapshot or -to-time, not both")
	case opt.SnapshotID != "":
		if err := provider.ValidSnapshotID(opt.SnapshotID); err != nil {
			return plan, err
		}
		s, err := m.prov.Get(ctx, opt.SnapshotID)
		if err != nil {
			return plan, err
		}
		if !s.Available() {
			return plan, fmt.Errorf("snapshot %s is %s, not available: choose another from `tda snapshot list`", s.ID, s.Status)
		}
		plan.Snapshot, plan.RecoveryPoint = &s, s.Time
	case !opt.ToTime.IsZero():
		if m.prov.Capabilities().PointInTime {
			r, err := m.prov.RestorableRange(ctx)
			if err != nil {
				return plan, err
			}
			if opt.ToTime.Before(r.Earliest) || opt.ToTime.After(r.Latest) {
				return plan, fmt.Errorf("%s is outside the restorable window %s .. %s: choose a time inside it or a snapshot",
					opt.ToTime.UTC().Format(time.RFC3339), r.Earliest.Format(time.RFC3339), r.Latest.Format(time.RFC3339))
			}
			plan.RecoveryPoint = opt.ToTime.UTC()
			return plan, nil
		}
		s, err := m.newestBefore(ctx, opt.ToTime)
		if err != nil {
			return plan, err
		}
		plan.Snapshot, plan.RecoveryPoint = &s, s.Time
		plan.Note = fmt.Sprintf("%s has no point-in-time recovery: restoring snapshot %s, the newest taken at or before %s",
			m.prov.Kind(), s.ID, opt.ToTime.UTC().Format(time.RFC3339))
	default:
		return plan, errors.New("choose what to restore: -snapshot ID (see `tda snapshot list`) or -to-time RFC3339")
	}
	return plan, nil
}

func (m *Manager) newestBefore(ctx context.Context, t time.Time) (provider.Snapshot, error) {
	list, err := m.prov.List(ctx)
	if err != nil {
		return provider.Snapshot{}, err
	}
	provider.SortNewestFirst(list)
	for _, s := range list {
		if s.Available() && !s.Time.After(t) {
			return s, nil
		}
	}
	return provider.Snapshot{}, fmt.Errorf("no available snapshot was taken at or before %s: see `tda snapshot list`",
		t.UTC().Format(time.RFC3339))
}

// Restore plans, asks for confirmation, restores into the new target and measures RPO and RTO.
func (m *Manager) Restore(ctx context.Context, opt RestoreOptions) (RestoreReport, error) {
	plan, err := m.PlanRestore(ctx, opt)
	if err != nil {
		return RestoreReport{Plan: plan}, err
	}
	if opt.Confirm != nil {
		ok, err := opt.Confirm(plan)
		if err != nil {
			return RestoreReport{Plan: plan}, err
		}
		if !ok {
			return RestoreReport{Plan: plan}, ErrAborted
		}
	}
	req := provider.RestoreRequest{NewName: plan.NewName}
	if plan.Snapshot != nil {
		req.SnapshotID = plan.Snapshot.ID
	} else {
		req.ToTime = plan.ToTime
	}
	rep := RestoreReport{Plan: plan, Started: time.Now()}
	m.log.Info("restore started", "into", plan.NewName, "recovery_point", plan.RecoveryPoint)
	res, err := m.prov.Restore(ctx, req)
	rep.Result, rep.RTO = res, time.Since(rep.Started)
	if !res.RecoveryPoint.IsZero() {
		rep.Plan.RecoveryPoint = res.RecoveryPoint
	}
	rep.RPO = rep.Started.Sub(rep.Plan.RecoveryPoint)
	if err != nil {
		return rep, err
	}
	m.log.Info("restore finished", "into", plan.NewName, "rto", rep.RTO.String(), "rpo", rep.RPO.String())
	return rep, nil
}

// SuggestRestoreName proposes a name for a restore of the manager's target taken at now:
// <target>-restored-<yyyymmddthhmm> for Aurora, <target>_restored_<yyyymmddthhmm> for
// PostgreSQL (no hyphen to quote in SQL), within RDS's length limit.
func (m *Manager) SuggestRestoreName(now time.Time) string {
	sep := "-"
	if m.prov.Kind() == "postgres" {
		sep = "_"
	}
	suffix := sep + "restored" + sep + now.UTC().Format("20060102t1504")
	base := m.prov.Target()
	if room := provider.MaxIdentifierLength - len("-instance-1") - len(suffix); len(base) > room {
		base = strings.TrimRight(base[:room], "-_")
	}
	return base + suffix
}
