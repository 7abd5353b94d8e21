package postgres

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/tda-dev/tda/plugins/snapshot/internal/dumpdir"
	"github.com/tda-dev/tda/plugins/snapshot/provider"
)

// databaseNameRE is what tda accepts as the name of a restored database: safe to type in a
// shell and in SQL without surprises.
var databaseNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]{0,62}$`)

// Restore implements provider.Provider: verifies the dump's checksum, creates the new database
// with the source's encoding and collation, and runs pg_restore in one transaction. A failed
// restore drops the new database again.
func (p *Provider) Restore(ctx context.Context, req provider.RestoreRequest) (provider.RestoreResult, error) {
	op := fmt.Sprintf("restore snapshot %s into database %s", req.SnapshotID, req.NewName)
	if req.SnapshotID == "" || !req.ToTime.IsZero() || req.Latest {
		return provider.RestoreResult{}, &provider.Error{Op: "restore into " + req.NewName,
			Class:  provider.ErrNotSupported,
			Advice: "PostgreSQL restores need a snapshot (-snapshot ID); point-in-time recovery is an Aurora feature"}
	}
	if !databaseNameRE.MatchString(req.NewName) {
		return provider.RestoreResult{}, &provider.Error{Op: op, Class: provider.ErrInvalid,
			Err:    fmt.Errorf("invalid database name %q", req.NewName),
			Advice: "use 1 to 63 letters, digits, underscores or hyphens, starting with a letter"}
	}
	if req.NewName == p.cfg.Database {
		return provider.RestoreResult{}, &provider.Error{Op: op, Class: provider.ErrInvalid,
			Err:    errors.New("the new database is the protected database"),
			Advice: "restores never overwrite: choose a new name with -to and switch the application over once you have checked it"}
	}
	m, err := p.dir.ReadMeta(req.SnapshotID)
	if err != nil {
		return provider.RestoreResult{}, err
	}
	if s := p.dir.Snapshot(m); s.Status != provider.StatusAvailable {
		return provider.RestoreResult{}, &provider.Error{Op: op, Class: provider.ErrBusy,
			Err:    fmt.Errorf("snapshot is %s %s", s.Status, s.Detail),
			Advice: "choose an available snapshot from `tda snapshot list`"}
	}
	if err := p.dir.VerifyMeta(m); err != nil {
		return provider.RestoreResult{}, &provider.Error{Op: op, Class: provider.ErrCorrupt, Err: err,
			Advice: "the dump was changed or damaged after it was taken; restore another snapshot"}
	}
	pgRestore, err := p.tool("pg_restore")
	if err != nil {
		return provider.RestoreResult{}, err
	}

	admin, err := pgx.Connect(ctx, p.connString(p.cfg.MaintenanceDatabase))
	if err != nil {
		return provider.RestoreResult{}, connectError(op, p.cfg.MaintenanceDatabase, err)
	}
	defer admin.Close(context.Background())
	var exists bool
	if err := admin.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`,
		req.NewName).Scan(&exists); err != nil {
		return provider.RestoreResult{}, &provider.Error{Op: op, Err: err}
	}
	if exists {
		return provider.RestoreResult{}, &provider.Error{Op: op, Class: provider.ErrAlreadyExists,
			Err:    fmt.Errorf("database %q exists", req.NewName),
			Advice: "restores never overwrite: choose another name with -to"}
	}
	create := "CREATE DATABASE " + pgx.Identifier{req.NewName}.Sanitize() + " TEMPLATE template0"
	if m.Encoding != "" {
		create += " ENCODING " + quoteLiteral(m.Encoding) + " LC_COLLATE " + quoteLiteral(m.Collate) +
			" LC_CTYPE " + quoteLiteral(m.CType)
	}
	if _, err := admin.Exec(ctx, create); err != nil {
		return provider.RestoreResult{}, &provider.Error{Op: op, Err: fmt.Errorf("create database: %w", err),
			Advice: "the role needs CREATEDB; check the postgres block's user"}
	}

	cmd := exec.CommandContext(ctx, pgRestore, "--no-password", "--exit-on-error", "--single-transaction",
		"--dbname="+req.NewName, p.dir.DumpPath(m.ID))
	cmd.Env = p.toolEnv()
	stderr := &dumpdir.TailBuffer{Max: 4096}
	cmd.Stderr = stderr
	if err := cmd.Run(); err != nil {
		_, dropErr := admin.Exec(context.Background(), "DROP DATABASE IF EXISTS "+pgx.Identifier{req.NewName}.Sanitize())
		advice := "nothing was restored and the new database was dropped; fix the cause and run the restore again"
		if dropErr != nil {
			advice = fmt.Sprintf("the half-restored database %s could not be dropped (%v): drop it by hand", req.NewName, dropErr)
		}
		return provider.RestoreResult{}, &provider.Error{Op: op,
			Err: fmt.Errorf("pg_restore: %v: %s", err, strings.TrimSpace(stderr.String())), Advice: advice}
	}
	return provider.RestoreResult{Name: req.NewName, RecoveryPoint: m.Time,
		Endpoint: p.endpoint(req.NewName), Created: []string{"database " + req.NewName}}, nil
}

func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
