package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"

	"github.com/tda-dev/tda/plugins/snapshot/internal/dumpdir"
	"github.com/tda-dev/tda/plugins/snapshot/provider"
)

// databaseNameRE is what tda accepts as the name of a restored database.
var databaseNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)

// Restore implements provider.Provider: verifies the dump's checksum, creates the new database
// with the source's character set and collation, and loads the dump with the mysql client. A
// mysqldump file holds DDL, which MySQL commits statement by statement, so a failed restore
// drops the new database again instead of rolling back.
func (p *Provider) Restore(ctx context.Context, req provider.RestoreRequest) (provider.RestoreResult, error) {
	op := fmt.Sprintf("restore snapshot %s into database %s", req.SnapshotID, req.NewName)
	if req.SnapshotID == "" || !req.ToTime.IsZero() || req.Latest {
		return provider.RestoreResult{}, &provider.Error{Op: "restore into " + req.NewName,
			Class:  provider.ErrNotSupported,
			Advice: "MySQL restores need a snapshot (-snapshot ID); point-in-time recovery is an Aurora feature"}
	}
	if !databaseNameRE.MatchString(req.NewName) {
		return provider.RestoreResult{}, &provider.Error{Op: op, Class: provider.ErrInvalid,
			Err:    fmt.Errorf("invalid database name %q", req.NewName),
			Advice: "use 1 to 64 letters, digits or underscores, starting with a letter"}
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
	client, err := p.tool("mysql", "mariadb")
	if err != nil {
		return provider.RestoreResult{}, err
	}
	admin, err := p.open("")
	if err != nil {
		return provider.RestoreResult{}, &provider.Error{Op: op, Err: err}
	}
	defer admin.Close()
	var n int
	if err := admin.QueryRowContext(ctx, `SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?`,
		req.NewName).Scan(&n); err != nil {
		return provider.RestoreResult{}, connectError(op, req.NewName, err)
	}
	if n > 0 {
		return provider.RestoreResult{}, &provider.Error{Op: op, Class: provider.ErrAlreadyExists,
			Err:    fmt.Errorf("database %q exists", req.NewName),
			Advice: "restores never overwrite: choose another name with -to"}
	}
	create := "CREATE DATABASE `" + req.NewName + "`"
	if m.Charset != "" && safeWord(m.Charset) && safeWord(m.Collation) {
		create += " CHARACTER SET " + m.Charset + " COLLATE " + m.Collation
	}
	if _, err := admin.ExecContext(ctx, create); err != nil {
		return provider.RestoreResult{}, &provider.Error{Op: op, Err: fmt.Errorf("create database: %w", err),
			Advice: "the user needs the CREATE privilege; check the mysql block's user"}
	}
	in, err := os.Open(p.dir.DumpPath(m.ID))
	if err != nil {
		p.drop(admin, req.NewName)
		return provider.RestoreResult{}, &provider.Error{Op: op, Err: err}
	}
	defer in.Close()
	cmd := exec.CommandContext(ctx, client, append(p.toolArgs(), "--default-character-set=utf8mb4",
		"--database="+req.NewName)...)
	cmd.Env = p.toolEnv()
	cmd.Stdin = in
	stderr := &dumpdir.TailBuffer{Max: 4096}
	cmd.Stderr, cmd.Stdout = stderr, io.Discard
	if err := cmd.Run(); err != nil {
		advice := "nothing was restored and the new database was dropped; fix the cause and run the restore again"
		if derr := p.drop(admin, req.NewName); derr != nil {
			advice = fmt.Sprintf("the half-restored database %s could not be dropped (%v): drop it by hand", req.NewName, derr)
		}
		return provider.RestoreResult{}, &provider.Error{Op: op,
			Err: fmt.Errorf("mysql: %v: %s", err, strings.TrimSpace(stderr.String())), Advice: advice}
	}
	endpoint := fmt.Sprintf("mysql://%s@%s/%s", p.cfg.User, net.JoinHostPort(p.cfg.Host, strconv.Itoa(p.cfg.Port)), req.NewName)
	return provider.RestoreResult{Name: req.NewName, RecoveryPoint: m.Time, Endpoint: endpoint,
		Created: []string{"database " + req.NewName}}, nil
}

// drop removes a database a failed restore created.
func (p *Provider) drop(admin *sql.DB, name string) error {
	_, err := admin.ExecContext(context.Background(), "DROP DATABASE IF EXISTS `"+name+"`")
	return err
}

// safeWord reports whether s is a plain character set or collation name.
func safeWord(s string) bool {
	for _, r := range s {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return s != ""
}
