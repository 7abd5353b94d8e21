package snapshot

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/tda-dev/tda/plugins/snapshot/provider"
	"github.com/tda-dev/tda/sdk"
	"github.com/tda-dev/tda/sdk/snapshotapi"
)

// The operator actions of the snapshot sink (sdk/snapshotapi): `tda snapshot`, `tda
// restore`, `tda repair`, `tda migrate run` and the control panel reach the provider
// through them, so the agent links none of the providers' code. Each action works on the
// sink instance the agent configured from the block; the ones that reach the provider start
// it first (Starts), which opens the provider as the running sink does.
func actions() []sdk.Action {
	return []sdk.Action{
		{Name: snapshotapi.ActionTarget, Summary: "name the protected cluster or database (no connection)", Run: runTarget},
		{Name: snapshotapi.ActionCreate, Summary: "take a snapshot now (tda snapshot create)", Starts: true, Run: runCreate},
		{Name: snapshotapi.ActionList, Summary: "list the snapshots by tier with their RPO (tda snapshot list)", Starts: true, Run: runList},
		{Name: snapshotapi.ActionPrune, Summary: "apply the retention policy (tda snapshot prune)", Starts: true, Run: runPrune},
		{Name: snapshotapi.ActionProbe, Summary: "check tools, credentials and places without changing anything", Starts: true, Run: runProbe},
		{Name: snapshotapi.ActionRestorePlan, Summary: "what a restore would do (tda restore, before it asks)", Starts: true, Run: runRestorePlan},
		{Name: snapshotapi.ActionRestoreApply, Summary: "restore into a new database (tda restore)", Starts: true, Run: runRestoreApply},
		{Name: snapshotapi.ActionRepairPlan, Summary: "compare the damaged rows with a restored copy (tda repair)", Run: runRepairPlan},
		{Name: snapshotapi.ActionRepairApply, Summary: "pre-repair snapshot, then write the plan in one transaction (tda repair -apply)", Starts: true, Run: runRepairApply},
		{Name: snapshotapi.ActionMigrationRecord, Summary: "keep a migration's outcome beside its snapshots (tda migrate run)", Run: runMigrationRecord},
	}
}

// sinkOf is the sink an action was called on, started when the action asked for it.
func sinkOf(component any, started bool) (*Sink, error) {
	s, ok := component.(*Sink)
	if !ok {
		return nil, fmt.Errorf("the snapshot actions run on the snapshot sink, not %T", component)
	}
	if started && s.mgr == nil {
		return nil, errors.New("the snapshot sink was not started")
	}
	return s, nil
}

// decode reads an action's JSON arguments (none is the zero value).
func decode(req sdk.ActionRequest, v any) error {
	if len(bytes.TrimSpace(req.Args)) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(req.Args))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return sdk.ActionInvalid("malformed arguments: %v", err)
	}
	return nil
}

// kinded gives a provider's error the action error kind of its class, keeping its text.
func kinded(err error) error {
	if err == nil || sdk.ActionErrorKindOf(err) != "" {
		return err
	}
	kind := sdk.ActionErrorKind("")
	switch {
	case errors.Is(err, provider.ErrAlreadyExists), errors.Is(err, provider.ErrQuota):
		kind = sdk.ActionErrConflict
	case errors.Is(err, provider.ErrNotFound):
		kind = sdk.ActionErrNotFound
	case errors.Is(err, provider.ErrBusy):
		kind = sdk.ActionErrUnavailable
	case errors.Is(err, provider.ErrInvalid), errors.Is(err, provider.ErrNotSupported):
		kind = sdk.ActionErrInvalid
	}
	if kind == "" {
		return err
	}
	return &sdk.ActionError{Kind: kind, Err: err}
}

// target names what the sink protects.
func (m *Manager) target() snapshotapi.Target {
	return snapshotapi.Target{Name: m.settings.Name, Kind: m.prov.Kind(), Target: m.prov.Target()}
}

// apiSnapshot is a snapshot in the actions' JSON.
func apiSnapshot(s provider.Snapshot, now time.Time) snapshotapi.Snapshot {
	tags := map[string]string{}
	for k, v := range s.Tags {
		tags[k] = v
	}
	out := snapshotapi.Snapshot{ID: s.ID, Target: s.Target, Time: s.Time.UTC(), Status: s.Status, Trigger: s.Trigger(),
		Managed: s.Managed(), SizeBytes: s.SizeBytes, Tags: tags, Detail: s.Detail, Reasons: []string{}}
	if !now.IsZero() {
		out.AgeSeconds = now.Sub(s.Time).Seconds()
	}
	return out
}

// settingsTarget names what a block protects from its settings alone.
func settingsTarget(st Settings) snapshotapi.Target {
	kind := "postgres"
	switch {
	case st.Aurora != nil:
		kind = "aurora"
	case st.MySQL != nil:
		kind = "mysql"
	}
	return snapshotapi.Target{Name: st.Name, Kind: kind, Target: protectedName(st),
		ProbeIntervalSeconds: st.ProbeInterval.Seconds()}
}

func runTarget(_ context.Context, component any, _ sdk.ActionRequest) ([]byte, error) {
	s, err := sinkOf(component, false)
	if err != nil {
		return nil, err
	}
	return json.Marshal(settingsTarget(s.settings))
}

func runCreate(ctx context.Context, component any, req sdk.ActionRequest) ([]byte, error) {
	s, err := sinkOf(component, true)
	if err != nil {
		return nil, err
	}
	var args snapshotapi.CreateArgs
	if err := decode(req, &args); err != nil {
		return nil, err
	}
	if args.Trigger == "" {
		args.Trigger = provider.TriggerManual
	}
	if args.Trigger == provider.TriggerAnomaly || args.Trigger == provider.TriggerScheduled {
		return nil, sdk.ActionInvalid("trigger %q is the sink's own; an operator takes manual, pre-migration or pre-repair snapshots", args.Trigger)
	}
	known := false
	for _, t := range provider.Triggers {
		known = known || t == args.Trigger
	}
	if !known {
		return nil, sdk.ActionInvalid("unknown trigger %q", args.Trigger)
	}
	snap, err := s.mgr.Create(ctx, CreateOptions{Trigger: args.Trigger, AppVersion: args.AppVersion, Wait: args.Wait})
	if err != nil {
		return nil, kinded(err)
	}
	var text bytes.Buffer
	WriteSnapshot(&text, snap)
	return json.Marshal(snapshotapi.CreateResult{Target: s.mgr.target(), Snapshot: apiSnapshot(snap, time.Time{}),
		RestoreName: s.mgr.SuggestRestoreName(time.Now()), Text: text.String()})
}

// APIListing is a listing in the actions' JSON (`tda snapshot list -json`).
func APIListing(l Listing) snapshotapi.Listing {
	out := snapshotapi.Listing{Name: l.Name, Kind: l.Kind, Target: l.Target, Now: l.Now.UTC(),
		Tiers: []snapshotapi.Tier{}, Warnings: append([]string{}, l.Warnings...)}
	if l.Quota != nil {
		out.Quota = &snapshotapi.Quota{Name: l.Quota.Name, Used: l.Quota.Used, Max: l.Quota.Max}
	}
	for _, t := range l.Tiers {
		tier := snapshotapi.Tier{Name: t.Name, Snapshots: []snapshotapi.Snapshot{}}
		if !t.Newest.IsZero() {
			newest, rpo := t.Newest.UTC(), t.RPO.Seconds()
			tier.Newest, tier.RPOSeconds, tier.RPO = &newest, &rpo, Age(t.RPO)
		}
		if t.Window != nil {
			tier.Window = &snapshotapi.Window{Earliest: t.Window.Earliest.UTC(), Latest: t.Window.Latest.UTC()}
		}
		for _, d := range t.Snapshots {
			s := apiSnapshot(d.Snapshot, l.Now)
			s.Keep, s.Reasons = d.Keep, append([]string{}, d.Reasons...)
			tier.Snapshots = append(tier.Snapshots, s)
		}
		out.Tiers = append(out.Tiers, tier)
	}
	return out
}

func runList(ctx context.Context, component any, req sdk.ActionRequest) ([]byte, error) {
	s, err := sinkOf(component, true)
	if err != nil {
		return nil, err
	}
	if err := decode(req, &struct{}{}); err != nil {
		return nil, err
	}
	l, err := s.mgr.List(ctx)
	if err != nil {
		return nil, kinded(err)
	}
	var text bytes.Buffer
	WriteListing(&text, l)
	return json.Marshal(snapshotapi.ListResult{Listing: APIListing(l), Text: text.String()})
}

func runPrune(ctx context.Context, component any, req sdk.ActionRequest) ([]byte, error) {
	s, err := sinkOf(component, true)
	if err != nil {
		return nil, err
	}
	var args snapshotapi.PruneArgs
	if err := decode(req, &args); err != nil {
		return nil, err
	}
	rep, err := s.mgr.Prune(ctx, args.DryRun)
	if err != nil {
		return nil, kinded(err)
	}
	now := s.mgr.now()
	out := snapshotapi.PruneResult{Target: s.mgr.target(), DryRun: rep.DryRun, Decisions: []snapshotapi.Snapshot{},
		Deleted: append([]string{}, rep.Deleted...)}
	for _, d := range rep.Decisions {
		a := apiSnapshot(d.Snapshot, now)
		a.Keep, a.Reasons = d.Keep, append([]string{}, d.Reasons...)
		out.Decisions = append(out.Decisions, a)
	}
	for id, ferr := range rep.Failed {
		if out.Failed == nil {
			out.Failed = map[string]string{}
		}
		out.Failed[id] = ferr.Error()
	}
	var text bytes.Buffer
	WritePrune(&text, s.mgr, rep)
	out.Text = text.String()
	return json.Marshal(out)
}

func runProbe(ctx context.Context, component any, req sdk.ActionRequest) ([]byte, error) {
	s, err := sinkOf(component, true)
	if err != nil {
		return nil, err
	}
	if p, ok := s.mgr.Provider().(provider.Prober); ok {
		if err := p.Probe(ctx); err != nil {
			return nil, kinded(err)
		}
	}
	return json.Marshal(snapshotapi.ProbeResult{Target: s.mgr.target()})
}

func restoreOptions(req sdk.ActionRequest) (RestoreOptions, snapshotapi.RestoreArgs, error) {
	var args snapshotapi.RestoreArgs
	if err := decode(req, &args); err != nil {
		return RestoreOptions{}, args, err
	}
	return RestoreOptions{SnapshotID: args.SnapshotID, ToTime: args.ToTime, NewName: args.NewName}, args, nil
}

// apiPlan is a restore plan in the actions' JSON, with its rendering.
func (m *Manager) apiPlan(p RestorePlan) snapshotapi.RestorePlan {
	out := snapshotapi.RestorePlan{Target: m.target(), Kind: p.Kind, Source: p.Source, NewName: p.NewName,
		ToTime: p.ToTime.UTC(), RecoveryPoint: p.RecoveryPoint.UTC(), Note: p.Note}
	if p.ToTime.IsZero() {
		out.ToTime = time.Time{}
	}
	if p.Snapshot != nil {
		s := apiSnapshot(*p.Snapshot, time.Time{})
		out.Snapshot = &s
	}
	var text bytes.Buffer
	WriteRestorePlan(&text, p)
	out.Text = text.String()
	return out
}

// planError is a restore plan's error with its kind: what the operator asked is wrong
// unless the provider says otherwise.
func planError(err error) error {
	if k := kinded(err); sdk.ActionErrorKindOf(k) != "" {
		return k
	}
	return &sdk.ActionError{Kind: sdk.ActionErrInvalid, Err: err}
}

func runRestorePlan(ctx context.Context, component any, req sdk.ActionRequest) ([]byte, error) {
	s, err := sinkOf(component, true)
	if err != nil {
		return nil, err
	}
	opt, _, err := restoreOptions(req)
	if err != nil {
		return nil, err
	}
	plan, err := s.mgr.PlanRestore(ctx, opt)
	if err != nil {
		return nil, planError(err)
	}
	return json.Marshal(s.mgr.apiPlan(plan))
}

func runRestoreApply(ctx context.Context, component any, req sdk.ActionRequest) ([]byte, error) {
	s, err := sinkOf(component, true)
	if err != nil {
		return nil, err
	}
	opt, args, err := restoreOptions(req)
	if err != nil {
		return nil, err
	}
	// The plan is made again here: the operator confirmed a recovery point, and the restore
	// goes ahead only if it is still the one this plan restores.
	var planErr error
	opt.Confirm = func(p RestorePlan) (bool, error) {
		if !args.Confirmed.IsZero() && !p.RecoveryPoint.Equal(args.Confirmed) {
			planErr = sdk.ActionConflict("the plan changed since it was confirmed: its recovery point is now %s, not %s; plan the restore again",
				p.RecoveryPoint.UTC().Format(time.RFC3339Nano), args.Confirmed.UTC().Format(time.RFC3339Nano))
			return false, planErr
		}
		req.Progress(fmt.Sprintf("restoring into %s (recovery point %s)", p.NewName, p.RecoveryPoint.UTC().Format(time.RFC3339)))
		return true, nil
	}
	rep, err := s.mgr.Restore(ctx, opt)
	if planErr != nil {
		return nil, planErr
	}
	if err != nil && rep.Started.IsZero() {
		return nil, planError(err)
	}
	out := snapshotapi.RestoreReport{Plan: s.mgr.apiPlan(rep.Plan), Name: rep.Result.Name, Endpoint: rep.Result.Endpoint,
		Created: rep.Result.Created, Started: rep.Started.UTC(), RPOSeconds: rep.RPO.Seconds(), RTOSeconds: rep.RTO.Seconds()}
	if err != nil {
		out.Error = err.Error()
		return json.Marshal(out)
	}
	out.Connection = restoreConnection(s.settings, opt.NewName, rep.Result)
	var text bytes.Buffer
	WriteRestoreReport(&text, rep)
	out.Text = text.String()
	return json.Marshal(out)
}

// restoreConnection is where a restore of the block's target into newName answers, without
// secrets: PostgreSQL's and MySQL's host, port and user come from the block; Aurora's from
// the restored cluster.
func restoreConnection(t Settings, newName string, res provider.RestoreResult) *snapshotapi.Connection {
	switch {
	case t.Postgres != nil:
		c := &snapshotapi.Connection{Kind: "postgres", Host: t.Postgres.Host, Port: t.Postgres.Port, Database: newName,
			User: t.Postgres.User}
		if c.Port == 0 {
			c.Port = 5432
		}
		return c
	case t.Aurora != nil:
		return &snapshotapi.Connection{Kind: "aurora", Host: res.Endpoint, Port: res.Port, Cluster: newName,
			Database: res.Database, User: res.User}
	}
	return nil
}

func runMigrationRecord(_ context.Context, component any, req sdk.ActionRequest) ([]byte, error) {
	s, err := sinkOf(component, false)
	if err != nil {
		return nil, err
	}
	var rec snapshotapi.MigrationRecord
	if err := decode(req, &rec); err != nil {
		return nil, err
	}
	if len(rec.Command) == 0 || rec.Outcome == "" {
		return nil, sdk.ActionInvalid("a migration record needs its command and outcome")
	}
	if err := appendMigrationRecord(s.settings.DataDir, rec); err != nil {
		return nil, fmt.Errorf("record the migration in %s: %w", migrationLog(s.settings.DataDir), err)
	}
	return []byte("{}"), nil
}
