package cli

import (
	"context"
	"os"
	"os/signal"
	"strings"

	"github.com/tda-dev/tda/plugins/snapshot"
)

type snapshotPruneCommand struct{ env *Env }

func (c *snapshotPruneCommand) Synopsis() string {
	return "Delete snapshots the retention policy no longer keeps"
}

func (c *snapshotPruneCommand) Help() string {
	return strings.TrimSpace(`
Usage: tda snapshot prune -config FILE [-target NAME] [-dry-run]

  Applies the block's retention policy and prints every snapshot with keep or
  delete and the reason. Scheduled snapshots: the newest per UTC day, ISO week and
  month for keep_daily, keep_weekly and keep_monthly (restic's rules); other
  triggers: their keep_*_for age. Snapshots tda did not take, snapshots that are
  not available, and the newest snapshot are never deleted. The snapshot sink
  also prunes after each scheduled snapshot.

  Exits 1 when a deletion failed.

Flags:
` + snapshotFlagsHelp + `
  -dry-run          Print the decisions and delete nothing.
`)
}

func (c *snapshotPruneCommand) Run(args []string) int {
	fs := c.env.FlagSet("snapshot prune", c.Help)
	path := fs.String("config", "", "")
	target := fs.String("target", "", "")
	dryRun := fs.Bool("dry-run", false, "")
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
	rep, err := t.mgr.Prune(ctx, *dryRun)
	if err != nil {
		c.env.Errorf("%v", err)
		return 1
	}
	snapshot.WritePrune(c.env.Stdout, t.mgr, rep)
	if len(rep.Failed) > 0 {
		return 1
	}
	return 0
}
