package control

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/hcl/v2"

	"github.com/tda-dev/tda/agent/config"
	"github.com/tda-dev/tda/agent/ops"
	"github.com/tda-dev/tda/plugins/snapshot"
	"github.com/tda-dev/tda/plugins/snapshot/provider"
	"github.com/tda-dev/tda/sdk"
)

// SnapshotSettings decodes a `sink "snapshot"` block in-process with the sink's own spec, as
// the sink itself would (no plugin binary is needed), with app_version falling back to the
// agent block's.
func SnapshotSettings(cfg *config.Config, comp *config.Component, log hclog.Logger) (snapshot.Settings, hcl.Diagnostics) {
	diags := cfg.Decode(comp, snapshot.Spec)
	if diags.HasErrors() {
		return snapshot.Settings{}, diags
	}
	conf, sd := sdk.ParseConfig(snapshot.Spec, comp.Config)
	if sd.HasErrors() {
		return snapshot.Settings{}, append(diags, cfg.Positioned(comp, snapshot.Spec, sd)...)
	}
	settings, err := snapshot.ParseSettings(conf, sdk.Resources{Logger: log, Instance: comp.Address(),
		DataDir: cfg.InstanceDataDir(comp)})
	if err != nil {
		var d *sdk.Diagnostic
		if errors.As(err, &d) {
			return settings, append(diags, cfg.Positioned(comp, snapshot.Spec, sdk.Diagnostics{d})...)
		}
		return settings, append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid snapshot block",
			Detail: err.Error(), Subject: comp.DefRange.Ptr()})
	}
	if settings.AppVersion == "" && os.Getenv(snapshot.AppVersionEnv) == "" {
		settings.AppVersion = cfg.Agent.AppVersion
	}
	return settings, diags
}

// snapshotTargets reads every snapshot sink block; their providers are opened on first use.
func snapshotTargets(cfg *config.Config, log hclog.Logger) (*snapshotSet, hcl.Diagnostics) {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	set := &snapshotSet{log: log, managers: map[string]*snapshot.Manager{}, where: map[string]string{}}
	var diags hcl.Diagnostics
	for _, c := range cfg.Components {
		if c.Kind != sdk.KindSink || c.Type != "snapshot" {
			continue
		}
		s, d := SnapshotSettings(cfg, c, log.Named(c.Address()))
		diags = append(diags, d...)
		if !d.HasErrors() {
			set.targets = append(set.targets, s)
			set.where[s.Name] = fmt.Sprintf("sink \"snapshot\" %q, %s:%d", c.Name, c.DefRange.Filename, c.DefRange.Start.Line)
		}
	}
	sort.Slice(set.targets, func(i, j int) bool { return set.targets[i].Name < set.targets[j].Name })
	if len(set.targets) == 0 {
		return nil, diags
	}
	return set, diags
}

// snapshotSet is ops.Snapshots over the snapshot package's Manager, the code behind the
// snapshot sink and `tda snapshot`.
type snapshotSet struct {
	targets []snapshot.Settings
	log     hclog.Logger
	// where locates each target's block in the config, for what-to-fix messages.
	where map[string]string

	mu       sync.Mutex
	managers map[string]*snapshot.Manager
}

var _ ops.Snapshots = (*snapshotSet)(nil)

func protected(s snapshot.Settings) (kind, name string) {
	if s.Aurora != nil {
		return "aurora", s.Aurora.Cluster
	}
	if s.MySQL != nil {
		return "mysql", s.MySQL.Database
	}
	return "postgres", s.Postgres.Database
}

func (s *snapshotSet) find(target string) (snapshot.Settings, error) {
	var names []string
	for _, t := range s.targets {
		names = append(names, t.Name)
		if t.Name == target {
			return t, nil
		}
	}
	if target == "" {
		if len(s.targets) == 1 {
			return s.targets[0], nil
		}
		return snapshot.Settings{}, &ops.Error{Kind: ops.KindInvalid,
			Message: fmt.Sprintf("several snapshot targets (%s): say which", strings.Join(names, ", "))}
	}
	return snapshot.Settings{}, &ops.Error{Kind: ops.KindNotFound,
		Message: fmt.Sprintf("no snapshot target %q; the config has %s", target, strings.Join(names, ", "))}
}

// manager opens the target's provider once and keeps it: a snapshot started in the
// background (pg_dump) belongs to it until Close.
func (s *snapshotSet) manager(ctx context.Context, t snapshot.Settings) (*snapshot.Manager, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if m, ok := s.managers[t.Name]; ok {
		return m, nil
	}
	m, err := snapshot.Open(ctx, t, s.log.Named("sink.snapshot."+t.Name))
	if err != nil {
		return nil, err
	}
	s.managers[t.Name] = m
	return m, nil
}

// Close releases the providers, waiting for their background work until ctx ends.
func (s *snapshotSet) Close(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for name, m := range s.managers {
		if err := m.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("snapshot target %s: %w", name, err))
		}
		delete(s.managers, name)
	}
	return errors.Join(errs...)
}

// List implements ops.Snapshots.
func (s *snapshotSet) List(ctx context.Context) ([]ops.SnapshotTarget, error) {
	out := []ops.SnapshotTarget{}
	for _, t := range s.targets {
		kind, name := protected(t)
		st := ops.SnapshotTarget{Name: t.Name, Kind: kind, Target: name, Tiers: []ops.SnapshotTier{}}
		m, err := s.manager(ctx, t)
		if err == nil {
			var l snapshot.Listing
			l, err = m.List(ctx)
			st.Warnings = l.Warnings
			for _, tier := range l.Tiers {
				ot := ops.SnapshotTier{Name: tier.Name, Newest: tier.Newest, RPOSeconds: tier.RPO.Seconds(),
					Snapshots: []ops.SnapshotInfo{}}
				if !tier.Newest.IsZero() {
					ot.RPO = snapshot.Age(tier.RPO)
				}
				if tier.Window != nil {
					ot.Earliest = tier.Window.Earliest
				}
				for _, d := range tier.Snapshots {
					ot.Snapshots = append(ot.Snapshots, snapshotInfo(d.Snapshot, d.Keep, strings.Join(d.Reasons, "; ")))
				}
				st.Tiers = append(st.Tiers, ot)
			}
		}
		if err != nil {
			st.Error = err.Error()
		}
		out = append(out, st)
	}
	return out, nil
}

func snapshotInfo(p provider.Snapshot, keep bool, why string) ops.SnapshotInfo {
	return ops.SnapshotInfo{ID: p.ID, Target: p.Target, Time: p.Time, Status: p.Status, Trigger: p.Trigger(),
		Tags: p.Tags, Keep: keep, Why: why}
}

// ValidID implements ops.Snapshots with the rule every snapshot provider applies.
func (s *snapshotSet) ValidID(id string) error { return provider.ValidSnapshotID(id) }

// Resolve implements ops.Snapshots.
func (s *snapshotSet) Resolve(_ context.Context, target string) (string, string, error) {
	t, err := s.find(target)
	if err != nil {
		return "", "", err
	}
	_, name := protected(t)
	return t.Name, name, nil
}

// Create implements ops.Snapshots: a manual snapshot, returned once its recovery point is
// fixed (it may still be creating).
func (s *snapshotSet) Create(ctx context.Context, target string) (ops.SnapshotInfo, error) {
	t, err := s.find(target)
	if err != nil {
		return ops.SnapshotInfo{}, err
	}
	m, err := s.manager(ctx, t)
	if err != nil {
		return ops.SnapshotInfo{}, err
	}
	snap, err := m.Create(ctx, snapshot.CreateOptions{Trigger: provider.TriggerManual})
	if err != nil {
		return ops.SnapshotInfo{}, err
	}
	return snapshotInfo(snap, true, ""), nil
}

// Restore implements ops.Snapshots.
func (s *snapshotSet) Restore(ctx context.Context, req ops.RestoreRequest) (ops.Restore, error) {
	t, err := s.find(req.Target)
	if err != nil {
		return ops.Restore{}, err
	}
	m, err := s.manager(ctx, t)
	if err != nil {
		return ops.Restore{}, err
	}
	rep, err := m.Restore(ctx, snapshot.RestoreOptions{SnapshotID: req.SnapshotID, ToTime: req.ToTime, NewName: req.NewName})
	out := ops.Restore{RecoveryPoint: rep.Plan.RecoveryPoint, RPOSeconds: rep.RPO.Seconds(), RTOSeconds: rep.RTO.Seconds(),
		Endpoint: rep.Result.Endpoint}
	if err == nil {
		out.Connection = RestoreConnection(t, req.NewName, rep.Result)
	}
	return out, err
}
