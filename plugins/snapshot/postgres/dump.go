package postgres

import (
	"bufio"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tda-dev/tda/plugins/snapshot/internal/dumpdir"
	"github.com/tda-dev/tda/plugins/snapshot/provider"
)

// job is a dump this process is writing.
type job struct {
	done chan struct{}
}

// Create implements provider.Provider. It returns once the recovery point is fixed (the
// transaction snapshot is exported and pg_dump started); the dump is written in the
// background and Wait reports its end.
func (p *Provider) Create(ctx context.Context, req provider.CreateRequest) (provider.Snapshot, error) {
	op := "create snapshot " + req.ID + " of database " + p.cfg.Database
	if err := provider.ValidIdentifier(req.ID); err != nil {
		return provider.Snapshot{}, &provider.Error{Op: op, Class: provider.ErrInvalid, Err: err}
	}
	if _, err := os.Stat(p.dir.MetaPath(req.ID)); err == nil {
		return provider.Snapshot{}, &provider.Error{Op: op, Class: provider.ErrAlreadyExists,
			Advice: "a snapshot with this identifier exists; run `tda snapshot list`"}
	}
	pgDump, err := p.tool("pg_dump")
	if err != nil {
		return provider.Snapshot{}, err
	}

	conn, err := pgx.Connect(ctx, p.connString(p.cfg.Database))
	if err != nil {
		return provider.Snapshot{}, connectError(op, p.cfg.Database, err)
	}
	keep := false
	defer func() {
		if !keep {
			_ = conn.Close(context.Background())
		}
	}()
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return provider.Snapshot{}, &provider.Error{Op: op, Err: err}
	}
	m := &dumpdir.Meta{ID: req.ID, Database: p.cfg.Database, Status: provider.StatusCreating,
		Tags: req.Tags, File: req.ID + ".dump", Format: "custom", PID: os.Getpid()}
	var exported string
	err = tx.QueryRow(ctx, `SELECT pg_export_snapshot(), statement_timestamp(),
		current_setting('server_version'), pg_encoding_to_char(d.encoding), d.datcollate, d.datctype
		FROM pg_database d WHERE d.datname = current_database()`).
		Scan(&exported, &m.Time, &m.Server, &m.Encoding, &m.Collate, &m.CType)
	if err != nil {
		return provider.Snapshot{}, &provider.Error{Op: op, Err: fmt.Errorf("export transaction snapshot: %w", err)}
	}
	m.Time = m.Time.UTC()
	lock, out, err := p.dir.Begin(op, m)
	if err != nil {
		return provider.Snapshot{}, err
	}
	cmd := exec.CommandContext(p.ctx, pgDump, "--format=custom", "--no-password", "--snapshot="+exported,
		"--dbname="+p.cfg.Database)
	cmd.Env = p.toolEnv()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		out.Close()
		p.dir.Fail(m, err)
		p.dir.Unlock(lock)
		return provider.Snapshot{}, &provider.Error{Op: op, Err: err}
	}
	stderr := &dumpdir.TailBuffer{Max: 4096}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		out.Close()
		p.dir.Fail(m, err)
		p.dir.Unlock(lock)
		return provider.Snapshot{}, &provider.Error{Op: op, Err: fmt.Errorf("start pg_dump: %w", err)}
	}

	j := &job{done: make(chan struct{})}
	p.mu.Lock()
	p.jobs[req.ID] = j
	p.mu.Unlock()
	// What Create reports is read before the writer starts: from here on m is the writer's.
	started := p.dir.Snapshot(m)
	p.wg.Add(1)
	keep = true
	go func() {
		defer p.wg.Done()
		defer close(j.done)
		defer func() {
			p.mu.Lock()
			delete(p.jobs, req.ID)
			p.mu.Unlock()
		}()
		defer p.dir.Unlock(lock)
		p.finish(m, cmd, stdout, stderr, out, conn, tx)
	}()
	p.log.Info("snapshot started", "snapshot", req.ID, "database", p.cfg.Database, "recovery_point", started.Time)
	return started, nil
}

// finish copies pg_dump's output to the dump file while hashing it, ends the exporting
// transaction and records the outcome.
func (p *Provider) finish(m *dumpdir.Meta, cmd *exec.Cmd, stdout io.Reader, stderr *dumpdir.TailBuffer, out *os.File, conn *pgx.Conn, tx pgx.Tx) {
	start := time.Now()
	hash := sha256.New()
	w := bufio.NewWriterSize(io.MultiWriter(out, hash), 1<<20)
	n, copyErr := io.Copy(w, stdout)
	if copyErr == nil {
		copyErr = w.Flush()
	}
	if copyErr != nil {
		_, _ = io.Copy(io.Discard, stdout) // let pg_dump end
	}
	waitErr := cmd.Wait()
	_ = tx.Rollback(context.Background())
	_ = conn.Close(context.Background())
	syncErr := out.Sync()
	closeErr := out.Close()

	var err error
	switch {
	case waitErr != nil:
		err = fmt.Errorf("pg_dump: %v: %s", waitErr, strings.TrimSpace(stderr.String()))
	case copyErr != nil:
		err = fmt.Errorf("write dump: %w", copyErr)
	case syncErr != nil:
		err = fmt.Errorf("write dump: %w", syncErr)
	case closeErr != nil:
		err = fmt.Errorf("write dump: %w", closeErr)
	}
	if err != nil {
		p.dir.Fail(m, err)
		return
	}
	p.dir.Complete(m, n, hash.Sum(nil), time.Since(start))
}

func connectError(op, database string, err error) error {
	return &provider.Error{Op: op, Class: provider.ErrBusy, Err: err,
		Advice: fmt.Sprintf("check that PostgreSQL is running and that the postgres block (host, port, user, password) can reach database %q", database)}
}
