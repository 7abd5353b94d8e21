package mysql

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
	"strings"
	"sync"
	"time"

	"github.com/tda-dev/tda/plugins/snapshot/provider"
)

// Create implements provider.Provider. It reads the server's clock and the database's
// character set, starts mysqldump --single-transaction and returns once mysqldump's output
// shows that its consistent snapshot is taken (what is committed after Create returns is not
// in the dump); the rest is written in the background and Wait reports its end.
func (p *Provider) Create(ctx context.Context, req provider.CreateRequest) (provider.Snapshot, error) {
	op := "create snapshot " + req.ID + " of database " + p.cfg.Database
	if err := provider.ValidIdentifier(req.ID); err != nil {
		return provider.Snapshot{}, &provider.Error{Op: op, Class: provider.ErrInvalid, Err: err}
	}
	if _, err := os.Stat(p.metaPath(req.ID)); err == nil {
		return provider.Snapshot{}, &provider.Error{Op: op, Class: provider.ErrAlreadyExists,
			Advice: "a snapshot with this identifier exists; run `tda snapshot list`"}
	}
	dump, err := p.tool("mysqldump", "mariadb-dump")
	if err != nil {
		return provider.Snapshot{}, err
	}
	db, err := p.open(p.cfg.Database)
	if err != nil {
		return provider.Snapshot{}, &provider.Error{Op: op, Err: err}
	}
	defer db.Close()
	m := &metadata{ID: req.ID, Database: p.cfg.Database, Status: provider.StatusCreating,
		Tags: req.Tags, File: req.ID + ".sql", Format: "mysqldump", PID: os.Getpid()}
	err = db.QueryRowContext(ctx, `SELECT UTC_TIMESTAMP(6), VERSION(), DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME
		FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = DATABASE()`).Scan(&m.Time, &m.Server, &m.Charset, &m.Collation)
	if err != nil {
		return provider.Snapshot{}, connectError(op, p.cfg.Database, err)
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
	// --single-transaction: a consistent snapshot without locking InnoDB tables; --hex-blob:
	// binary columns survive any client character set; no CREATE DATABASE, so the dump
	// restores under any name.
	args := append(p.toolArgs(), "--single-transaction", "--quick", "--routines", "--triggers", "--events",
		"--hex-blob", "--no-tablespaces", "--skip-lock-tables", "--default-character-set=utf8mb4", "--", p.cfg.Database)
	cmd := exec.CommandContext(p.ctx, dump, args...)
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
		return provider.Snapshot{}, &provider.Error{Op: op, Err: fmt.Errorf("start mysqldump: %w", err)}
	}
	done, fixed := make(chan struct{}), make(chan struct{})
	p.mu.Lock()
	p.jobs[req.ID] = done
	p.mu.Unlock()
	// What Create reports is read before the writer starts: from here on m is the writer's.
	started := p.snapshot(m)
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		defer close(done)
		defer func() {
			p.mu.Lock()
			delete(p.jobs, req.ID)
			p.mu.Unlock()
		}()
		defer p.unlock(lock)
		p.finish(m, cmd, stdout, stderr, out, fixed)
	}()
	// The recovery point is fixed once mysqldump writes past its consistent-snapshot start.
	select {
	case <-fixed:
	case <-done:
	case <-ctx.Done():
		// The dump goes on in the background; Wait reports its end.
	}
	p.log.Info("snapshot started", "snapshot", req.ID, "database", p.cfg.Database, "recovery_point", started.Time)
	return started, nil
}

// finish copies mysqldump's output to the dump file while hashing it and records the outcome.
// A dump is complete only when mysqldump exits 0 and wrote its closing "-- Dump completed"
// line.
func (p *Provider) finish(m *metadata, cmd *exec.Cmd, stdout io.Reader, stderr *tailBuffer, out *os.File, fixed chan struct{}) {
	start := time.Now()
	hash := sha256.New()
	tail := &tailBuffer{max: 256}
	watch := &markerWatch{fixed: fixed}
	defer watch.close()
	w := bufio.NewWriterSize(io.MultiWriter(out, hash, tail), 1<<20)
	n, copyErr := io.Copy(io.MultiWriter(w, watch), stdout)
	if copyErr == nil {
		copyErr = w.Flush()
	}
	if copyErr != nil {
		_, _ = io.Copy(io.Discard, stdout)
	}
	waitErr := cmd.Wait()
	syncErr := out.Sync()
	closeErr := out.Close()
	var err error
	switch {
	case waitErr != nil:
		err = fmt.Errorf("mysqldump: %v: %s", waitErr, strings.TrimSpace(stderr.String()))
	case copyErr != nil:
		err = fmt.Errorf("write dump: %w", copyErr)
	case syncErr != nil:
		err = fmt.Errorf("write dump: %w", syncErr)
	case closeErr != nil:
		err = fmt.Errorf("write dump: %w", closeErr)
	case !strings.Contains(tail.String(), "-- Dump completed"):
		err = fmt.Errorf("mysqldump ended without its \"Dump completed\" line: the dump is incomplete")
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
	p.log.Info("snapshot available", "snapshot", m.ID, "bytes", n, "took", time.Since(start).Round(time.Millisecond).String())
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

// snapshotMarkers are lines mysqldump writes only after its START TRANSACTION WITH CONSISTENT
// SNAPSHOT: the first table, the routines or events, or the end of an empty database's dump.
var snapshotMarkers = [][]byte{[]byte("\n-- Table structure for table"), []byte("\n-- Dumping routines"),
	[]byte("\n-- Dumping events"), []byte("-- Dump completed")}

// markerWatch closes fixed once mysqldump's output shows that its snapshot is taken.
type markerWatch struct {
	fixed chan struct{}
	prev  []byte // the end of the previous write, for markers split across writes
	seen  bool
}

func (m *markerWatch) Write(b []byte) (int, error) {
	if m.seen {
		return len(b), nil
	}
	joined := append(m.prev, b...)
	for _, mk := range snapshotMarkers {
		if bytes.Contains(joined, mk) {
			m.close()
			return len(b), nil
		}
	}
	if len(joined) > 64 {
		joined = joined[len(joined)-64:]
	}
	m.prev = append(m.prev[:0], joined...)
	return len(b), nil
}

func (m *markerWatch) close() {
	if !m.seen {
		m.seen = true
		close(m.fixed)
	}
}

// tailBuffer keeps the last max bytes written to it.
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
