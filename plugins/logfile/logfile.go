// Package logfile is the sink that captures raw lines into one file per origin (container
// name or source file) under a directory, each line prefixed with its RFC 3339 timestamp:
// tda's raw log capture (logs/<container>.log). A batch is on disk before it is acknowledged,
// a crash never leaves a torn or unacknowledged tail behind, and a line that carries a
// log_position (the Docker source's) is never written twice.
package logfile

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/hashicorp/go-hclog"

	"github.com/tda-dev/tda/plugins/internal/logpos"
	"github.com/tda-dev/tda/sdk"
)

// Spec is the logfile sink's config schema.
var Spec = &sdk.Spec{
	Summary: "Writes raw lines into one file per origin under a directory, each prefixed with its timestamp.",
	Description: "A container's lines go to <dir>/<container>.log, a tailed file's to a file named " +
		"after its path. Each line is written as `<RFC 3339 time> <line>` (with ` <stream>` " +
		"after the time when include_stream is set). Lines keep their bytes as they came. " +
		"After a crash each file is cut back to what was acknowledged, a retried batch is " +
		"written once, and a line carrying a log_position already written is skipped.",
	Fields: []sdk.Field{
		{Name: "dir", Type: sdk.TypeString, Required: true, Description: "Directory for the files; created if missing."},
		{Name: "suffix", Type: sdk.TypeString, Default: ".log", Description: "File name suffix."},
		{Name: "include_stream", Type: sdk.TypeBool, Default: false,
			Description: "Write the stream (stdout/stderr) after the timestamp."},
		{Name: "fsync", Type: sdk.TypeBool, Default: true,
			Description: "Flush the files a batch touched before acknowledging it."},
		{Name: "max_open_files", Type: sdk.TypeInt, Default: 64,
			Description: "Keep at most this many files open; the least recently written is closed first."},
	},
	Example: `sink "logfile" "raw" {
  dir = "./logs"
}`,
}

// Component returns the logfile sink component; it takes log events.
func Component() sdk.Component {
	return sdk.SinkComponent("logfile", Spec, New).WithAccepts(sdk.KindLog)
}

// Sink writes per-origin files.
type Sink struct {
	dir       string
	suffix    string
	stream    bool
	fsync     bool
	maxOpen   int
	statePath string // "" without a data directory: nothing is remembered across restarts
	log       hclog.Logger

	mu    sync.Mutex
	open  map[string]*list.Element
	lru   *list.List
	buf   []byte
	state *committed
}

type handle struct {
	name string
	f    *os.File
}

// New builds the sink from its config.
func New(conf *sdk.Config, res sdk.Resources) (sdk.Sink, error) {
	s := &Sink{dir: conf.String("dir"), suffix: conf.String("suffix"), stream: conf.Bool("include_stream"),
		fsync: conf.Bool("fsync"), maxOpen: int(conf.Int("max_open_files")), log: res.Logger,
		open: map[string]*list.Element{}, lru: list.New()}
	if s.log == nil {
		s.log = hclog.NewNullLogger()
	}
	if s.dir == "" {
		return nil, conf.Errorf("dir", "dir must not be empty")
	}
	if strings.ContainsAny(s.suffix, "/\\") {
		return nil, conf.Errorf("suffix", "suffix must not contain a path separator")
	}
	if s.maxOpen < 1 {
		return nil, conf.Errorf("max_open_files", "max_open_files must be at least 1")
	}
	if res.DataDir != "" {
		s.statePath = filepath.Join(res.DataDir, stateFile)
	}
	return s, nil
}

// Start creates the directory and cuts every file back to what was acknowledged before a
// crash.
func (s *Sink) Start(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := os.MkdirAll(s.dir, 0o750); err != nil {
		return fmt.Errorf("create %s: %w", s.dir, err)
	}
	dir, err := filepath.Abs(s.dir)
	if err != nil {
		return fmt.Errorf("resolve %s: %w", s.dir, err)
	}
	s.state = &committed{Version: stateVersion, Dir: dir, Files: map[string]*fileState{}}
	if s.statePath == "" {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(s.statePath), 0o750); err != nil {
		return fmt.Errorf("create %s: %w", filepath.Dir(s.statePath), err)
	}
	st, err := loadState(s.statePath, dir)
	if err != nil {
		s.log.Warn("cannot use the record of acknowledged writes", "error", err)
	}
	s.state = st
	changed := false
	for name, fst := range st.Files {
		c, err := s.repair(name, fst)
		if err != nil {
			return err
		}
		changed = changed || c
	}
	if changed {
		if err := s.state.save(s.statePath, s.fsync); err != nil {
			return fmt.Errorf("record the repaired files: %w", err)
		}
	}
	return nil
}

// repair brings one recorded file to its acknowledged size: a longer file holds a batch that
// was written but never acknowledged (the agent sends it again), so its tail goes. A shorter
// or missing file lost acknowledged data outside tda (truncated, removed, or not flushed
// before a power failure): its positions are forgotten so nothing sent again is skipped.
func (s *Sink) repair(name string, fst *fileState) (bool, error) {
	path := filepath.Join(s.dir, name)
	st, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		s.log.Warn("a captured file is gone; it starts again with the next line", "file", path)
		delete(s.state.Files, name)
		return true, nil
	case err != nil:
		return false, fmt.Errorf("stat %s: %w", path, err)
	case st.Size() > fst.Size:
		s.log.Warn("removing the unacknowledged tail left by a crash; the agent sends it again",
			"file", path, "bytes", st.Size()-fst.Size)
		if err := os.Truncate(path, fst.Size); err != nil {
			return false, fmt.Errorf("repair %s: %w", path, err)
		}
		return false, nil
	case st.Size() < fst.Size:
		s.log.Warn("a captured file is shorter than what was acknowledged (truncated outside tda?); lines sent again are written again",
			"file", path, "size", st.Size(), "acknowledged", fst.Size)
		fst.Size, fst.Mark = st.Size(), logpos.Mark{}
		return true, nil
	}
	return false, nil
}

// FileName maps an origin to its file name: a container name stays as it is; a path has its
// separators replaced ("/var/log/app.log" -> "var_log_app.log"); anything unsafe becomes "_".
func FileName(origin, suffix string) string {
	name := strings.TrimLeft(origin, "/")
	name = strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			return r
		default:
			return '_'
		}
	}, name)
	name = strings.Trim(name, ".")
	if name == "" {
		name = "unknown"
	}
	if !strings.HasSuffix(name, suffix) {
		name += suffix
	}
	return name
}

func (s *Sink) file(origin string) (*os.File, error) {
	name := FileName(origin, s.suffix)
	if el, ok := s.open[name]; ok {
		s.lru.MoveToFront(el)
		return el.Value.(*handle).f, nil
	}
	for s.lru.Len() >= s.maxOpen {
		old := s.lru.Back()
		h := old.Value.(*handle)
		// A file closed to make room may hold lines of the batch being written.
		if s.fsync {
			if err := h.f.Sync(); err != nil {
				return nil, fmt.Errorf("fsync %s: %w", h.name, err)
			}
		}
		if err := h.f.Close(); err != nil {
			return nil, fmt.Errorf("close %s: %w", h.name, err)
		}
		s.lru.Remove(old)
		delete(s.open, h.name)
	}
	f, err := os.OpenFile(filepath.Join(s.dir, name), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", name, err)
	}
	s.open[name] = s.lru.PushFront(&handle{name: name, f: f})
	return f, nil
}

// register adds files the sink has not written before to the record, before anything is
// written to them, so that after a crash a file's every byte past its record is known to be
// unacknowledged. A file already there (written before the record existed) keeps its
// complete lines; a torn last line is removed.
func (s *Sink) register(names []string) error {
	for _, name := range names {
		path := filepath.Join(s.dir, name)
		size := int64(0)
		if f, err := os.OpenFile(path, os.O_RDWR, 0); err == nil {
			st, serr := f.Stat()
			keep := int64(0)
			if serr == nil {
				keep, serr = lastNewline(f, st.Size())
			}
			if serr == nil && keep < st.Size() {
				s.log.Warn("removing a torn last line", "file", path, "bytes", st.Size()-keep)
				serr = f.Truncate(keep)
			}
			f.Close()
			if serr != nil {
				return fmt.Errorf("repair %s: %w", path, serr)
			}
			size = keep
		} else if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("open %s: %w", path, err)
		}
		s.state.Files[name] = &fileState{Size: size}
	}
	if s.statePath == "" {
		return nil
	}
	if err := s.state.save(s.statePath, s.fsync); err != nil {
		for _, name := range names {
			delete(s.state.Files, name)
		}
		return fmt.Errorf("record the new files: %w", err)
	}
	return nil
}

// Write appends each event's line to its origin's file: all of the batch, or, on an error,
// none of it (the files are cut back to their acknowledged sizes).
func (s *Sink) Write(_ context.Context, b sdk.Batch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state == nil {
		return errors.New("the logfile sink is not started")
	}
	if b.ID != 0 && b.ID == s.state.LastID {
		return nil // written already: the acknowledgement was lost
	}
	// The files this batch adds are recorded first.
	var fresh []string
	for i := range b.Events {
		name := FileName(b.Events[i].Origin, s.suffix)
		if s.state.Files[name] == nil && !contains(fresh, name) {
			fresh = append(fresh, name)
		}
	}
	if len(fresh) > 0 {
		if err := s.register(fresh); err != nil {
			return err
		}
	}
	grown := map[string]int64{}
	marks := map[string]logpos.Mark{}
	skipped := 0
	// Group consecutive events of one origin into one write.
	for i := 0; i < len(b.Events); {
		origin := b.Events[i].Origin
		name := FileName(origin, s.suffix)
		mark, ok := marks[name]
		if !ok {
			mark = s.state.Files[name].Mark
		}
		buf := s.buf[:0]
		j := i
		for ; j < len(b.Events) && b.Events[j].Origin == origin; j++ {
			e := &b.Events[j]
			if stream, seq, ok := logpos.Parse(e.Field(logpos.Field)); ok {
				if mark.Written(stream, seq) {
					skipped++
					continue
				}
				mark = logpos.Mark{Stream: stream, Seq: seq}
			}
			buf = e.Time.UTC().AppendFormat(buf, sdk.TimeFormat)
			buf = append(buf, ' ')
			if s.stream && e.Stream != "" {
				buf = append(buf, e.Stream...)
				buf = append(buf, ' ')
			}
			buf = append(buf, e.Line...)
			buf = append(buf, '\n')
		}
		s.buf = buf
		marks[name] = mark
		i = j
		if len(buf) == 0 {
			continue
		}
		f, err := s.file(origin)
		if err == nil {
			var n int
			n, err = f.Write(buf)
			grown[name] += int64(n) // on an error, err names the file
		}
		if err != nil {
			return s.rollback(grown, err)
		}
	}
	if skipped > 0 {
		s.log.Debug("skipped lines written before", "lines", skipped)
	}
	if s.fsync {
		for name := range grown {
			el, ok := s.open[name]
			if !ok {
				continue // synced when it was closed
			}
			f := el.Value.(*handle).f
			if err := f.Sync(); err != nil {
				return s.rollback(grown, fmt.Errorf("fsync %s: %w", f.Name(), err))
			}
		}
	}
	prev := make(map[string]fileState, len(marks))
	for name, m := range marks {
		fst := s.state.Files[name]
		prev[name] = *fst
		fst.Size += grown[name]
		fst.Mark = m
	}
	prevID := s.state.LastID
	s.state.LastID = b.ID
	if s.statePath != "" {
		if err := s.state.save(s.statePath, s.fsync); err != nil {
			s.state.LastID = prevID
			for name, p := range prev {
				*s.state.Files[name] = p
			}
			return s.rollback(grown, fmt.Errorf("record the write: %w", err))
		}
	}
	return nil
}

// rollback cuts the files a failed batch grew back to their acknowledged sizes, so the retry
// writes the batch once, and returns err. A file that cannot be cut back keeps the partial
// batch; its positions are forgotten so the retry leaves out nothing.
func (s *Sink) rollback(grown map[string]int64, err error) error {
	for name, n := range grown {
		if n == 0 {
			continue
		}
		fst := s.state.Files[name]
		if terr := os.Truncate(filepath.Join(s.dir, name), fst.Size); terr != nil {
			s.log.Error("cannot remove a partly written batch; its lines may appear twice",
				"file", name, "error", terr)
			fst.Size += n
			fst.Mark = logpos.Mark{}
		}
	}
	return err
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Close closes every file.
func (s *Sink) Close(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for el := s.lru.Front(); el != nil; el = el.Next() {
		errs = append(errs, el.Value.(*handle).f.Close())
	}
	s.lru.Init()
	s.open = map[string]*list.Element{}
	return errors.Join(errs...)
}
