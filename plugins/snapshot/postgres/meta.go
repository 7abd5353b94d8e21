package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/tda-dev/tda/plugins/snapshot/provider"
)

// metadata is the JSON file beside each dump: <dir>/<id>.json.
type metadata struct {
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
	Encoding    string            `json:"encoding,omitempty"`
	Collate     string            `json:"collate,omitempty"`
	CType       string            `json:"ctype,omitempty"`
	PID         int               `json:"pid,omitempty"`
	Error       string            `json:"error,omitempty"`
}

func (p *Provider) metaPath(id string) string { return filepath.Join(p.cfg.Dir, id+".json") }
func (p *Provider) dumpPath(id string) string { return filepath.Join(p.cfg.Dir, id+".dump") }
func (p *Provider) lockPath(id string) string { return filepath.Join(p.cfg.Dir, "."+id+".lock") }

// reserve writes the first metadata of a new snapshot, failing if the ID is taken.
func (p *Provider) reserve(m *metadata) error {
	if err := os.MkdirAll(p.cfg.Dir, 0o700); err != nil {
		return fmt.Errorf("create dump directory: %w", err)
	}
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	f, err := os.OpenFile(p.metaPath(m.ID), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
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

// writeMeta replaces a metadata file atomically (temp file, fsync, rename).
func (p *Provider) writeMeta(m *metadata) error {
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(p.cfg.Dir, "."+m.ID+".*.tmp")
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
	if err := os.Rename(tmp.Name(), p.metaPath(m.ID)); err != nil {
		return err
	}
	if d, err := os.Open(p.cfg.Dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// readMeta is the one way in to a snapshot's files: Get, Delete, Restore, Verify and List all
// pass through it, and it refuses an id that could name a file outside the dump directory
// before any path is built from it.
func (p *Provider) readMeta(id string) (*metadata, error) {
	if err := provider.ValidSnapshotID(id); err != nil {
		return nil, err
	}
	data, err := os.ReadFile(p.metaPath(id))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, &provider.Error{Op: "snapshot " + id, Class: provider.ErrNotFound,
			Advice: fmt.Sprintf("no such snapshot in %s; run `tda snapshot list`", p.cfg.Dir)}
	}
	if err != nil {
		return nil, err
	}
	var m metadata
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("read %s: %w", p.metaPath(id), err)
	}
	m.ID = id // the file name is the identity: the dump beside it has the same name
	return &m, nil
}

// snapshot converts metadata to a provider.Snapshot, marking a dump whose writer is gone as
// failed.
func (p *Provider) snapshot(m *metadata) provider.Snapshot {
	s := provider.Snapshot{ID: m.ID, Target: m.Database, Time: m.Time, Status: m.Status,
		Tags: m.Tags, SizeBytes: m.SizeBytes, Detail: m.Error}
	if m.Status == provider.StatusCreating && !p.writing(m) {
		s.Status = provider.StatusFailed
		s.Detail = fmt.Sprintf("interrupted: the process (pid %d) writing the dump stopped before it finished", m.PID)
	}
	return s
}

// writing reports whether a dump in state creating is still being written: its writer, in
// this process or another, holds an exclusive flock on <dir>/.<id>.lock for as long as it
// writes.
func (p *Provider) writing(m *metadata) bool {
	f, err := os.Open(p.lockPath(m.ID))
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

// lock takes the writer's lock of a new snapshot.
func (p *Provider) lock(id string) (*os.File, error) {
	f, err := os.OpenFile(p.lockPath(id), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// unlock releases and removes the writer's lock.
func (p *Provider) unlock(f *os.File) {
	_ = os.Remove(f.Name())
	_ = f.Close()
}

// Get implements provider.Provider.
func (p *Provider) Get(_ context.Context, id string) (provider.Snapshot, error) {
	m, err := p.readMeta(id)
	if err != nil {
		return provider.Snapshot{}, err
	}
	return p.snapshot(m), nil
}

// List implements provider.Provider: every metadata file in the dump directory.
func (p *Provider) List(context.Context) ([]provider.Snapshot, error) {
	entries, err := os.ReadDir(p.cfg.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", p.cfg.Dir, err)
	}
	var out []provider.Snapshot
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || strings.HasPrefix(name, ".") || !strings.HasSuffix(name, ".json") {
			continue
		}
		m, err := p.readMeta(strings.TrimSuffix(name, ".json"))
		if err != nil {
			p.log.Warn("skipping unreadable snapshot metadata", "file", name, "error", err)
			continue
		}
		out = append(out, p.snapshot(m))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Time.After(out[j].Time) })
	return out, nil
}

// Delete implements provider.Provider: removes the dump, then its metadata.
func (p *Provider) Delete(_ context.Context, id string) error {
	m, err := p.readMeta(id)
	if err != nil {
		return err
	}
	if s := p.snapshot(m); s.Status == provider.StatusCreating {
		return &provider.Error{Op: "delete snapshot " + id, Class: provider.ErrBusy,
			Advice: "the dump is still being written; delete it once it is available"}
	}
	if err := os.Remove(p.dumpPath(id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete snapshot %s: %w", id, err)
	}
	if err := os.Remove(p.metaPath(id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete snapshot %s: %w", id, err)
	}
	_ = os.Remove(p.lockPath(id)) // left by a writer that died
	return nil
}

// Wait implements provider.Provider.
func (p *Provider) Wait(ctx context.Context, id string) (provider.Snapshot, error) {
	p.mu.Lock()
	j := p.jobs[id]
	p.mu.Unlock()
	if j != nil {
		select {
		case <-j.done:
		case <-ctx.Done():
			return provider.Snapshot{}, fmt.Errorf("wait for snapshot %s: %w", id, ctx.Err())
		}
	}
	for {
		s, err := p.Get(ctx, id)
		if err != nil {
			return s, err
		}
		switch s.Status {
		case provider.StatusAvailable:
			return s, nil
		case provider.StatusFailed:
			return s, &provider.Error{Op: "snapshot " + id, Err: errors.New("failed: " + s.Detail),
				Advice: "check the database connection and the PostgreSQL log, then take a new snapshot"}
		}
		select {
		case <-ctx.Done():
			return s, fmt.Errorf("wait for snapshot %s: still %s: %w", id, s.Status, ctx.Err())
		case <-time.After(p.cfg.PollInterval):
		}
	}
}
