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

type snapshotCreateCommand struct{ env *Env }

func (c *snapshotCreateCommand) Synopsis() string { return "Take a manual snapshot now" }

func (c *snapshotCreateCommand) Help() string {
	return strings.TrimSpace(`
Usage: tda snapshot create -config FILE [-target NAME] [-app-version V] [-no-wait] [-by WHO] [-reason TEXT]

  Takes a snapshot (trigger "manual") of the cluster or database a sink "snapshot"
  block protects, tagged with created_at, trigger, app_version and created_by=tda,
  and waits until it is available (at most the block's wait_timeout).

Flags:
` + snapshotFlagsHelp + `
  -app-version V    Application version to tag (default: the block's app_version,
                    $TDA_APP_VERSION, then the agent block's app_version).
  -no-wait          Return once the snapshot is started, without waiting until it is available.
  -by WHO           Who takes it, for the audit log (or $TDA_ACTOR, else $USER).
  -reason TEXT      Why, for the audit log.
`)
}

func (c *snapshotCreateCommand) Run(args []string) int {
	fs := c.env.FlagSet("snapshot create")
	path := fs.String("config", "", "")
	target := fs.String("target", "", "")
	appVersion := fs.String("app-version", "", "")
	noWait := fs.Bool("no-wait", false, "")
	by := actorFlag(fs)
	reason := fs.String("reason", "", "")
	if ok, code := c.env.Parse(fs, args, c.Help); !ok {
		return code
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt)
	defer cancel()
	t := c.env.openSnapshotTarget(ctx, *path, *target, *appVersion)
	if t == nil {
		return 1
	}
	defer t.close()
	start := time.Now()
	var res snapshotapi.CreateResult
	err := t.call(ctx, snapshotapi.ActionCreate, snapshotapi.CreateArgs{Trigger: snapshotapi.TriggerManual,
		AppVersion: t.appVersion, Wait: !*noWait}, &res, nil, *by)
	rec := ops.ActionRecord{Action: ops.ActionSnapshotCreate, Target: res.Snapshot.ID, Reason: *reason,
		Detail: map[string]string{"target": t.comp.Name, "trigger": snapshotapi.TriggerManual}}
	if err != nil {
		rec.Error = err.Error()
	}
	c.env.audit(ctx, *path, *by, rec)
	if err != nil {
		t.fail(err)
		return 1
	}
	t.printText(res.Text)
	if *noWait {
		c.env.Printf("Started; follow it with `tda snapshot list -config %s`.\n", *path)
	} else {
		c.env.Printf("Available after %s.\n", time.Since(start).Round(time.Millisecond))
	}
	return 0
}
