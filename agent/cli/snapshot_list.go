package cli

import (
	"context"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/tda-dev/tda/agent/ops"
	"github.com/tda-dev/tda/sdk/snapshotapi"
)

type snapshotListCommand struct{ env *Env }

func (c *snapshotListCommand) Synopsis() string {
	return "List snapshots by tier with their age and RPO"
}

func (c *snapshotListCommand) Help() string {
	return strings.TrimSpace(`
Usage: tda snapshot list -config FILE [-target NAME] [-incident ID] [-json]

  Lists the snapshots of the protected cluster or database by tier: point in time
  (Aurora: the restorable window), scheduled, pre-migration, anomaly, manual, and
  snapshots tda did not take. Each tier shows its RPO (what restoring its newest
  point now would lose: now minus the latest restorable time, or the age of the
  newest snapshot); each snapshot its age, status, app version and what the
  retention policy will do with it. Aurora also shows the manual snapshot quota.

Flags:
` + snapshotFlagsHelp + `
  -json             One JSON object: name, kind, target, now, tiers (name, newest,
                    rpo_seconds, window, snapshots with id, time, age_seconds, status,
                    trigger, managed, size_bytes, tags, keep, reasons), quota, warnings.
  -incident ID      List the recovery points relative to the incident with this id
                    (tda incidents) or fingerprint: each snapshot (and, with
                    Aurora, the point in time just before the incident) as before,
                    during or after its first event, the default a restore takes (the
                    newest point before the first event) and the anomaly snapshot taken
                    for its alert. With -json: {incident, targets: [{name, kind, target,
                    points: [{snapshot, point_in_time, time, phase, offset_seconds,
                    relation, warning, evidence, default}], default, note}], evidence}.
                    Reads through the running agent ($TDA_ADDR and $TDA_TOKEN for
                    its HTTP API) or the state store.
`)
}

func (c *snapshotListCommand) Run(args []string) int {
	fs := c.env.FlagSet("snapshot list")
	path := fs.String("config", "", "")
	target := fs.String("target", "", "")
	asJSON := fs.Bool("json", false, "")
	incident := fs.String("incident", "", "")
	if ok, code := c.env.Parse(fs, args, c.Help); !ok {
		return code
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt)
	defer cancel()
	if *incident != "" {
		return c.relative(ctx, *path, *target, *incident, *asJSON)
	}
	t := c.env.openSnapshotTarget(ctx, *path, *target, "")
	if t == nil {
		return 1
	}
	defer t.close()
	var res snapshotapi.ListResult
	if err := t.call(ctx, snapshotapi.ActionList, nil, &res, nil, ""); err != nil {
		t.fail(err)
		return 1
	}
	if *asJSON {
		return c.env.JSON(listingJSON(res.Listing))
	}
	if res.Text == "" {
		return c.env.JSON(listingJSON(res.Listing))
	}
	t.printText(res.Text)
	return 0
}

// relative lists the recovery points of one target (or all, with -json) against an incident.
func (c *snapshotListCommand) relative(ctx context.Context, path, target, incident string, asJSON bool) int {
	if path == "" {
		c.env.Errorf("-config is required: the file with the sink \"snapshot\" block to use")
		return 1
	}
	rec := c.env.incidentRecovery(ctx, path, os.Getenv("TDA_ADDR"), os.Getenv("TDA_TOKEN"), incident)
	if rec == nil {
		return 1
	}
	if asJSON {
		if target != "" {
			tr, err := targetRecovery(rec, target)
			if err != nil {
				c.env.Errorf("%v", err)
				return 1
			}
			rec.Targets = []ops.TargetRecovery{*tr}
		}
		return c.env.JSON(rec)
	}
	if target == "" && len(rec.Targets) > 1 {
		for i, tr := range rec.Targets {
			if i > 0 {
				c.env.Printf("")
			}
			writeIncidentRecovery(c.env.Stdout, rec.Incident, tr, time.Now())
		}
		return 0
	}
	tr, err := targetRecovery(rec, target)
	if err != nil {
		c.env.Errorf("%v", err)
		return 1
	}
	writeIncidentRecovery(c.env.Stdout, rec.Incident, *tr, time.Now())
	return 0
}
