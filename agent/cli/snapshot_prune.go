package cli

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"

	"github.com/tda-dev/tda/agent/ops"
	"github.com/tda-dev/tda/sdk/snapshotapi"
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
  not available, the newest snapshot, and the last snapshot from before each open
  incident (the one a restore would need) are never deleted. The snapshot sink
  also prunes after each scheduled snapshot.

  Exits 1 when a deletion failed.

Flags:
` + snapshotFlagsHelp + `
  -dry-run          Print the decisions and delete nothing.
  -by WHO           Who prunes, for the audit log (or $TDA_ACTOR, else $USER).
`)
}

func (c *snapshotPruneCommand) Run(args []string) int {
	fs := c.env.FlagSet("snapshot prune")
	path := fs.String("config", "", "")
	target := fs.String("target", "", "")
	dryRun := fs.Bool("dry-run", false, "")
	by := actorFlag(fs)
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
	var rep snapshotapi.PruneResult
	err := t.call(ctx, snapshotapi.ActionPrune, snapshotapi.PruneArgs{DryRun: *dryRun}, &rep, nil, *by)
	if !*dryRun {
		rec := ops.ActionRecord{Action: ops.ActionSnapshotPrune, Target: t.comp.Name,
			Detail: map[string]string{"deleted": strings.Join(rep.Deleted, ","), "failed": fmt.Sprint(len(rep.Failed))}}
		if err != nil {
			rec.Error = err.Error()
		}
		c.env.audit(ctx, *path, *by, rec)
	}
	if err != nil {
		t.fail(err)
		return 1
	}
	t.printText(rep.Text)
	if len(rep.Failed) > 0 {
		return 1
	}
	return 0
}
