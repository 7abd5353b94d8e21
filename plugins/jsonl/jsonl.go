// Package jsonl is the sink that appends events as JSON lines to a file: tda's audit trail of
// alerts (alerts/alerts.jsonl) and a plain event archive. Every batch is fsynced before it is
// acknowledged, a retried batch is never written twice, a torn tail left by a crash is
// repaired on open, what a replay sends again (alert records, positioned lines) is
// recognised from the file itself, and the file rotates by size.
package jsonl

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/hashicorp/go-hclog"

	"github.com/tda-dev/tda/plugins/internal/logpos"
	"github.com/tda-dev/tda/sdk"
)

// Spec is the jsonl sink's config schema.
var Spec = &sdk.Spec{
	Summary: "Appends events as JSON lines to a file (the audit trail of alerts).",
	Description: "Each event is written in tda's canonical JSON form, one per line. A batch is " +
		"fsynced before the agent is told it is stored, a retried batch is written once, a line " +
		"torn by a crash is removed on open (the agent sends that batch again), an alert record " +
		"or a line with a log_position already in the file is not written again after a crash, " +
		"and the file rotates when it would grow past max_bytes.",
	Fields: []sdk.Field{
		{Name: "path", Type: sdk.TypeString, Required: true,
			Description: "The file to append to; its directory is created."},
		{Name: "fsync", Type: sdk.TypeBool, Default: true,
			Description: "Flush every batch to stable storage before acknowledging it."},
		{Name: "max_bytes", Type: sdk.TypeInt, Default: 0,
			Description: "Rotate the file before it grows past this many bytes (0: never)."},
		{Name: "max_files", Type: sdk.TypeInt, Default: 10,
			Description: "How many rotated files (path.1, path.2, ...) to keep."},
		{Name: "file_mode", Type: sdk.TypeString, Default: "0640",
			Description: "Permissions of a new file, in octal."},
	},
	Example: `sink "jsonl" "audit" {
  path      = "./alerts/alerts.jsonl"
  max_bytes = 104857600
  max_files = 10
}`,
	// The file is the audit trail the agent reads incidents from.
	AuditTrail: "path",
}

// Component returns the jsonl sink component.
func Component() sdk.Component {
	return sdk.SinkComponent("jsonl", Spec, New)
}

// Sink writes JSON lines.
type Sink struct {
	path     string
	fsync    bool
	maxBytes int64
	maxFiles int
	mode     os.FileMode
	stateDir string
	log      hclog.Logger

	mu     sync.Mutex
	f      *os.File
	size   int64
	marker *os.File
	lastID uint64
	buf    []byte
	// written is what the output already holds that a replay may send again.
	written *written
}

// New builds the sink from its config.
func New(conf *sdk.Config, res sdk.Resources) (sdk.Sink, error) {
	s := &Sink{path: conf.String("path"), fsync: conf.Bool("fsync"), maxBytes: conf.Int("max_bytes"),
		maxFiles: int(conf.Int("max_files")), stateDir: res.DataDir, log: res.Logger}
	if s.path == "" {
		return nil, conf.Errorf("path", "path must not be empty")
	}
	if s.maxBytes < 0 {
		return nil, conf.Errorf("max_bytes", "max_bytes must not be negative")
	}
	if s.maxFiles < 1 {
		return nil, conf.Errorf("max_files", "max_files must be at least 1")
	}
	mode, err := strconv.ParseUint(conf.String("file_mode"), 8, 32)
	if err != nil || mode > 0o777 {
		return nil, conf.Errorf("file_mode", "file_mode must be octal permissions such as \"0640\"")
	}
	s.mode = os.FileMode(mode)
	return s, nil
}

// Start opens the file, repairing what a crash left behind.
func (s *Sink) Start(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := os.MkdirAll(filepath.Dir(s.path), 0o750); err != nil {
		return fmt.Errorf("create directory for %s: %w", s.path, err)
	}
	if s.stateDir != "" {
		if err := os.MkdirAll(s.stateDir, 0o750); err != nil {
			return fmt.Errorf("create %s: %w", s.stateDir, err)
		}
		m, err := os.OpenFile(filepath.Join(s.stateDir, "jsonl.marker"), os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return fmt.Errorf("open the write marker: %w", err)
		}
		s.marker = m
	}
	if err := s.open(); err != nil {
		return err
	}
	return s.markStart()
}

// markStart records the repaired file as acknowledged when the marker does not describe it
// (a first start, or a file replaced meanwhile). Without it, a first batch written but not
// acknowledged before a crash would be kept at the next start (there is no marker to cut
// back to) and written again by the agent's retry.
func (s *Sink) markStart() error {
	if s.marker == nil {
		return nil
	}
	if _, _, ino, ok := s.readMarker(); ok && ino == inode(s.f) {
		return nil
	}
	if err := s.writeMarker(s.lastID); err != nil {
		return fmt.Errorf("record the write marker: %w", err)
	}
	return nil
}

// marker layout: [delivery id][file size after that batch][inode of the file].
func (s *Sink) readMarker() (id uint64, end int64, ino uint64, ok bool) {
	if s.marker == nil {
		return 0, 0, 0, false
	}
	var b [24]byte
	if n, err := s.marker.ReadAt(b[:], 0); n != len(b) || (err != nil && !errors.Is(err, io.EOF)) {
		return 0, 0, 0, false
	}
	return binary.BigEndian.Uint64(b[0:]), int64(binary.BigEndian.Uint64(b[8:])), binary.BigEndian.Uint64(b[16:]), true
}

func (s *Sink) writeMarker(id uint64) error {
	if s.marker == nil {
		return nil
	}
	var b [24]byte
	binary.BigEndian.PutUint64(b[0:], id)
	binary.BigEndian.PutUint64(b[8:], uint64(s.size))
	binary.BigEndian.PutUint64(b[16:], inode(s.f))
	if _, err := s.marker.WriteAt(b[:], 0); err != nil {
		return err
	}
	if s.fsync {
		return s.marker.Sync()
	}
	return nil
}

func (s *Sink) open() error {
	f, err := os.OpenFile(s.path, os.O_RDWR|os.O_CREATE, s.mode)
	if err != nil {
		return fmt.Errorf("open %s: %w", s.path, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	s.f, s.size = f, st.Size()
	// Whatever follows the last acknowledged batch was never acknowledged: the agent sends it
	// again, so it goes (that also removes a torn last line).
	id, end, ino, ok := s.readMarker()
	keep := s.size
	if ok && ino == inode(f) && end <= s.size {
		keep = end
		s.lastID = id
	} else if s.size > 0 {
		keep, err = lastNewline(f, s.size)
		if err != nil {
			return err
		}
	}
	if keep < s.size {
		s.log.Warn("removing the unacknowledged tail left by a crash; the agent resends it",
			"file", s.path, "bytes", s.size-keep)
		if err := f.Truncate(keep); err != nil {
			return fmt.Errorf("repair %s: %w", s.path, err)
		}
		s.size = keep
	}
	if _, err := f.Seek(s.size, io.SeekStart); err != nil {
		return err
	}
	s.written = newWritten()
	if err := s.written.scanFiles(s.path, f, s.size); err != nil {
		return fmt.Errorf("read back %s: %w", s.path, err)
	}
	return nil
}

// lastNewline returns the offset just after the file's last '\n' (0 if none).
func lastNewline(f *os.File, size int64) (int64, error) {
	buf := make([]byte, 64*1024)
	for end := size; end > 0; {
		start := end - int64(len(buf))
		if start < 0 {
			start = 0
		}
		n, err := f.ReadAt(buf[:end-start], start)
		if err != nil && !errors.Is(err, io.EOF) {
			return 0, err
		}
		for i := n - 1; i >= 0; i-- {
			if buf[i] == '\n' {
				return start + int64(i) + 1, nil
			}
		}
		end = start
	}
	return 0, nil
}

// Write appends the batch.
func (s *Sink) Write(_ context.Context, b sdk.Batch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return errors.New("the jsonl sink is closed")
	}
	if b.ID != 0 && b.ID == s.lastID {
		return nil // already written: the acknowledgement was lost
	}
	// Records a replay sends again (an alert record or a positioned line already in the
	// output) are left out.
	batchAlerts, batchMarks := map[string]struct{}{}, map[string]logpos.Mark{}
	buf := s.buf[:0]
	for i := range b.Events {
		if s.written.has(&b.Events[i], batchAlerts, batchMarks) {
			continue
		}
		buf = b.Events[i].AppendJSON(buf)
		buf = append(buf, '\n')
	}
	s.buf = buf
	if len(buf) == 0 {
		if err := s.writeMarker(b.ID); err != nil {
			return fmt.Errorf("record the write: %w", err)
		}
		s.lastID = b.ID
		return nil
	}
	if s.maxBytes > 0 && s.size > 0 && s.size+int64(len(buf)) > s.maxBytes {
		if err := s.rotate(); err != nil {
			return fmt.Errorf("rotate %s: %w", s.path, err)
		}
	}
	before := s.size
	n, err := s.f.Write(buf)
	s.size += int64(n)
	if err == nil && s.fsync {
		if err = s.f.Sync(); err != nil {
			err = fmt.Errorf("fsync %s: %w", s.path, err)
		}
	}
	if err == nil {
		if err = s.writeMarker(b.ID); err != nil {
			err = fmt.Errorf("record the write: %w", err)
		}
	}
	if err != nil {
		// An unacknowledged batch leaves nothing behind, so its retry writes it once. If the
		// cut fails too, the next open cuts back to the marker.
		if terr := s.f.Truncate(before); terr == nil {
			s.size = before
			_, _ = s.f.Seek(s.size, io.SeekStart)
		}
		return err
	}
	s.lastID = b.ID
	s.written.commit(batchAlerts, batchMarks)
	return nil
}

// rotate renames path to path.1 (shifting older ones) and starts a new file.
func (s *Sink) rotate() error {
	if err := s.f.Close(); err != nil {
		return err
	}
	s.f = nil
	_ = os.Remove(fmt.Sprintf("%s.%d", s.path, s.maxFiles))
	for i := s.maxFiles - 1; i >= 1; i-- {
		from := fmt.Sprintf("%s.%d", s.path, i)
		if _, err := os.Stat(from); err == nil {
			if err := os.Rename(from, fmt.Sprintf("%s.%d", s.path, i+1)); err != nil {
				return err
			}
		}
	}
	if err := os.Rename(s.path, s.path+".1"); err != nil {
		return err
	}
	f, err := os.OpenFile(s.path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, s.mode)
	if err != nil {
		return err
	}
	s.f, s.size = f, 0
	if s.fsync {
		if d, err := os.Open(filepath.Dir(s.path)); err == nil {
			_ = d.Sync()
			d.Close()
		}
	}
	s.log.Info("rotated", "file", s.path)
	// The new file holds nothing acknowledged yet: a batch cut short in it is cut back.
	return s.writeMarker(s.lastID)
}

// Close closes the file.
func (s *Sink) Close(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	if s.f != nil {
		errs = append(errs, s.f.Close())
		s.f = nil
	}
	if s.marker != nil {
		errs = append(errs, s.marker.Close())
		s.marker = nil
	}
	return errors.Join(errs...)
}
