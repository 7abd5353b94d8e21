package mysql

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/tda-dev/tda/plugins/snapshot/internal/dumpdir"
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
	if _, err := os.Stat(p.dir.MetaPath(req.ID)); err == nil {
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
	m := &dumpdir.Meta{ID: req.ID, Database: p.cfg.Database, Status: provider.StatusCreating,
		Tags: req.Tags, File: req.ID + ".sql", Format: "mysqldump", PID: os.Getpid()}
	err = db.QueryRowContext(ctx, `SELECT UTC_TIMESTAMP(6), VERSION(), DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME
		FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = DATABASE()`).Scan(&m.Time, &m.Server, &m.Charset, &m.Collation)
	if err != nil {
		return provider.Snapshot{}, connectError(op, p.cfg.Database, err)
	}
	m.Time = m.Time.UTC()
	lock, out, err := p.dir.Begin(op, m)
	if err != nil {
		return provider.Snapshot{}, err
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
		return provider.Snapshot{}, &provider.Error{Op: op, Err: fmt.Errorf("start mysqldump: %w", err)}
	}
	done, fixed := make(chan struct{}), make(chan struct{})
	p.mu.Lock()
	p.jobs[req.ID] = done
	p.mu.Unlock()
	// What Create reports is read before the writer starts: from here on m is the writer's.
	started := p.dir.Snapshot(m)
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		defer close(done)
		defer func() {
			p.mu.Lock()
			delete(p.jobs, req.ID)
			p.mu.Unlock()
		}()
		defer p.dir.Unlock(lock)
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
func (p *Provider) finish(m *dumpdir.Meta, cmd *exec.Cmd, stdout io.Reader, stderr *dumpdir.TailBuffer, out *os.File, fixed chan struct{}) {
	start := time.Now()
	hash := sha256.New()
	tail := &dumpdir.TailBuffer{Max: 256}
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
		p.dir.Fail(m, err)
		return
	}
	p.dir.Complete(m, n, hash.Sum(nil), time.Since(start))
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
