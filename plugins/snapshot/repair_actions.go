package snapshot

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/tda-dev/tda/plugins/snapshot/provider"
	"github.com/tda-dev/tda/plugins/snapshot/repair"
	"github.com/tda-dev/tda/sdk"
	"github.com/tda-dev/tda/sdk/snapshotapi"
)

// repairRun is a plan made for repair.plan or repair.apply, with both databases open.
type repairRun struct {
	plan       *repair.Plan
	src, live  *repair.DB
	liveTarget string
	args       snapshotapi.RepairArgs
	// writer writes through the app's endpoint (nil: SQL in one transaction).
	writer repair.RowWriter
}

func (r *repairRun) close() {
	r.src.Close()
	r.live.Close()
}

// planRepair builds the scope from the arguments, opens the restored and the live database
// (the block's connection settings, or the addresses given) and makes the plan.
func planRepair(ctx context.Context, s *Sink, req sdk.ActionRequest) (*repairRun, error) {
	var args snapshotapi.RepairArgs
	if err := decode(req, &args); err != nil {
		return nil, err
	}
	if (args.Restore == "") == (args.Source == "") {
		return nil, sdk.ActionInvalid("give the restored database: restore (the database tda restore created) or source (its address)")
	}
	// How the rows are written is checked before any database is reached.
	var writer repair.RowWriter
	switch args.Via {
	case "", "sql":
	case "http":
		w, err := httpWriter(args.HTTP)
		if err != nil {
			return nil, err
		}
		writer = w
	default:
		return nil, sdk.ActionInvalid("via %q: use sql (the default) or http", args.Via)
	}
	scope, err := repair.BuildScope(repair.Request{Rule: args.Rule, From: args.From, Until: args.Until,
		Table: args.Table, Key: args.Key, UpdatedAt: args.UpdatedAt, Columns: args.Columns, Keys: args.Keys,
		Events: args.Events, EventsSource: "(" + fmt.Sprint(len(args.Events)) + " log lines)", EventTypes: args.EventTypes,
		Actor: args.Actor, IncludeAdmins: args.IncludeAdmins, Field: args.Field,
		Tolerance: time.Duration(args.ToleranceSeconds * float64(time.Second)), MaxRows: args.MaxRows})
	if err != nil {
		return nil, sdk.ActionInvalid("-%v", err)
	}
	st := s.settings
	srcAddr, liveAddr := args.Source, args.Live
	srcName, liveName := "restored "+describeAddr(args.Source), "live "+describeAddr(args.Live)
	liveTarget := describeAddr(args.Live)
	if args.Restore != "" {
		if srcAddr, err = st.DSN(args.Restore); err != nil {
			return nil, sdk.ActionInvalid("%v", err)
		}
		srcName = "restored " + args.Restore
	}
	if liveAddr == "" {
		if liveAddr, err = st.DSN(""); err != nil {
			return nil, sdk.ActionInvalid("%v", err)
		}
		liveTarget = protectedName(st)
		liveName = "live " + liveTarget
	}
	src, err := repair.Open(ctx, srcAddr, srcName)
	if err != nil {
		return nil, sdk.ActionUnavailable("%v", err)
	}
	live, err := repair.Open(ctx, liveAddr, liveName)
	if err != nil {
		src.Close()
		return nil, sdk.ActionUnavailable("%v", err)
	}
	plan, err := repair.MakePlan(ctx, src, live, scope)
	if err != nil {
		src.Close()
		live.Close()
		return nil, sdk.ActionInvalid("cannot make the repair plan: %v", err)
	}
	return &repairRun{plan: plan, src: src, live: live, liveTarget: liveTarget, args: args, writer: writer}, nil
}

// protectedName is the database or cluster a block protects.
func protectedName(s Settings) string {
	switch {
	case s.Aurora != nil:
		return s.Aurora.Cluster
	case s.MySQL != nil:
		return s.MySQL.Database
	case s.Postgres != nil:
		return s.Postgres.Database
	}
	return ""
}

// outcome is the plan (and, once applied, the result) in the actions' JSON.
func (r *repairRun) outcome(res *repair.Result) (snapshotapi.RepairOutcome, error) {
	p, err := json.Marshal(r.plan)
	if err != nil {
		return snapshotapi.RepairOutcome{}, err
	}
	var text bytes.Buffer
	repair.WritePlan(&text, r.plan)
	out := snapshotapi.RepairOutcome{Live: strings.TrimPrefix(r.plan.Live, "live "), Source: r.plan.Source,
		Table: r.plan.Scope.Table, Summary: repair.Summary(r.plan), Pending: r.plan.Pending(), Plan: p,
		PlanText: text.String()}
	if res != nil {
		if out.Result, err = json.Marshal(res); err != nil {
			return snapshotapi.RepairOutcome{}, err
		}
		var rt bytes.Buffer
		repair.WriteResult(&rt, *res)
		out.Applied, out.Mismatches, out.ResultText = true, len(res.Mismatches), rt.String()
	}
	return out, nil
}

func runRepairPlan(ctx context.Context, component any, req sdk.ActionRequest) ([]byte, error) {
	s, err := sinkOf(component, false)
	if err != nil {
		return nil, err
	}
	run, err := planRepair(ctx, s, req)
	if err != nil {
		return nil, err
	}
	defer run.close()
	out, err := run.outcome(nil)
	if err != nil {
		return nil, err
	}
	return json.Marshal(out)
}

func runRepairApply(ctx context.Context, component any, req sdk.ActionRequest) ([]byte, error) {
	s, err := sinkOf(component, true)
	if err != nil {
		return nil, err
	}
	run, err := planRepair(ctx, s, req)
	if err != nil {
		return nil, err
	}
	defer run.close()
	args := run.args
	if args.Confirm != "" && args.Confirm != run.liveTarget {
		return nil, sdk.ActionInvalid("type the live database's name (%s) to confirm the repair", run.liveTarget)
	}
	if args.ConfirmedSummary != "" && args.ConfirmedSummary != repair.Summary(run.plan) {
		return nil, sdk.ActionConflict("the rows changed since the plan was shown (now: %s); plan the repair again", repair.Summary(run.plan))
	}
	if run.plan.Pending() == 0 {
		out, err := run.outcome(nil)
		if err != nil {
			return nil, err
		}
		return json.Marshal(out)
	}
	opt := repair.ApplyOptions{Writer: run.writer}
	var snapID string
	opt.BeforeWrite = func(ctx context.Context) error {
		snap, err := s.mgr.Create(ctx, CreateOptions{Trigger: provider.TriggerPreRepair, Wait: true})
		if err != nil {
			return fmt.Errorf("the pre-repair snapshot failed: %w", err)
		}
		snapID = snap.ID
		req.Progress(fmt.Sprintf("Pre-repair snapshot %s taken (recovery point %s).", snap.ID, snap.Time.UTC().Format(time.RFC3339)))
		return nil
	}
	res, applyErr := repair.Apply(ctx, run.live, run.plan, opt)
	out, err := run.outcome(&res)
	if err != nil {
		return nil, err
	}
	out.PreRepairSnapshot = snapID
	out.Audit = repairAuditDetail(run.plan, res, args.Rule, snapID)
	if applyErr != nil {
		out.Applied, out.Error = false, applyErr.Error()
	}
	return json.Marshal(out)
}

func httpWriter(a *snapshotapi.HTTPArgs) (*repair.HTTPWriter, error) {
	if a == nil || a.URLTemplate == "" {
		return nil, sdk.ActionInvalid("-via http needs -url-template, e.g. http://127.0.0.1:8000/admin/users/{key}/restore")
	}
	w := &repair.HTTPWriter{URLTemplate: a.URLTemplate, Fields: map[string]string{}, Header: http.Header{}}
	if err := w.Check(); err != nil {
		return nil, sdk.ActionInvalid("%v", err)
	}
	for col, key := range a.Fields {
		w.Fields[col] = key
	}
	for name, values := range a.Header {
		for _, v := range values {
			w.Header.Add(name, v)
		}
	}
	return w, nil
}

// repairAuditDetail is what the audit log keeps of a repair: the counts, the snapshot to go
// back to, and the plan's rows by decision (bounded).
func repairAuditDetail(p *repair.Plan, r repair.Result, rule, snapID string) map[string]string {
	d := map[string]string{
		"source": p.Source, "live": p.Live, "table": p.Scope.Table, "columns": strings.Join(p.Columns, ","),
		"via": r.Via, "summary": repair.Summary(p), "pre_repair_snapshot": snapID,
		"repaired": fmt.Sprint(r.Repaired), "inserted": fmt.Sprint(r.Inserted), "verified": fmt.Sprint(r.Verified),
		"mismatches": fmt.Sprint(len(r.Mismatches)),
	}
	if rule != "" {
		d["rule"] = rule
	}
	rows := map[repair.Decision][]string{}
	for _, it := range p.Items {
		if it.Decision != repair.Same {
			rows[it.Decision] = append(rows[it.Decision], it.Table+" "+it.Key)
		}
	}
	for dec, list := range rows {
		s := strings.Join(list, ", ")
		if len(s) > 2000 {
			s = s[:2000] + fmt.Sprintf(" ... (%d rows)", len(list))
		}
		d["plan_"+string(dec)] = s
	}
	return d
}

// describeAddr names a database address without its password.
func describeAddr(addr string) string {
	if addr == "" {
		return ""
	}
	for _, kv := range strings.Fields(addr) {
		if v, ok := strings.CutPrefix(kv, "dbname="); ok {
			return v
		}
	}
	if i := strings.LastIndexByte(addr, '/'); i >= 0 && i < len(addr)-1 {
		return strings.SplitN(addr[i+1:], "?", 2)[0]
	}
	return "database"
}
