// Package dumpdir keeps the snapshots of the providers that dump a database into a directory
// (postgres, mysql): <dir>/<id><ext> is the dump, <dir>/<id>.json its metadata, and
// <dir>/.<id>.lock is held (flock) by the process writing it. The providers differ in how
// they dump and restore; the directory, its metadata, the writer's lock, listing, deleting,
// waiting and verifying are this package's.
package dumpdir

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/tda-dev/tda/plugins/snapshot/provider"
)

// Meta is the JSON file beside each dump. The server's settings that a restore recreates
// are the provider's own: PostgreSQL's encoding, collate and ctype, MySQL's charset and
// collation (each provider fills in its fields; the others stay absent from its files).
type Meta struct {
	ID          string            `json:"id"`
	Database    string            `json:"database"`
	Status      string            `json:"status"`
	Time        time.Time         `json:"time"`
	CompletedAt *time.Time        `json:"completed_at,omitempty"`
	Tags        map[string]string `json:"tags"`
	File        string            `json:"file"`
	Format      string            `json:"format"`
	SizeBytes   int64             `json:"size_bytes,omitempty"`
	SHA256      string            `json:"sha256,omitempty"`
	Server      string            `json:"server_version,omitempty"`
	Charset     string            `json:"charset,omitempty"`
	Collation   string            `json:"collation,omitempty"`
	Encoding    string            `json:"encoding,omitempty"`
	Collate     string            `json:"collate,omitempty"`
	CType       string            `json:"ctype,omitempty"`
	PID         int               `json:"pid,omitempty"`
	Error       string            `json:"error,omitempty"`
}

// Dir is one provider's dump directory.
type Dir struct {
	// Path is the directory; Ext the dump files' extension (".dump", ".sql").
	Path string
	Ext  string
	Log  hclog.Logger
	// PollInterval paces Wait for a dump another process writes.
	PollInterval time.Duration
	// FailedAdvice says what to check when a dump failed ("the PostgreSQL log").
	FailedAdvice string
}

// MetaPath, DumpPath and LockPath are a snapshot's files. Only ids that passed
// provider.ValidSnapshotID (ReadMeta checks them; new ids are made by provider.NewID) are
// ever joined to the directory.
func (d *Dir) MetaPath(id string) string { return filepath.Join(d.Path, id+".json") }
func (d *Dir) DumpPath(id string) string { return filepath.Join(d.Path, id+d.Ext) }
func (d *Dir) LockPath(id string) string { return filepath.Join(d.Path, "."+id+".lock") }

// Reserve writes the first metadata of a new snapshot, failing if the ID is taken.
func (d *Dir) Reserve(m *Meta) error {
	if err := os.MkdirAll(d.Path, 0o700); err != nil {
		return fmt.Errorf("create dump directory: %w", err)
	}
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	f, err := os.OpenFile(d.MetaPath(m.ID), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(append(data, '\n')); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// WriteMeta replaces a metadata file atomically (temp file, fsync, rename, directory fsync).
func (d *Dir) WriteMeta(m *Meta) error {
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(d.Path, "."+m.ID+".*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), d.MetaPath(m.ID)); err != nil {
		return err
	}
	if dir, err := os.Open(d.Path); err == nil {
		_ = dir.Sync()
		dir.Close()
	}
	return nil
}

// ReadMeta is the one way in to a snapshot's files: Get, Delete, Verify, List and the
// providers' restores all pass through it, and it refuses an id that could name a file
// outside the dump directory before any path is built from it.
func (d *Dir) ReadMeta(id string) (*Meta, error) {
	if err := provider.ValidSnapshotID(id); err != nil {
		return nil, err
	}
	data, err := os.ReadFile(d.MetaPath(id))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, &provider.Error{Op: "snapshot " + id, Class: provider.ErrNotFound,
			Advice: fmt.Sprintf("no such snapshot in %s; run `tda snapshot list`", d.Path)}
	}
	if err != nil {
		return nil, err
	}
	var m Meta
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("read %s: %w", d.MetaPath(id), err)
	}
	m.ID = id // the file name is the identity: the dump beside it has the same name
	return &m, nil
}

// Snapshot converts metadata to a provider.Snapshot, marking a dump whose writer is gone as
// failed.
func (d *Dir) Snapshot(m *Meta) provider.Snapshot {
	s := provider.Snapshot{ID: m.ID, Target: m.Database, Time: m.Time, Status: m.Status,
		Tags: m.Tags, SizeBytes: m.SizeBytes, Detail: m.Error}
	if m.Status == provider.StatusCreating && !d.writing(m) {
		s.Status = provider.StatusFailed
		s.Detail = fmt.Sprintf("interrupted: the process (pid %d) writing the dump stopped before it finished", m.PID)
	}
	return s
}

// writing reports whether a dump in state creating is still being written: its writer, in
// this process or another, holds an exclusive flock on its lock file for as long as it
// writes.
func (d *Dir) writing(m *Meta) bool {
	f, err := os.Open(d.LockPath(m.ID))
	if err != nil {
		return false
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return errors.Is(err, syscall.EWOULDBLOCK)
	}
	_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	return false
}

// Lock takes the writer's lock of a new snapshot (creating the directory if need be).
func (d *Dir) Lock(id string) (*os.File, error) {
	if err := os.MkdirAll(d.Path, 0o700); err != nil {
		return nil, fmt.Errorf("create dump directory: %w", err)
	}
	f, err := os.OpenFile(d.LockPath(id), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// Unlock releases and removes the writer's lock.
func (d *Dir) Unlock(f *os.File) {
	_ = os.Remove(f.Name())
	_ = f.Close()
}

// Get implements provider.Provider.
func (d *Dir) Get(_ context.Context, id string) (provider.Snapshot, error) {
	m, err := d.ReadMeta(id)
	if err != nil {
		return provider.Snapshot{}, err
	}
	return d.Snapshot(m), nil
}

// List implements provider.Provider: every metadata file in the dump directory, newest
// first. A file that cannot be read is skipped with a warning, never fails the listing.
func (d *Dir) List(context.Context) ([]provider.Snapshot, error) {
	entries, err := os.ReadDir(d.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", d.Path, err)
	}
	var out []provider.Snapshot
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || strings.HasPrefix(name, ".") || !strings.HasSuffix(name, ".json") {
			continue
		}
		m, err := d.ReadMeta(strings.TrimSuffix(name, ".json"))
		if err != nil {
			d.Log.Warn("skipping unreadable snapshot metadata", "file", name, "error", err)
			continue
		}
		out = append(out, d.Snapshot(m))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Time.After(out[j].Time) })
	return out, nil
}

// Delete implements provider.Provider: removes the dump, then its metadata.
func (d *Dir) Delete(_ context.Context, id string) error {
	m, err := d.ReadMeta(id)
	if err != nil {
		return err
	}
	if s := d.Snapshot(m); s.Status == provider.StatusCreating {
		return &provider.Error{Op: "delete snapshot " + id, Class: provider.ErrBusy,
			Advice: "the dump is still being written; delete it once it is available"}
	}
	if err := os.Remove(d.DumpPath(id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete snapshot %s: %w", id, err)
	}
	if err := os.Remove(d.MetaPath(id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete snapshot %s: %w", id, err)
	}
	_ = os.Remove(d.LockPath(id)) // left by a writer that died
	return nil
}

// Wait waits until the snapshot is available or failed: first for done (closed when this
// process's writer of it ends; nil when it writes none), then by polling the metadata (a
// dump another process writes).
func (d *Dir) Wait(ctx context.Context, id string, done <-chan struct{}) (provider.Snapshot, error) {
	if done != nil {
		select {
		case <-done:
		case <-ctx.Done():
			return provider.Snapshot{}, fmt.Errorf("wait for snapshot %s: %w", id, ctx.Err())
		}
	}
	for {
		s, err := d.Get(ctx, id)
		if err != nil {
			return s, err
		}
		switch s.Status {
		case provider.StatusAvailable:
			return s, nil
		case provider.StatusFailed:
			return s, &provider.Error{Op: "snapshot " + id, Err: errors.New("failed: " + s.Detail),
				Advice: "check the database connection and " + d.FailedAdvice + ", then take a new snapshot"}
		}
		select {
		case <-ctx.Done():
			return s, fmt.Errorf("wait for snapshot %s: still %s: %w", id, s.Status, ctx.Err())
		case <-time.After(d.PollInterval):
		}
	}
}

// Complete records a dump written whole: its size and checksum, and the state available.
func (d *Dir) Complete(m *Meta, n int64, sum []byte, took time.Duration) {
	now := time.Now().UTC()
	m.Status, m.SizeBytes, m.SHA256, m.CompletedAt = provider.StatusAvailable, n, hex.EncodeToString(sum), &now
	m.PID = 0
	if err := d.WriteMeta(m); err != nil {
		d.Log.Error("snapshot written but its metadata could not be saved", "snapshot", m.ID, "error", err)
		return
	}
	d.Log.Info("snapshot available", "snapshot", m.ID, "bytes", n, "took", took.Round(time.Millisecond).String())
}

// Fail records a failed dump and removes what it wrote.
func (d *Dir) Fail(m *Meta, err error) {
	_ = os.Remove(d.DumpPath(m.ID))
	m.Status, m.Error, m.PID = provider.StatusFailed, err.Error(), 0
	if werr := d.WriteMeta(m); werr != nil {
		d.Log.Error("could not record failed snapshot", "snapshot", m.ID, "error", werr)
	}
	d.Log.Error("snapshot failed", "snapshot", m.ID, "database", m.Database, "error", err)
}

// VerifyMeta checks a dump file against the size and SHA-256 recorded when it was written.
func (d *Dir) VerifyMeta(m *Meta) error {
	f, err := os.Open(d.DumpPath(m.ID))
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return err
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if n != m.SizeBytes || sum != m.SHA256 {
		return fmt.Errorf("dump %s has %d bytes with sha256 %s; %d bytes with sha256 %s were recorded",
			d.DumpPath(m.ID), n, sum, m.SizeBytes, m.SHA256)
	}
	return nil
}

// Verify checks a snapshot's dump against its recorded checksum.
func (d *Dir) Verify(_ context.Context, id string) error {
	m, err := d.ReadMeta(id)
	if err != nil {
		return err
	}
	return d.VerifyMeta(m)
}

// TailBuffer keeps the last Max bytes written to it (a tool's stderr, a dump's end).
type TailBuffer struct {
	Max int

	mu  sync.Mutex
	buf bytes.Buffer
}

func (t *TailBuffer) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf.Write(b)
	if extra := t.buf.Len() - t.Max; extra > 0 {
		t.buf.Next(extra)
	}
	return len(b), nil
}

func (t *TailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.buf.String()
}

// Begin starts writing a new snapshot m into the directory: it creates the directory, takes
// the writer's lock, reserves the metadata and creates the dump file. On success the caller
// owns lock and out (Unlock and Close them when the dump ends, and record the outcome with
// Complete or Fail); on error nothing is held, and a snapshot whose metadata was reserved is
// recorded as failed. op names the operation in the returned *provider.Error.
func (d *Dir) Begin(op string, m *Meta) (lock, out *os.File, err error) {
	writable := "check that the dump directory " + d.Path + " is writable"
	if err := os.MkdirAll(d.Path, 0o700); err != nil {
		return nil, nil, &provider.Error{Op: op, Err: err, Advice: writable}
	}
	lock, err = d.Lock(m.ID)
	if err != nil {
		return nil, nil, &provider.Error{Op: op, Class: provider.ErrAlreadyExists, Err: err,
			Advice: "another process is writing a snapshot with this identifier"}
	}
	if err := d.Reserve(m); err != nil {
		d.Unlock(lock)
		if errors.Is(err, fs.ErrExist) {
			return nil, nil, &provider.Error{Op: op, Class: provider.ErrAlreadyExists,
				Advice: "a snapshot with this identifier exists; run `tda snapshot list`"}
		}
		return nil, nil, &provider.Error{Op: op, Err: err, Advice: writable}
	}
	out, err = os.OpenFile(d.DumpPath(m.ID), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		d.Fail(m, err)
		d.Unlock(lock)
		return nil, nil, &provider.Error{Op: op, Err: err}
	}
	return lock, out, nil
}
