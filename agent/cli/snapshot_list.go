package cli

import (
	"context"
	"os"
	"os/signal"
	"strings"

	"github.com/tda-dev/tda/plugins/snapshot"
)

type snapshotListCommand struct{ env *Env }

func (c *snapshotListCommand) Synopsis() string {
	return "List snapshots by tier with their age and RPO"
}

func (c *snapshotListCommand) Help() string {
	return strings.TrimSpace(`
Usage: tda snapshot list -config FILE [-target NAME] [-json]

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
`)
}

func (c *snapshotListCommand) Run(args []string) int {
	fs := c.env.FlagSet("snapshot list")
	path := fs.String("config", "", "")
	target := fs.String("target", "", "")
	asJSON := fs.Bool("json", false, "")
	if ok, code := c.env.Parse(fs, args, c.Help); !ok {
		return code
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt)
	defer cancel()
	t := c.env.openSnapshotTarget(ctx, *path, *target, "")
	if t == nil {
		return 1
	}
	defer t.close()
	l, err := t.mgr.List(ctx)
	if err != nil {
		c.env.Errorf("%v", err)
		return 1
	}
	if *asJSON {
		return c.env.JSON(listingJSON(l))
	}
	snapshot.WriteListing(c.env.Stdout, l)
	return 0
}
