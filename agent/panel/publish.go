package panel

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/tda-dev/tda/agent/ops"
)

// Publish writes the JSON files the GitHub-mode page reads (state.json, alerts.json,
// snapshots.json, migrations.json) into dir. A Pages site is public, so only what an outsider
// may see goes out: no log excerpts, alert keys (IPs, user names), origins, reasons or tags.
func Publish(ctx context.Context, o ops.Operations, dir string) error {
	st, err := o.State(ctx)
	if err != nil {
		return fmt.Errorf("state: %w", err)
	}
	alerts, err := o.Alerts(ctx, ops.AlertFilter{State: "open", Limit: 200})
	if err != nil {
		return fmt.Errorf("alerts: %w", err)
	}
	snaps, err := o.Snapshots(ctx)
	if err != nil {
		return fmt.Errorf("snapshots: %w", err)
	}
	migs, err := o.Migrations(ctx, ops.MigrationFilter{Limit: 50})
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	files := map[string]any{
		"state.json":      publicState(st),
		"alerts.json":     publicAlerts(alerts),
		"snapshots.json":  publicSnapshots(snaps),
		"migrations.json": publicMigrations(migs),
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for name, v := range files {
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return err
		}
		tmp := filepath.Join(dir, "."+name+".tmp")
		if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
			return err
		}
		if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
			return err
		}
	}
	return nil
}

func publicState(st ops.SystemState) ops.SystemState {
	out := ops.SystemState{Status: st.Status, Time: st.Time, Agent: st.Agent, PendingMigrations: st.PendingMigrations,
		Reasons: []string{}, Blocking: []ops.Incident{}, Acknowledged: []ops.Incident{}, Degraded: []string{}, Components: []ops.ComponentHealth{}}
	for _, in := range st.Blocking {
		out.Reasons = append(out.Reasons, fmt.Sprintf("%s incident %s (%s) is not acknowledged", in.Severity, in.ID, in.Rule))
	}
	for _, in := range st.Acknowledged {
		out.Reasons = append(out.Reasons, fmt.Sprintf("%s incident %s (%s) is acknowledged and not closed", in.Severity, in.ID, in.Rule))
	}
	if o := st.Override; o != nil {
		out.Reasons = append(out.Reasons, fmt.Sprintf("override declared by %s until %s", o.Actor, o.Until.Format(time.RFC3339)))
	}
	if len(st.Degraded) > 0 {
		out.Reasons = append(out.Reasons, fmt.Sprintf("%d component(s) degraded", len(st.Degraded)))
	}
	return out
}

func publicAlerts(list []ops.Incident) []ops.Incident {
	out := []ops.Incident{}
	for _, in := range list {
		p := ops.Incident{ID: in.ID, Status: in.Status, Fired: in.Fired, Fingerprint: in.Fingerprint, Rule: in.Rule, Severity: in.Severity, State: in.State,
			Count: in.Count, Threshold: in.Threshold, Window: in.Window, FirstSeen: in.FirstSeen, LastSeen: in.LastSeen,
			Updated: in.Updated, Explanation: in.Explanation, Records: in.Records, Excerpt: []string{}}
		if in.Ack != nil {
			p.Ack = &ops.Ack{Fingerprint: in.Fingerprint, By: in.Ack.By, At: in.Ack.At}
		}
		out = append(out, p)
	}
	return out
}

func publicSnapshots(list []ops.SnapshotTarget) []ops.SnapshotTarget {
	out := []ops.SnapshotTarget{}
	for _, t := range list {
		p := ops.SnapshotTarget{Name: t.Name, Kind: t.Kind, Target: t.Target, Tiers: []ops.SnapshotTier{}}
		if t.Error != "" {
			p.Error = "the target could not be listed"
		}
		for _, tier := range t.Tiers {
			pt := ops.SnapshotTier{Name: tier.Name, Newest: tier.Newest, RPOSeconds: tier.RPOSeconds, RPO: tier.RPO,
				Earliest: tier.Earliest, Snapshots: []ops.SnapshotInfo{}}
			for _, s := range tier.Snapshots {
				pt.Snapshots = append(pt.Snapshots, ops.SnapshotInfo{ID: s.ID, Target: s.Target, Time: s.Time,
					Status: s.Status, Trigger: s.Trigger, Keep: s.Keep})
			}
			p.Tiers = append(p.Tiers, pt)
		}
		if r := t.LastRestore; r != nil {
			p.LastRestore = &ops.Restore{ID: r.ID, Target: r.Target, Source: r.Source, NewName: r.NewName, By: r.By,
				Started: r.Started, Finished: r.Finished, Status: r.Status, RecoveryPoint: r.RecoveryPoint,
				RPOSeconds: r.RPOSeconds, RTOSeconds: r.RTOSeconds}
		}
		out = append(out, p)
	}
	return out
}

func publicMigrations(list []ops.Migration) []ops.Migration {
	out := []ops.Migration{}
	for _, m := range list {
		p := ops.Migration{ID: m.ID, Name: m.Name, RequestedBy: m.RequestedBy, RequestedAt: m.RequestedAt,
			Status: m.Status, DecidedBy: m.DecidedBy, DecidedAt: m.DecidedAt, ValidUntil: m.ValidUntil}
		for _, r := range m.Runs {
			p.Runs = append(p.Runs, ops.MigrationRun{By: r.By, Started: r.Started, Finished: r.Finished,
				Snapshot: r.Snapshot, Outcome: r.Outcome})
		}
		out = append(out, p)
	}
	return out
}
