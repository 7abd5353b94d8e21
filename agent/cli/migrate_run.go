package cli

import (
	"context"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/tda-dev/tda/plugins/snapshot"
)

type migrateRunCommand struct{ env *Env }

func (c *migrateRunCommand) Synopsis() string { return "Snapshot, then run a database migration" }

func (c *migrateRunCommand) Help() string {
	return strings.TrimSpace(`
Usage: tda migrate run -config FILE [-target NAME] [-app-version V] -- COMMAND [ARGS...]

  Takes a snapshot (trigger "pre-migration"), waits until it is available, then
  runs the migration command (e.g. flask db upgrade, flyway migrate) with
  TDA_SNAPSHOT_ID set to the snapshot's identifier. The outcome is recorded in
  <data_dir>/sink.snapshot.NAME/migrations.jsonl. If the migration fails, the
  exact command that restores the pre-migration snapshot is printed.

  Exits with the command's status; 1 when the migration could not start.

Flags:
` + snapshotFlagsHelp + `
  -app-version V    Application version to tag (default: as for tda snapshot create).
`)
}

func (c *migrateRunCommand) Run(args []string) int {
	fs := c.env.FlagSet("migrate run", c.Help)
	path := fs.String("config", "", "")
	target := fs.String("target", "", "")
	appVersion := fs.String("app-version", "", "")
	if ok, code := c.env.Parse(fs, args, c.Help); !ok {
		return code
	}
	command := fs.Args()
	if len(command) == 0 {
		c.env.Errorf("give the migration command after --, e.g. tda migrate run -config tda.hcl -- flask db upgrade")
		return 1
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt)
	defer cancel()
	t := c.env.openSnapshotTarget(ctx, *path, *target, *appVersion)
	if t == nil {
		return 1
	}
	defer t.close()
	c.env.Printf("Taking a pre-migration snapshot of %s...\n", t.mgr.Provider().Target())
	rep, err := t.mgr.Migrate(ctx, snapshot.MigrateOptions{
		Command: command,
		Checks:  nil, // approvals and system-state checks are added here
		Stdin:   os.Stdin, Stdout: c.env.Stdout, Stderr: c.env.Stderr,
		RestoreCommand: func(id string) string {
			return restoreCommandLine(*path, t.comp.Name, id, t.mgr.SuggestRestoreName(time.Now()))
		},
	})
	if err != nil {
		c.env.Errorf("%v", err)
		return 1
	}
	if rep.Succeeded() {
		c.env.Printf("Migration succeeded in %s. Pre-migration snapshot: %s\n",
			rep.Finished.Sub(rep.Started).Round(time.Millisecond), rep.Snapshot.ID)
		return 0
	}
	c.env.Errorf("%v. The database may be half-migrated.", rep.Err)
	c.env.Errorf("To get the data as it was before the migration, restore the pre-migration snapshot into a new database:\n\n    %s\n",
		rep.RestoreCommand)
	if rep.ExitCode > 0 {
		return rep.ExitCode
	}
	return 1
}
