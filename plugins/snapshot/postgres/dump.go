package postgres

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

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
	if _, err := os.Stat(p.metaPath(req.ID)); err == nil {
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
	m := &metadata{ID: req.ID, Database: p.cfg.Database, Status: provider.StatusCreating,
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
	if err := os.MkdirAll(p.cfg.Dir, 0o700); err != nil {
		return provider.Snapshot{}, &provider.Error{Op: op, Err: err,
			Advice: "check that the dump directory " + p.cfg.Dir + " is writable"}
	}
	lock, err := p.lock(req.ID)
	if err != nil {
		return provider.Snapshot{}, &provider.Error{Op: op, Class: provider.ErrAlreadyExists, Err: err,
			Advice: "another process is writing a snapshot with this identifier"}
	}
	if err := p.reserve(m); err != nil {
		p.unlock(lock)
		if errors.Is(err, fs.ErrExist) {
			return provider.Snapshot{}, &provider.Error{Op: op, Class: provider.ErrAlreadyExists,
				Advice: "a snapshot with this identifier exists; run `tda snapshot list`"}
		}
		return provider.Snapshot{}, &provider.Error{Op: op, Err: err,
			Advice: "check that the dump directory " + p.cfg.Dir + " is writable"}
	}

	out, err := os.OpenFile(p.dumpPath(req.ID), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		p.fail(m, err)
		p.unlock(lock)
		return provider.Snapshot{}, &provider.Error{Op: op, Err: err}
	}
	cmd := exec.CommandContext(p.ctx, pgDump, "--format=custom", "--no-password", "--snapshot="+exported,
		"--dbname="+p.cfg.Database)
	cmd.Env = p.toolEnv()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		out.Close()
		p.fail(m, err)
		p.unlock(lock)
		return provider.Snapshot{}, &provider.Error{Op: op, Err: err}
	}
	stderr := &tailBuffer{max: 4096}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		out.Close()
		p.fail(m, err)
		p.unlock(lock)
		return provider.Snapshot{}, &provider.Error{Op: op, Err: fmt.Errorf("start pg_dump: %w", err)}
	}

	j := &job{done: make(chan struct{})}
	p.mu.Lock()
	p.jobs[req.ID] = j
	p.mu.Unlock()
	// What Create reports is read before the writer starts: from here on m is the writer's.
	started := p.snapshot(m)
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
		defer p.unlock(lock)
		p.finish(m, cmd, stdout, stderr, out, conn, tx)
	}()
	p.log.Info("snapshot started", "snapshot", req.ID, "database", p.cfg.Database, "recovery_point", started.Time)
	return started, nil
}

// finish copies pg_dump's output to the dump file while hashing it, ends the exporting
// transaction and records the outcome.
func (p *Provider) finish(m *metadata, cmd *exec.Cmd, stdout io.Reader, stderr *tailBuffer, out *os.File, conn *pgx.Conn, tx pgx.Tx) {
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
		p.fail(m, err)
		return
	}
	now := time.Now().UTC()
	m.Status, m.SizeBytes, m.SHA256, m.CompletedAt = provider.StatusAvailable, n, hex.EncodeToString(hash.Sum(nil)), &now
	m.PID = 0
	if err := p.writeMeta(m); err != nil {
		p.log.Error("snapshot written but its metadata could not be saved", "snapshot", m.ID, "error", err)
		return
	}
	p.log.Info("snapshot available", "snapshot", m.ID, "bytes", strconv.FormatInt(n, 10),
		"took", time.Since(start).Round(time.Millisecond).String())
}

// fail records a failed dump and removes what it wrote.
func (p *Provider) fail(m *metadata, err error) {
	_ = os.Remove(p.dumpPath(m.ID))
	m.Status, m.Error, m.PID = provider.StatusFailed, err.Error(), 0
	if werr := p.writeMeta(m); werr != nil {
		p.log.Error("could not record failed snapshot", "snapshot", m.ID, "error", werr)
	}
	p.log.Error("snapshot failed", "snapshot", m.ID, "database", m.Database, "error", err)
}

func connectError(op, database string, err error) error {
	return &provider.Error{Op: op, Class: provider.ErrBusy, Err: err,
		Advice: fmt.Sprintf("check that PostgreSQL is running and that the postgres block (host, port, user, password) can reach database %q", database)}
}

// tailBuffer keeps the last max bytes written to it (a tool's stderr).
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf bytes.Buffer
}

func (t *tailBuffer) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf.Write(b)
	if extra := t.buf.Len() - t.max; extra > 0 {
		t.buf.Next(extra)
	}
	return len(b), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.buf.String()
}
