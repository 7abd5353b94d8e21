package cli

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"

	"github.com/tda-dev/tda/agent/ops"
	"github.com/tda-dev/tda/sdk/snapshotapi"
	"github.com/tda-dev/tda/sdk/termsafe"
)

type restoreCommand struct{ env *Env }

func (c *restoreCommand) Synopsis() string {
	return "Restore a snapshot or a point in time into a new database"
}

func (c *restoreCommand) Help() string {
	return strings.TrimSpace(`
Usage: tda restore -config FILE [-target NAME] (-snapshot ID | -to-time RFC3339) -to NEW_NAME [-yes]
       tda restore -config FILE [-target NAME] -incident ID [-snapshot ID | -to-time RFC3339] [-allow-during] -to NEW_NAME

  Restores into a new cluster (Aurora: the cluster, then its writer instance) or a
  new database (PostgreSQL: after verifying the dump's checksum). Never in place:
  the protected cluster or database is left untouched, and NEW_NAME must not
  exist. Shows the plan and asks for confirmation unless -yes is given, then
  reports the RPO achieved (what the restore could not bring back) and the RTO it
  took. Password hashes come back byte for byte: see docs/recovery.md for how the
  application takes them back.

  With PostgreSQL, -to-time restores the newest snapshot taken at or before it.

  With -incident, the restore recovers from that incident: without -snapshot or
  -to-time it takes the newest point before the incident's first event (Aurora:
  the point in time just before it; PostgreSQL: the newest snapshot taken
  before it), and a point from during or after the incident is refused unless
  -allow-during is given, since it may hold the incident's changes. See the
  points with tda snapshot list -incident ID. The report gives the new
  database's connection details (no secret) and the next steps.

Flags:
` + snapshotFlagsHelp + `
  -snapshot ID      Snapshot to restore (see tda snapshot list).
  -to-time TIME     Point in time to restore to, RFC 3339 (e.g. 2026-11-29T22:55:00Z).
  -to NEW_NAME      Name of the cluster or database to create.
  -incident ID      The incident to recover from: its id (tda incidents), or its fingerprint.
  -allow-during     With -incident: restore a point taken during or after the incident.
  -yes              Do not ask for confirmation.
  -by WHO           Who restores, for the audit log (or $TDA_ACTOR, else $USER).
  -reason TEXT      Why, for the audit log.
  -addr URL         Read the system state from an agent's HTTP API (or $TDA_ADDR);
  -token TOKEN      with this token (or $TDA_TOKEN). While a HIGH alert is firing
                    unacknowledged and no override is in force, nothing is restored.
`)
}

func (c *restoreCommand) Run(args []string) int {
	fs := c.env.FlagSet("restore")
	path := fs.String("config", "", "")
	target := fs.String("target", "", "")
	snapshotID := fs.String("snapshot", "", "")
	toTime := fs.String("to-time", "", "")
	to := fs.String("to", "", "")
	yes := fs.Bool("yes", false, "")
	incident := fs.String("incident", "", "")
	allowDuring := fs.Bool("allow-during", false, "")
	by := actorFlag(fs)
	reason := fs.String("reason", "", "")
	addr := fs.String("addr", os.Getenv("TDA_ADDR"), "")
	token := fs.String("token", os.Getenv("TDA_TOKEN"), "")
	if ok, code := c.env.Parse(fs, args, c.Help); !ok {
		return code
	}
	opt := snapshotapi.RestoreArgs{SnapshotID: *snapshotID, NewName: *to}
	if *toTime != "" {
		t, err := time.Parse(time.RFC3339, *toTime)
		if err != nil {
			c.env.Errorf("-to-time %q is not an RFC 3339 time such as 2026-11-29T22:55:00Z", *toTime)
			return 1
		}
		opt.ToTime = t
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt)
	defer cancel()
	t := c.env.openSnapshotTarget(ctx, *path, *target, "")
	if t == nil {
		return 1
	}
	defer t.close()
	// While a HIGH alert is firing unacknowledged, a restore needs an override in force.
	conn, _ := c.env.connect(controlFlags{config: path, addr: addr, token: token})
	if conn == nil {
		return 1
	}
	defer release(conn)
	st, err := conn.State(ctx)
	if err != nil {
		c.env.Errorf("cannot read the system state, so the restore is not started: %v", err)
		return 1
	}
	if st.Status == ops.StatusBlocked {
		c.env.Errorf("the system is blocked: %s. Acknowledge the alert (tda alerts ack) or declare an override with a reason (tda override on), then restore", strings.Join(st.Reasons, "; "))
		return 1
	}
	// With an incident: the default point, and no point from during it unless allowed.
	var rec *ops.IncidentRecovery
	var tr *ops.TargetRecovery
	if *incident != "" {
		r, err := conn.Recovery(ctx, *incident)
		if err != nil {
			c.env.Errorf("%v", err)
			return 1
		}
		rec = &r
		if tr, err = targetRecovery(rec, t.comp.Name); err != nil {
			c.env.Errorf("%v", err)
			return 1
		}
		if *toTime == "" {
			p, err := incidentPoint(tr, rec.Incident, *snapshotID, *allowDuring)
			if err != nil {
				c.env.Errorf("the restore is refused: %v", err)
				return 1
			}
			if p.PointInTime {
				opt.ToTime = p.Time
			} else {
				opt.SnapshotID = p.SnapshotID
			}
		}
	} else if *allowDuring {
		c.env.Errorf("-allow-during goes with -incident")
		return 1
	}
	var point ops.RecoveryPoint
	var plan snapshotapi.RestorePlan
	c.env.Printf("")
	if err := t.call(ctx, snapshotapi.ActionRestorePlan, opt, &plan, nil, *by); err != nil {
		// A refused restore is audited too, as every restore asked for.
		failed := ops.Restore{SnapshotID: opt.SnapshotID, ToTime: opt.ToTime, NewName: *to}
		c.env.audit(ctx, *path, *by, ops.ActionRecord{Action: ops.ActionRestoreRun, Target: restoreAuditTarget(failed),
			Reason: *reason, Error: err.Error(), Detail: map[string]string{"target": t.comp.Name, "new_name": *to}})
		t.fail(err)
		return 1
	}
	t.printText(plan.Text)
	if rec != nil {
		point = ops.RecoveryPoint{PointInTime: plan.Snapshot == nil, Time: plan.RecoveryPoint}
		if plan.Snapshot != nil {
			point.SnapshotID = plan.Snapshot.ID
		}
		point = rec.Incident.Place(point)
		c.env.Printf("  incident            %s\n  relative to it      %s\n", termsafe.String(rec.Incident.Describe()), point.Relation)
		if err := duringAllowed(point, tr, *allowDuring); err != nil {
			c.env.Errorf("%v", err)
			return 1
		}
	}
	if !*yes {
		answer, err := c.env.UI.Ask("Type yes to restore into " + plan.NewName + ":")
		if err != nil {
			c.env.Errorf("no confirmation could be read; pass -yes to restore without asking")
			return 1
		}
		if strings.TrimSpace(answer) != "yes" {
			c.env.Printf("Not restored: nothing was changed.\n")
			return 1
		}
	}
	// The provider makes the plan again and restores only if its recovery point is still
	// the one confirmed.
	opt.Confirmed = plan.RecoveryPoint
	var rep snapshotapi.RestoreReport
	err = t.call(ctx, snapshotapi.ActionRestoreApply, opt, &rep, func(string) {}, *by)
	if err == nil && rep.Error != "" {
		err = errors.New(rep.Error)
	}
	source := plan.Source
	done := ops.Restore{Target: t.comp.Name, Source: source, SnapshotID: opt.SnapshotID, ToTime: opt.ToTime, NewName: *to,
		Phase: point.Phase, Relation: point.Relation}
	if plan.Snapshot != nil {
		done.SnapshotID, done.ToTime = plan.Snapshot.ID, time.Time{}
	}
	action := ops.ActionRecord{Action: ops.ActionRestoreRun, Target: restoreAuditTarget(done), Reason: *reason,
		Detail: map[string]string{"target": t.comp.Name, "source": source, "new_name": *to}}
	if rec != nil {
		done.Incident = rec.Incident.ID
		action.Detail["incident"], action.Detail["rule"], action.Detail["phase"] = rec.Incident.ID, rec.Incident.Rule, point.Phase
		action.Detail["fingerprint"] = rec.Incident.Fingerprint
		if point.Phase != "" && point.Phase != ops.PhaseBefore {
			action.Detail["confirmed"] = point.Warning
		}
	}
	if err != nil {
		action.Error = err.Error()
	} else {
		done.Connection = connectionOf(rep.Connection)
		action.Detail["recovery_point"] = rep.Plan.RecoveryPoint.UTC().Format(time.RFC3339Nano)
		action.Detail["rpo_seconds"] = strconv.FormatFloat(rep.RPOSeconds, 'f', 3, 64)
		action.Detail["rto_seconds"] = strconv.FormatFloat(rep.RTOSeconds, 'f', 3, 64)
		if done.Connection != nil {
			action.Detail["connection"] = done.Connection.String()
		}
	}
	c.env.audit(ctx, *path, *by, action)
	if err != nil {
		t.fail(err)
		if rep.Name != "" && len(rep.Created) > 0 {
			c.env.Errorf("created so far: %s", strings.Join(rep.Created, ", "))
		}
		return 1
	}
	t.printText(rep.Text)
	var in *ops.IncidentRef
	if rec != nil {
		in = &rec.Incident
	}
	done.NextSteps = ops.NextSteps(done, in)
	writeNextSteps(c.env.Stdout, done)
	return 0
}

// connectionOf is the provider's connection details in the operations' terms.
func connectionOf(c *snapshotapi.Connection) *ops.Connection {
	if c == nil {
		return nil
	}
	return &ops.Connection{Kind: c.Kind, Host: c.Host, Port: c.Port, Cluster: c.Cluster, Database: c.Database, User: c.User}
}

// restoreAuditTarget names what a restore acted on: the snapshot or the point in time, and
// the new database.
func restoreAuditTarget(r ops.Restore) string {
	what := r.SnapshotID
	if what == "" {
		what = "point in time " + r.ToTime.UTC().Format(time.RFC3339Nano)
	}
	return what + " -> " + r.NewName
}
