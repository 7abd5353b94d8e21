package snapshot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/tda-dev/tda/plugins/snapshot/provider"
	"github.com/tda-dev/tda/sdk/snapshotapi"
)

// Check runs before a migration's snapshot; an error stops the migration before anything
// happens (approvals and system-state checks plug in here).
type Check func(ctx context.Context) error

// MigrateOptions describe a migration run.
type MigrateOptions struct {
	// Command is the migration, e.g. ["flask", "db", "upgrade"].
	Command []string
	// Checks run in order before the snapshot.
	Checks []Check
	// AppVersion overrides the configured app version tag.
	AppVersion string
	Stdin      io.Reader
	Stdout     io.Writer
	Stderr     io.Writer
	// RestoreCommand renders the command that restores the pre-migration snapshot, printed
	// when the migration fails.
	RestoreCommand func(snapshotID string) string
}

// MigrateReport is the outcome of a migration run.
type MigrateReport struct {
	Snapshot provider.Snapshot
	Command  []string
	Started  time.Time
	Finished time.Time
	// ExitCode is the command's exit status (-1 when it could not start).
	ExitCode int
	// Err is why the migration failed (nil on success).
	Err error
	// RestoreCommand is set when the migration failed.
	RestoreCommand string
}

// Succeeded reports whether the migration ran and exited 0.
func (r MigrateReport) Succeeded() bool { return r.Err == nil }

// MigrationLog is where migration outcomes are recorded, one JSON line each.
func (m *Manager) MigrationLog() string { return migrationLog(m.settings.DataDir) }

// migrationLog is the migration log of the instance whose private directory is dataDir.
func migrationLog(dataDir string) string { return filepath.Join(dataDir, "migrations.jsonl") }

// Migrate runs the checks, takes a pre-migration snapshot and waits until it is available,
// runs the command with TDA_SNAPSHOT_ID in its environment, and records the outcome. A
// failure before the command runs returns an error and runs nothing; a failed command is
// reported in the MigrateReport (Err, RestoreCommand).
func (m *Manager) Migrate(ctx context.Context, opt MigrateOptions) (MigrateReport, error) {
	rep := MigrateReport{Command: opt.Command, ExitCode: -1}
	if len(opt.Command) == 0 {
		return rep, errors.New("no migration command: put it after --, e.g. tda migrate run -- flask db upgrade")
	}
	for _, check := range opt.Checks {
		if err := check(ctx); err != nil {
			return rep, fmt.Errorf("migration not started: %w", err)
		}
	}
	snap, err := m.Create(ctx, CreateOptions{Trigger: provider.TriggerPreMigration, AppVersion: opt.AppVersion, Wait: true})
	if err != nil {
		return rep, fmt.Errorf("migration not started: the pre-migration snapshot failed: %w", err)
	}
	rep.Snapshot = snap

	rep.Started = time.Now().UTC()
	cmd := exec.CommandContext(ctx, opt.Command[0], opt.Command[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = opt.Stdin, opt.Stdout, opt.Stderr
	cmd.Env = append(os.Environ(), "TDA_SNAPSHOT_ID="+snap.ID)
	runErr := cmd.Run()
	rep.Finished = time.Now().UTC()
	var exit *exec.ExitError
	switch {
	case runErr == nil:
		rep.ExitCode = 0
	case errors.As(runErr, &exit):
		rep.ExitCode = exit.ExitCode()
		rep.Err = fmt.Errorf("migration command exited with status %d", rep.ExitCode)
	default:
		rep.Err = fmt.Errorf("migration command could not run: %w", runErr)
	}
	if rep.Err != nil && opt.RestoreCommand != nil {
		rep.RestoreCommand = opt.RestoreCommand(snap.ID)
	}
	if err := m.record(rep); err != nil {
		m.log.Warn("could not record the migration outcome", "file", m.MigrationLog(), "error", err)
	}
	return rep, nil
}

func (m *Manager) record(rep MigrateReport) error {
	rec := snapshotapi.MigrationRecord{Started: rep.Started, Finished: rep.Finished, Command: rep.Command,
		Snapshot: rep.Snapshot.ID, ExitCode: rep.ExitCode, Outcome: "succeeded", RestoreCommand: rep.RestoreCommand}
	if rep.Err != nil {
		rec.Outcome, rec.Error = "failed", rep.Err.Error()
	}
	return appendMigrationRecord(m.settings.DataDir, rec)
}

// appendMigrationRecord adds one line to the migration log and syncs it.
func appendMigrationRecord(dataDir string, rec snapshotapi.MigrationRecord) error {
	line, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(migrationLog(dataDir), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(append(line, '\n')); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
