package cli

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/tda-dev/tda/agent/ops"
	"github.com/tda-dev/tda/plugins/snapshot"
)

type restoreCommand struct{ env *Env }

func (c *restoreCommand) Synopsis() string {
	return "Restore a snapshot or a point in time into a new database"
}

func (c *restoreCommand) Help() string {
	return strings.TrimSpace(`
Usage: tda restore -config FILE [-target NAME] (-snapshot ID | -to-time RFC3339) -to NEW_NAME [-yes]

  Restores into a new cluster (Aurora: the cluster, then its writer instance) or a
  new database (PostgreSQL: after verifying the dump's checksum). Never in place:
  the protected cluster or database is left untouched, and NEW_NAME must not
  exist. Shows the plan and asks for confirmation unless -yes is given, then
  reports the RPO achieved (what the restore could not bring back) and the RTO it
  took. Password hashes come back byte for byte: see docs/recovery.md for how the
  application takes them back.

  With PostgreSQL, -to-time restores the newest snapshot taken at or before it.

Flags:
` + snapshotFlagsHelp + `
  -snapshot ID      Snapshot to restore (see tda snapshot list).
  -to-time TIME     Point in time to restore to, RFC 3339 (e.g. 2026-11-29T22:55:00Z).
  -to NEW_NAME      Name of the cluster or database to create.
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
	by := actorFlag(fs)
	reason := fs.String("reason", "", "")
	addr := fs.String("addr", os.Getenv("TDA_ADDR"), "")
	token := fs.String("token", os.Getenv("TDA_TOKEN"), "")
	if ok, code := c.env.Parse(fs, args, c.Help); !ok {
		return code
	}
	opt := snapshot.RestoreOptions{SnapshotID: *snapshotID, NewName: *to}
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
	opt.Confirm = func(p snapshot.RestorePlan) (bool, error) {
		snapshot.WriteRestorePlan(c.env.Stdout, p)
		if *yes {
			return true, nil
		}
		answer, err := c.env.UI.Ask("Type yes to restore into " + p.NewName + ":")
		if err != nil {
			return false, errors.New("no confirmation could be read; pass -yes to restore without asking")
		}
		return strings.TrimSpace(answer) == "yes", nil
	}
	c.env.Printf("")
	rep, err := t.mgr.Restore(ctx, opt)
	if errors.Is(err, snapshot.ErrAborted) {
		c.env.Printf("Not restored: nothing was changed.\n")
		return 1
	}
	rec := ops.ActionRecord{Action: ops.ActionRestoreRun, Target: *snapshotID + " -> " + *to, Reason: *reason,
		Detail: map[string]string{"target": t.comp.Name}}
	if *toTime != "" {
		rec.Target = *toTime + " -> " + *to
	}
	if err != nil {
		rec.Error = err.Error()
	} else {
		rec.Detail["rpo"] = rep.RPO.Round(time.Second).String()
		rec.Detail["rto"] = rep.RTO.Round(time.Millisecond).String()
	}
	c.env.audit(ctx, *path, *by, rec)
	if err != nil {
		c.env.Errorf("%v", err)
		if rep.Result.Name != "" && len(rep.Result.Created) > 0 {
			c.env.Errorf("created so far: %s", strings.Join(rep.Result.Created, ", "))
		}
		return 1
	}
	snapshot.WriteRestoreReport(c.env.Stdout, rep)
	return 0
}
