package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"time"

	"github.com/tda-dev/tda/agent/ops"
	"github.com/tda-dev/tda/sdk/snapshotapi"
)

type migrateRunCommand struct{ env *Env }

func (c *migrateRunCommand) Synopsis() string { return "Snapshot, then run a database migration" }

func (c *migrateRunCommand) Help() string {
	return strings.TrimSpace(`
Usage: tda migrate run -config FILE -name NAME -by WHO [-target NAME] [-app-version V] -- COMMAND [ARGS...]

  Checks that the migration may run: it needs an approved request (tda migrate
  request, then someone else's approval) that is still valid; outside the
  maintenance window, and while the system is blocked by an unacknowledged HIGH
  alert, it also needs an override in force (tda override on). Then it takes a
  snapshot (trigger "pre-migration"), waits until it is available, then
  runs the migration command (e.g. flask db upgrade, flyway migrate) with
  TDA_SNAPSHOT_ID set to the snapshot's identifier. The outcome is recorded in
  <data_dir>/sink.snapshot.NAME/migrations.jsonl and on the request (with the
  pre-migration snapshot). If the migration fails, the exact command that
  restores the pre-migration snapshot is printed.

  Exits with the command's status; 1 when the migration could not start.

Flags:
` + snapshotFlagsHelp + `
  -name NAME        The migration as its approved request names it (or -id).
  -id ID            The approved request's ID.
  -by WHO           Who runs it (or $TDA_ACTOR).
  -app-version V    Application version to tag (default: as for tda snapshot create).
  -addr URL         Check the approval with an agent's HTTP API (or $TDA_ADDR).
  -token TOKEN      Token for -addr (or $TDA_TOKEN).
`)
}

func (c *migrateRunCommand) Run(args []string) int {
	fs := c.env.FlagSet("migrate run")
	path := fs.String("config", "", "")
	target := fs.String("target", "", "")
	appVersion := fs.String("app-version", "", "")
	name := fs.String("name", "", "")
	id := fs.String("id", "", "")
	by := actorFlag(fs)
	addr := fs.String("addr", os.Getenv("TDA_ADDR"), "")
	token := fs.String("token", os.Getenv("TDA_TOKEN"), "")
	if ok, code := c.env.Parse(fs, args, c.Help); !ok {
		return code
	}
	if *name == "" && *id == "" {
		c.env.Errorf("which migration? give -name (its revision or version) or -id of its approved request")
		return 1
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
	conn, _ := c.env.connect(controlFlags{config: path, addr: addr, token: token})
	if conn == nil {
		return 1
	}
	defer release(conn)
	actor := actorOf(*by)
	var begun *ops.Migration
	// The approval, the maintenance window and the system state are checked (and the request
	// marked running) before the snapshot is taken.
	check := func(ctx context.Context) error {
		m, err := conn.BeginMigration(ctx, actor, ops.BeginMigration{ID: *id, Name: *name, Command: command})
		if err != nil {
			return err
		}
		begun = &m
		if n := len(m.Runs); n > 0 && m.Runs[n-1].Override != "" {
			c.env.Printf("Running %s %s.\n", safe(m.Name), safe(m.Runs[n-1].Override))
		}
		return nil
	}
	rep := c.migrate(ctx, t, command, check, func(id, restoreName string) string {
		return restoreCommandLine(*path, t.comp.Name, id, restoreName)
	})
	err := rep.startErr
	if begun != nil {
		fin := ops.FinishMigration{ID: begun.ID, Snapshot: rep.snapshot, Outcome: ops.MigrationSucceeded, ExitCode: rep.exitCode}
		switch {
		case err != nil:
			fin.Outcome, fin.Error = ops.MigrationFailed, err.Error()
		case rep.err != nil:
			fin.Outcome, fin.Error = ops.MigrationFailed, rep.err.Error()
		}
		recordCtx, cancelRecord := context.WithTimeout(context.Background(), time.Minute)
		if _, ferr := conn.FinishMigration(recordCtx, actor, fin); ferr != nil {
			c.env.Errorf("could not record the outcome on migration request %s: %v", begun.ID, ferr)
		}
		cancelRecord()
	}
	if err != nil {
		t.fail(err)
		return 1
	}
	if rep.err == nil {
		c.env.Printf("Migration succeeded in %s. Pre-migration snapshot: %s\n",
			rep.finished.Sub(rep.started).Round(time.Millisecond), rep.snapshot)
		return 0
	}
	c.env.Errorf("%v. The database may be half-migrated.", rep.err)
	c.env.Errorf("To get the data as it was before the migration, restore the pre-migration snapshot into a new database:\n\n    %s\n",
		rep.restoreCommand)
	if rep.exitCode > 0 {
		return rep.exitCode
	}
	return 1
}

// migrationRun is what migrate did: startErr when nothing ran (a check refused, the
// snapshot failed), else the command's outcome.
type migrationRun struct {
	startErr          error
	snapshot          string
	started, finished time.Time
	exitCode          int
	err               error
	restoreCommand    string
}

// migrate runs the checks, takes a pre-migration snapshot through the provider and waits
// until it is available, runs the command here with TDA_SNAPSHOT_ID in its environment, and
// has the provider record the outcome beside its snapshots.
func (c *migrateRunCommand) migrate(ctx context.Context, t *snapshotTarget, command []string,
	check func(context.Context) error, restoreCommand func(id, restoreName string) string) migrationRun {
	rep := migrationRun{exitCode: -1}
	if err := check(ctx); err != nil {
		rep.startErr = fmt.Errorf("migration not started: %w", err)
		return rep
	}
	c.env.Printf("Taking a pre-migration snapshot (%s)...\n", t.comp.Address())
	var snap snapshotapi.CreateResult
	err := t.call(ctx, snapshotapi.ActionCreate, snapshotapi.CreateArgs{Trigger: snapshotapi.TriggerPreMigration,
		AppVersion: t.appVersion, Wait: true}, &snap, nil, "")
	if err != nil {
		rep.startErr = fmt.Errorf("migration not started: the pre-migration snapshot failed: %w", err)
		return rep
	}
	rep.snapshot = snap.Snapshot.ID
	rep.started = time.Now().UTC()
	cmd := exec.CommandContext(ctx, command[0], command[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, c.env.Stdout, c.env.Stderr
	cmd.Env = append(os.Environ(), "TDA_SNAPSHOT_ID="+rep.snapshot)
	runErr := cmd.Run()
	rep.finished = time.Now().UTC()
	var exit *exec.ExitError
	switch {
	case runErr == nil:
		rep.exitCode = 0
	case errors.As(runErr, &exit):
		rep.exitCode = exit.ExitCode()
		rep.err = fmt.Errorf("migration command exited with status %d", rep.exitCode)
	default:
		rep.err = fmt.Errorf("migration command could not run: %w", runErr)
	}
	record := snapshotapi.MigrationRecord{Started: rep.started, Finished: rep.finished, Command: command,
		Snapshot: rep.snapshot, ExitCode: rep.exitCode, Outcome: "succeeded"}
	if rep.err != nil {
		rep.restoreCommand = restoreCommand(rep.snapshot, snap.RestoreName)
		record.Outcome, record.Error, record.RestoreCommand = "failed", rep.err.Error(), rep.restoreCommand
	}
	recordCtx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := t.call(recordCtx, snapshotapi.ActionMigrationRecord, record, nil, nil, ""); err != nil {
		c.env.Errorf("could not record the migration's outcome with %s: %v", t.comp.Address(), err)
	}
	return rep
}
