package control

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/tda-dev/tda/agent/ops"
	"github.com/tda-dev/tda/plugins/snapshot"
	"github.com/tda-dev/tda/plugins/snapshot/provider"
	"github.com/tda-dev/tda/plugins/snapshot/repair"
)

// repairs runs `tda repair` for the API and the panel, with the snapshot targets of the
// config: the plan on request, and the apply (pre-repair snapshot, one transaction,
// verification) once the operator confirmed by naming the live database, audited.
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
	plan, src, live, _, err := r.plan(ctx, req)
	if err != nil {
		return ops.RepairOutcome{}, err
	}
	defer src.Close()
	defer live.Close()
	return outcome(plan, nil, "")
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
	plan, src, live, t, err := r.plan(ctx, req)
	if err != nil {
		return ops.RepairOutcome{}, err
	}
	defer src.Close()
	defer live.Close()
	_, liveName := protected(t)
	if req.Confirm != liveName {
		return ops.RepairOutcome{}, &ops.Error{Kind: ops.KindInvalid,
			Message: fmt.Sprintf("type the live database's name (%s) to confirm the repair", liveName)}
	}
	m, err := r.set.manager(ctx, t)
	if err != nil {
		return ops.RepairOutcome{}, err
	}
	var snapID string
	res, applyErr := repair.Apply(ctx, live, plan, repair.ApplyOptions{BeforeWrite: func(ctx context.Context) error {
		s, err := m.Create(ctx, snapshot.CreateOptions{Trigger: provider.TriggerPreRepair, Wait: true})
		if err != nil {
			return fmt.Errorf("the pre-repair snapshot failed: %w", err)
		}
		snapID = s.ID
		return nil
	}})
	rec := ops.ActionRecord{Action: ops.ActionRepairRun, Target: plan.Scope.Table + " in " + live.Name, Reason: req.Reason,
		Detail: map[string]string{"restore": req.Restore, "incident": req.Incident, "summary": repair.Summary(plan),
			"pre_repair_snapshot": snapID, "repaired": fmt.Sprint(res.Repaired), "inserted": fmt.Sprint(res.Inserted),
			"verified": fmt.Sprint(res.Verified), "mismatches": fmt.Sprint(len(res.Mismatches)), "via": "panel"}}
	if applyErr != nil {
		rec.Error = applyErr.Error()
	}
	if _, err := r.ops.RecordAction(ctx, by, rec); err != nil && applyErr == nil {
		applyErr = fmt.Errorf("the repair was applied but could not be recorded in the audit log: %w", err)
	}
	if applyErr != nil {
		return ops.RepairOutcome{}, applyErr
	}
	return outcome(plan, &res, snapID)
}

// plan opens both databases and makes the plan; the caller closes the databases.
func (r *repairs) plan(ctx context.Context, req ops.RepairRequest) (*repair.Plan, *repair.DB, *repair.DB, snapshot.Settings, error) {
	t, err := r.set.find(req.Target)
	if err != nil {
		return nil, nil, nil, t, err
	}
	if req.Restore == "" {
		return nil, nil, nil, t, &ops.Error{Kind: ops.KindInvalid, Message: "name the database tda restore created (restore)"}
	}
	sreq := repair.Request{Table: req.Table, Columns: req.Columns, Keys: req.Keys, Events: req.Events, Actor: req.Actor}
	if req.Incident != "" {
		in, err := r.incident(ctx, req.Incident)
		if err != nil {
			return nil, nil, nil, t, err
		}
		sreq.Rule, sreq.From = in.Rule, in.FirstSeen
		if !in.Open() {
			sreq.Until = in.LastSeen
		}
	}
	scope, err := repair.BuildScope(sreq)
	if err != nil {
		return nil, nil, nil, t, &ops.Error{Kind: ops.KindInvalid, Message: err.Error()}
	}
	srcAddr, err := t.DSN(req.Restore)
	if err != nil {
		return nil, nil, nil, t, &ops.Error{Kind: ops.KindUnavailable, Message: err.Error()}
	}
	liveAddr, _ := t.DSN("")
	_, liveName := protected(t)
	src, err := repair.Open(ctx, srcAddr, "restored "+req.Restore)
	if err != nil {
		return nil, nil, nil, t, &ops.Error{Kind: ops.KindUnavailable, Message: err.Error()}
	}
	live, err := repair.Open(ctx, liveAddr, "live "+liveName)
	if err != nil {
		src.Close()
		return nil, nil, nil, t, &ops.Error{Kind: ops.KindUnavailable, Message: err.Error()}
	}
	plan, err := repair.MakePlan(ctx, src, live, scope)
	if err != nil {
		src.Close()
		live.Close()
		return nil, nil, nil, t, &ops.Error{Kind: ops.KindInvalid, Message: "cannot make the repair plan: " + err.Error()}
	}
	return plan, src, live, t, nil
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

func outcome(plan *repair.Plan, res *repair.Result, snapID string) (ops.RepairOutcome, error) {
	p, err := json.Marshal(plan)
	if err != nil {
		return ops.RepairOutcome{}, err
	}
	out := ops.RepairOutcome{Live: strings.TrimPrefix(plan.Live, "live "), Summary: repair.Summary(plan), Plan: p,
		PreRepairSnapshot: snapID}
	if res != nil {
		if out.Result, err = json.Marshal(res); err != nil {
			return ops.RepairOutcome{}, err
		}
		out.Applied = true
	}
	return out, nil
}
