// Package file is tda's file tail: source "file" follows log files selected by glob patterns
// and never loses or repeats a line across rotation (rename-and-create or copytruncate),
// truncation and restarts. Each file is known by its device, inode and a fingerprint of its
// first bytes; its offset is checkpointed through the agent, which stores it only once every
// sink has accepted the lines before it.
package file

import (
	"context"
	"fmt"
	"regexp"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/tda-dev/tda/sdk"
)

// Version of the plugin.
const Version = "0.1.0"

// Component returns source "file".
func Component() sdk.Component {
	return sdk.SourceComponent("file", Spec(), newSource)
}

// Spec is the config schema of source "file"; its descriptions are the reference
// documentation of every attribute.
func Spec() *sdk.Spec {
	return &sdk.Spec{
		Summary: "Follow log files: globs, rotation, truncation and restarts without losing or repeating a line.",
		Description: "Reads the files that `paths` selects line by line and emits one event of kind \"log\" per " +
			"line (or per multiline record), with the file path as origin and the time the line was read. " +
			"A file is known by its device, inode and a fingerprint of its first bytes, so a renamed file keeps " +
			"its offset and a recycled inode is not mistaken for an old file. Offsets are saved in the agent's " +
			"state store only after every sink accepted the lines before them.",
		Fields: []sdk.Field{
			{Name: "paths", Type: sdk.TypeStringList, Required: true,
				Description: "Files to read, as glob patterns: `*` and `?` within a name, `[a-z]`, `{a,b}`, and `**` " +
					"for any number of directories. Symlinks are followed. Relative patterns are relative to the " +
					"agent's working directory; origins keep the form of the pattern."},
			{Name: "exclude", Type: sdk.TypeStringList,
				Description: "Glob patterns of files to leave out. A pattern with a `/` is matched against the whole " +
					"path (in the form `paths` produced it); one without is matched against the file name, " +
					"e.g. `*.1` or `debug-*.log`."},
			{Name: "follow", Type: sdk.TypeBool, Default: true,
				Description: "Keep following the files for new lines, new files and rotations. With false every " +
					"matched file is read to its end once (a last line without newline included) and the source " +
					"stops; `tda replay` reads files this way."},
			{Name: "read_from", Type: sdk.TypeString, Default: "beginning", Enum: []string{"beginning", "end"},
				Description: "Where to start in a file seen for the first time when tda starts: \"beginning\" or " +
					"\"end\". A file with a saved checkpoint resumes from it; a file that appears while tda runs, or " +
					"that replaces a file tda was reading (rotation), is always read from its beginning."},
			{Name: "max_line_bytes", Type: sdk.TypeInt, Default: int64(1 << 20),
				Description: "Longest line (or multiline record) emitted, in bytes. A longer one is cut to this " +
					"length and marked with the field `truncated = \"true\"`; the rest of it is skipped as it is " +
					"read, never held in memory."},
			{Name: "partial_line_timeout", Type: sdk.TypeDuration, Default: "5s",
				Description: "How long a last line without its newline waits to be completed before it is emitted as " +
					"it is, marked `partial = \"true\"`. \"0s\" waits for the newline forever."},
			{Name: "rotate_wait", Type: sdk.TypeDuration, Default: "5s",
				Description: "After a file was renamed away or deleted, how long tda keeps it open and keeps reading " +
					"it once it stopped growing, for a writer that has not reopened its log yet."},
			{Name: "watch", Type: sdk.TypeString, Default: "notify", Enum: []string{"notify", "poll"},
				Description: "How changes are noticed: \"notify\" uses the kernel's file notifications (inotify) and " +
					"falls back to polling where they cannot be set up; \"poll\" checks every `poll_interval`, for " +
					"file systems where notifications are unreliable (NFS, some overlays)."},
			{Name: "poll_interval", Type: sdk.TypeDuration, Default: "1s", Min: sdk.FormatDuration(MinPollInterval),
				Description: "How often files and patterns are checked when polling."},
			{Name: "rescan_interval", Type: sdk.TypeDuration, Default: "10s", Min: sdk.FormatDuration(MinRescanInterval),
				Description: "With notifications, how often the patterns are matched again and every file's size " +
					"checked anyway, so a missed notification never stalls a file."},
			{Name: "max_open_files", Type: sdk.TypeInt, Default: int64(1024),
				Description: "Most files kept open at once. Beyond it, files that are idle at their end are closed " +
					"and reopened when they change; a closed file that is rotated away loses what was written to " +
					"it after it was closed, so keep this above the number of active files."},
			{Name: "forget_after", Type: sdk.TypeDuration, Default: "24h", Min: sdk.FormatDuration(MinForgetAfter),
				Description: "Checkpoints of files that have been gone for longer than this are deleted from the " +
					"state store."},
			{Name: "read_gzip", Type: sdk.TypeBool, Default: false,
				Description: "Read gzip-compressed files (`.gz`) that `paths` matches, decompressed, once to their " +
					"end. Off by default: `.gz` files are usually rotated copies of lines already read."},
		},
		Blocks: []sdk.Block{{
			Name: "multiline",
			Description: "Join the lines of one record (a log line and the stack trace under it) into one event, " +
				"the lines separated by \"\\n\". Off unless the block is present.",
			Spec: &sdk.Spec{Fields: []sdk.Field{
				{Name: "start_pattern", Type: sdk.TypeString,
					Description: "Regular expression (Go syntax) that matches the first line of a record; every other " +
						"line belongs to the record above it. Either this or `preset`."},
				{Name: "preset", Type: sdk.TypeString, Enum: []string{"java"},
					Description: "A ready-made rule. \"java\": Java stack traces as in Spring Boot logs: indented " +
						"lines (`\\tat ...`, `\\t... 12 more`), `Caused by: ...` and exception headers such as " +
						"`java.lang.IllegalStateException: message` belong to the record above them."},
				{Name: "timeout", Type: sdk.TypeDuration, Default: "1s",
					Description: "How long the last record waits for more of its lines before it is emitted."},
				{Name: "max_lines", Type: sdk.TypeInt, Default: int64(500),
					Description: "Most lines in one record; a further line starts a new one."},
			}},
		}},
		Example: `source "file" "hosts" {
  paths     = ["/var/log/flask/*.log", "/var/log/spring/**/*.log"]
  exclude   = ["*.1"]
  read_from = "beginning"
  multiline {
    preset = "java"
  }
}`,
	}
}

// options is the decoded config.
type options struct {
	paths          []string
	exclude        []string
	follow         bool
	readFromEnd    bool
	maxLine        int
	partialTimeout time.Duration
	rotateWait     time.Duration
	poll           bool
	pollInterval   time.Duration
	rescanInterval time.Duration
	maxOpen        int
	forgetAfter    time.Duration
	gzip           bool

	multiline        bool
	isStart          func([]byte) bool
	multilineTimeout time.Duration
	multilineLines   int

	// batchLines and batchBytes cap one emitted batch.
	batchLines int
	batchBytes int
}

const (
	defaultBatchLines = 4096
	defaultBatchBytes = 512 << 10
)

// The smallest durations of the loops the source runs: polling files, matching the patterns
// again, and forgetting the checkpoints of files gone. The spec declares them (Field.Min), so
// "1ns" is a config error at the attribute, not a busy core.
const (
	MinPollInterval   = 10 * time.Millisecond
	MinRescanInterval = 100 * time.Millisecond
	MinForgetAfter    = 100 * time.Millisecond
)

func newSource(c *sdk.Config, res sdk.Resources) (sdk.Source, error) {
	o := options{
		paths:          c.StringList("paths"),
		exclude:        c.StringList("exclude"),
		follow:         c.Bool("follow"),
		readFromEnd:    c.String("read_from") == "end",
		maxLine:        int(c.Int("max_line_bytes")),
		partialTimeout: c.Duration("partial_line_timeout"),
		rotateWait:     c.Duration("rotate_wait"),
		poll:           c.String("watch") == "poll",
		pollInterval:   c.Duration("poll_interval"),
		rescanInterval: c.Duration("rescan_interval"),
		maxOpen:        int(c.Int("max_open_files")),
		forgetAfter:    c.Duration("forget_after"),
		gzip:           c.Bool("read_gzip"),
		batchLines:     defaultBatchLines,
		batchBytes:     defaultBatchBytes,
	}
	if len(o.paths) == 0 {
		return nil, c.Errorf("paths", "paths needs at least one pattern")
	}
	m, err := newMatcher(o.paths, o.exclude, o.gzip)
	if err != nil {
		field := "paths"
		if pe, ok := err.(*patternError); ok {
			for _, ex := range o.exclude {
				if ex == pe.pattern {
					field = "exclude"
				}
			}
		}
		return nil, c.Errorf(field, "%v", err)
	}
	if o.maxLine < 1 {
		return nil, c.Errorf("max_line_bytes", "max_line_bytes must be at least 1, not %d", o.maxLine)
	}
	if o.maxOpen < 1 {
		return nil, c.Errorf("max_open_files", "max_open_files must be at least 1, not %d", o.maxOpen)
	}
	if o.partialTimeout < 0 || o.rotateWait < 0 {
		return nil, c.Errorf("", "durations must not be negative")
	}
	if ml := c.Block("multiline"); ml != nil {
		o.multiline = true
		o.multilineTimeout = ml.Duration("timeout")
		o.multilineLines = int(ml.Int("max_lines"))
		pat, preset := ml.String("start_pattern"), ml.String("preset")
		switch {
		case pat != "" && preset != "":
			return nil, ml.Errorf("preset", "set either start_pattern or preset, not both")
		case pat != "":
			re, err := regexp.Compile(pat)
			if err != nil {
				return nil, ml.Errorf("start_pattern", "start_pattern is not a valid regular expression: %v", err)
			}
			o.isStart = regexpStart(re)
		case preset == "java":
			o.isStart = javaStart
		default:
			return nil, ml.Errorf("", "multiline needs start_pattern or preset")
		}
		if o.multilineLines < 1 {
			return nil, ml.Errorf("max_lines", "max_lines must be at least 1")
		}
		if o.multilineTimeout <= 0 {
			return nil, ml.Errorf("timeout", "timeout must be longer than 0s")
		}
	}
	logger := res.Logger
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	return &source{opts: o, matcher: m, logger: logger, dataDir: res.DataDir}, nil
}

// source is one configured file source.
type source struct {
	opts    options
	matcher *matcher
	logger  hclog.Logger
	dataDir string
}

// Run implements sdk.Source.
func (s *source) Run(ctx context.Context, out sdk.Output) error {
	t := newTailer(s.opts, s.matcher, s.logger, out)
	if s.opts.follow {
		reg, err := openRegistry(s.dataDir, s.opts.forgetAfter, time.Now())
		if err != nil {
			s.logger.Warn("cannot keep the list of files being read in the data directory", "error", err)
		}
		t.reg = reg
	}
	defer t.close()
	if err := t.run(ctx); err != nil && ctx.Err() == nil {
		return fmt.Errorf("file source: %w", err)
	}
	return nil
}
