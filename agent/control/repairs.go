package control

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/tda-dev/tda/agent/ops"
	"github.com/tda-dev/tda/sdk/snapshotapi"
)

// repairs runs `tda repair` for the API and the panel through the provider's repair actions:
// the plan on request, and the apply (pre-repair snapshot, one transaction, verification)
// once the operator confirmed by naming the live database, audited.
type repairs struct {
	set *snapshotSet
	ops ops.Operations
}

// Repairs returns the agent's repair service over o (nil when the config has no snapshot
// target: the API then answers that repairs need one).
func (s *Setup) Repairs(o ops.Operations) ops.Repairs {
	if s.snapshots == nil || len(s.snapshots.targets) == 0 {
		return nil
	}
	return &repairs{set: s.snapshots, ops: o}
}

// PlanRepair implements ops.Repairs.
func (r *repairs) PlanRepair(ctx context.Context, req ops.RepairRequest) (ops.RepairOutcome, error) {
	b, args, err := r.args(ctx, req)
	if err != nil {
		return ops.RepairOutcome{}, err
	}
	var out snapshotapi.RepairOutcome
	if err := r.set.call(ctx, b, snapshotapi.ActionRepairPlan, args, &out, req.By); err != nil {
		return ops.RepairOutcome{}, err
	}
	return outcome(out), nil
}

// ApplyRepair implements ops.Repairs.
func (r *repairs) ApplyRepair(ctx context.Context, by ops.Actor, req ops.RepairRequest) (ops.RepairOutcome, error) {
	if strings.TrimSpace(req.Reason) == "" {
		return ops.RepairOutcome{}, &ops.Error{Kind: ops.KindInvalid, Message: "a reason is required to repair"}
	}
	st, err := r.ops.State(ctx)
	if err != nil {
		return ops.RepairOutcome{}, err
	}
	if st.Status == ops.StatusBlocked {
		return ops.RepairOutcome{}, &ops.Error{Kind: ops.KindForbidden, Message: "the system is blocked: " +
			strings.Join(st.Reasons, "; ") + ". Acknowledge the alert or declare an override, then repair"}
	}
	b, args, err := r.args(ctx, req)
	if err != nil {
		return ops.RepairOutcome{}, err
	}
	t, err := r.set.describe(ctx, b)
	if err != nil {
		return ops.RepairOutcome{}, err
	}
	if req.Confirm != t.Target {
		return ops.RepairOutcome{}, &ops.Error{Kind: ops.KindInvalid,
			Message: fmt.Sprintf("type the live database's name (%s) to confirm the repair", t.Target)}
	}
	args.Confirm = req.Confirm
	var out snapshotapi.RepairOutcome
	applyErr := r.set.call(ctx, b, snapshotapi.ActionRepairApply, args, &out, by.Name)
	if applyErr != nil && out.Plan == nil {
		// Refused before anything was written (the plan could not be made).
		return ops.RepairOutcome{}, applyErr
	}
	if out.Error != "" {
		applyErr = errors.New(out.Error)
	}
	detail := out.Audit
	if detail == nil {
		detail = map[string]string{"summary": out.Summary}
	}
	detail["restore"], detail["incident"], detail["via"] = req.Restore, req.Incident, "panel"
	rec := ops.ActionRecord{Action: ops.ActionRepairRun, Target: out.Table + " in live " + out.Live, Reason: req.Reason,
		Detail: detail}
	if applyErr != nil {
		rec.Error = applyErr.Error()
	}
	if _, err := r.ops.RecordAction(ctx, by, rec); err != nil && applyErr == nil {
		applyErr = fmt.Errorf("the repair was applied but could not be recorded in the audit log: %w", err)
	}
	if applyErr != nil {
		return ops.RepairOutcome{}, applyErr
	}
	return outcome(out), nil
}

// args turns the API's request into the repair actions' arguments, with the incident's rule
// and time range.
func (r *repairs) args(ctx context.Context, req ops.RepairRequest) (snapshotBlock, snapshotapi.RepairArgs, error) {
	b, err := r.set.find(req.Target)
	if err != nil {
		return b, snapshotapi.RepairArgs{}, err
	}
	if req.Restore == "" {
		return b, snapshotapi.RepairArgs{}, &ops.Error{Kind: ops.KindInvalid, Message: "name the database tda restore created (restore)"}
	}
	args := snapshotapi.RepairArgs{Restore: req.Restore, Table: req.Table, Columns: req.Columns, Keys: req.Keys,
		Events: req.Events, Actor: req.Actor}
	if req.Incident != "" {
		in, err := r.incident(ctx, req.Incident)
		if err != nil {
			return b, args, err
		}
		args.Rule, args.From = in.Rule, in.FirstSeen
		if !in.Open() {
			args.Until = in.LastSeen
		}
	}
	return b, args, nil
}

func (r *repairs) incident(ctx context.Context, fp string) (ops.Incident, error) {
	list, err := r.ops.Alerts(ctx, ops.AlertFilter{Limit: 1000})
	if err != nil {
		return ops.Incident{}, err
	}
	var found []ops.Incident
	for _, in := range list {
		if in.Fingerprint == fp {
			return in, nil
		}
		if strings.HasPrefix(in.Fingerprint, fp) {
			found = append(found, in)
		}
	}
	if len(found) != 1 {
		return ops.Incident{}, &ops.Error{Kind: ops.KindNotFound,
			Message: fmt.Sprintf("%d alerts have a fingerprint starting with %q: give the whole fingerprint", len(found), fp)}
	}
	return found[0], nil
}

func outcome(o snapshotapi.RepairOutcome) ops.RepairOutcome {
	return ops.RepairOutcome{Live: o.Live, Summary: o.Summary, Plan: o.Plan, Result: o.Result, Applied: o.Applied,
		PreRepairSnapshot: o.PreRepairSnapshot}
}
