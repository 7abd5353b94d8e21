// Package logfile is the sink that captures raw lines into one file per origin (container
// name or source file) under a directory, each line prefixed with its RFC 3339 timestamp:
// tda's raw log capture (logs/<container>.log).
package logfile

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/tda-dev/tda/sdk"
)

// Spec is the logfile sink's config schema.
var Spec = &sdk.Spec{
	Summary: "Writes raw lines into one file per origin under a directory, each prefixed with its timestamp.",
	Description: "A container's lines go to <dir>/<container>.log, a tailed file's to a file named " +
		"after its path. Each line is written as `<RFC 3339 time> <line>` (with ` <stream>` " +
		"after the time when include_stream is set). Lines keep their bytes as they came.",
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
	dir     string
	suffix  string
	stream  bool
	fsync   bool
	maxOpen int
	mu      sync.Mutex
	open    map[string]*list.Element
	lru     *list.List
	buf     []byte
}

type handle struct {
	name string
	f    *os.File
}

// New builds the sink from its config.
func New(conf *sdk.Config, _ sdk.Resources) (sdk.Sink, error) {
	s := &Sink{dir: conf.String("dir"), suffix: conf.String("suffix"), stream: conf.Bool("include_stream"),
		fsync: conf.Bool("fsync"), maxOpen: int(conf.Int("max_open_files")),
		open: map[string]*list.Element{}, lru: list.New()}
	if s.dir == "" {
		return nil, conf.Errorf("dir", "dir must not be empty")
	}
	if strings.ContainsAny(s.suffix, "/\\") {
		return nil, conf.Errorf("suffix", "suffix must not contain a path separator")
	}
	if s.maxOpen < 1 {
		return nil, conf.Errorf("max_open_files", "max_open_files must be at least 1")
	}
	return s, nil
}

// Start creates the directory.
func (s *Sink) Start(context.Context) error {
	if err := os.MkdirAll(s.dir, 0o750); err != nil {
		return fmt.Errorf("create %s: %w", s.dir, err)
	}
	return nil
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
		_ = h.f.Close()
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

// Write appends each event's line to its origin's file.
func (s *Sink) Write(_ context.Context, b sdk.Batch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	touched := map[*os.File]bool{}
	// Group consecutive events of one origin into one write.
	for i := 0; i < len(b.Events); {
		origin := b.Events[i].Origin
		buf := s.buf[:0]
		j := i
		for ; j < len(b.Events) && b.Events[j].Origin == origin; j++ {
			e := &b.Events[j]
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
		f, err := s.file(origin)
		if err != nil {
			return err
		}
		if _, err := f.Write(buf); err != nil {
			return fmt.Errorf("write %s: %w", f.Name(), err)
		}
		touched[f] = true
		i = j
	}
	if s.fsync {
		for f := range touched {
			if err := f.Sync(); err != nil {
				return fmt.Errorf("fsync %s: %w", f.Name(), err)
			}
		}
	}
	return nil
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
