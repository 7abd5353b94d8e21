// Package config loads tda's HCL configuration: the agent block, plugin pins, source,
// processor and sink blocks (whose bodies each plugin decodes with its own schema), and the
// pipelines that wire them. Every problem is an hcl.Diagnostic with its position.
package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclsyntax"

	"github.com/tda-dev/tda/agent/pluginhost"
	"github.com/tda-dev/tda/sdk"
	"github.com/tda-dev/tda/sdk/hclspec"
)

// Config is a loaded configuration.
type Config struct {
	// Files holds the parsed sources for printing diagnostics with snippets.
	Files      map[string]*hcl.File
	Agent      Agent
	Plugins    map[string]*Plugin
	Components []*Component
	Pipelines  []*Pipeline
	// HTTP is the body of the optional `http` block (the control panel and API).
	HTTP      hcl.Body
	HTTPRange *hcl.Range
	// ParseFailed is set when a file could not be read or parsed: nothing was decoded.
	ParseFailed bool
	// Registry holds the plugins that serve the blocks, set by loader.Load once it found
	// them (nil for a config read alone, as loader.LoadConfig does). Operator actions
	// (agent/actions) launch the blocks' instances from it.
	Registry *pluginhost.Registry

	evalCtx *hcl.EvalContext
}

// Agent is the `agent` block.
type Agent struct {
	DataDir            string
	PluginDir          string
	LogLevel           string
	LogFormat          string
	CheckpointInterval time.Duration
	// MaxInflight bounds the batches of each source that a pipeline holds before all of its
	// sinks accepted them (max_inflight_batches).
	MaxInflight int
	// MaxInflightBytes bounds the bytes of the batches a pipeline holds before all of its
	// sinks accepted them (max_inflight_bytes); a source feeding it gets no credit past it.
	MaxInflightBytes int
	AppVersion       string
	// BundledPlugins says where the instances of the plugins compiled into tda run that no
	// block sets apart (isolate = true, or a plugin block with a memory limit or an
	// environment, which get a process of their own): BundledInAgent (the default) or
	// BundledSharedProcess.
	BundledPlugins string
}

// Where the bundled plugins' instances run (agent `bundled_plugins`).
const (
	// BundledInAgent runs them inside the agent's own process: no second process, no
	// protocol between the source, the processors and the sinks.
	BundledInAgent = "in_agent"
	// BundledSharedProcess runs them in one `tda plugin-serve` process beside the agent,
	// which the agent kills and restarts when one of them hangs or crashes it.
	BundledSharedProcess = "shared_process"
)

// Plugin is a `plugin "NAME"` block: where the binary is, its pinned checksum, and limits
// for its processes.
type Plugin struct {
	Name   string
	Path   string
	SHA256 string
	// MemoryLimit is a soft memory limit for each process of the plugin (GOMEMLIMIT syntax,
	// e.g. "180MiB"); the Go runtime collects harder as it nears it.
	MemoryLimit string
	// Env is set in the environment of each process of the plugin (`env = { NAME = value }`,
	// values resolved by the agent, e.g. env("TDA_AWS_KEY")), as NAME=value sorted by name.
	Env []string
	// InheritEnv names the variables of the agent's environment the plugin's processes get
	// beside the base set (host.BaseEnvNames): names, or prefixes ending in '*'.
	InheritEnv []string
	Range      hcl.Range
	// PathRange and SHA256Range are the values of path and sha256, for diagnostics about
	// the binary they name (nil when the attribute is absent).
	PathRange, SHA256Range *hcl.Range
}

// Pinned reports whether the block pins a checksum.
func (p *Plugin) Pinned() bool { return p.SHA256 != "" }

// Component is a source, processor or sink block.
type Component struct {
	Kind sdk.ComponentKind
	// Type is the component's name in its plugin, e.g. "file".
	Type string
	// Name is the block's own name, e.g. "hosts".
	Name string
	// Body is the part of the block the plugin decodes (host-level attributes removed).
	Body      hcl.Body
	DefRange  hcl.Range
	TypeRange hcl.Range
	// Sink holds the host-level delivery settings of a sink block.
	Sink *SinkSettings
	// CallTimeout bounds every call the host makes to the instance's plugin (host-level
	// `call_timeout`, every component block; 0 means DefaultCallTimeout). A call past it
	// means a hung plugin: the host kills and restarts it.
	CallTimeout time.Duration
	// MaxAttempts is how often one batch may fail, crash or hang the plugin before it is set
	// aside as a dead letter (host-level `max_attempts`, sink and processor blocks; 0 means
	// DefaultMaxAttempts).
	MaxAttempts int
	// Isolate gives the instance a plugin process of its own (host-level `isolate`, every
	// component block), where its binary would otherwise serve it from the one process it
	// shares among its instances (the plugins built into tda).
	Isolate bool
	// Config is the decoded body as JSON, set by Decode.
	Config []byte
	// Used reports whether a pipeline references the component.
	Used bool
}

// Address returns "kind.type.name".
func (c *Component) Address() string {
	return string(c.Kind) + "." + c.Type + "." + c.Name
}

// ShortName returns "type.name", the form events carry in their Source field.
func (c *Component) ShortName() string { return c.Type + "." + c.Name }

// SinkSettings are the host-level attributes of a sink block.
type SinkSettings struct {
	Kinds         []string
	Queue         string
	Fallback      *Ref
	FallbackAfter time.Duration
	GroupInterval time.Duration
	MaxEvents     int
	MaxBytes      int
	RetryInitial  time.Duration
	RetryMax      time.Duration
	// Buffer bounds what waits for the sink (the `buffer` block).
	Buffer BufferSettings
}

// BufferSettings are a sink's `buffer` block: the bounded buffer between the pipelines and
// the sink's plugin. Zero values mean the defaults, resolved by the runtime (it knows the
// kinds a sink takes).
type BufferSettings struct {
	// MaxSize is the bytes of events held in memory (default DefaultBufferMaxSize).
	MaxSize int64
	// WhenFull is WhenFullBlock, WhenFullSpill or WhenFullDrop; "" picks the default: drop
	// for a sink that takes log events only (a capture must never hold back detection),
	// block for the others.
	WhenFull string
	// MaxDiskSize bounds what a spilling or durable sink keeps on disk (default
	// DefaultBufferMaxDiskSize).
	MaxDiskSize int64
}

// The buffer's when_full policies.
const (
	// WhenFullBlock holds the pipeline until the sink has room (back-pressure).
	WhenFullBlock = "block"
	// WhenFullSpill writes what does not fit in memory to disk under data_dir, up to
	// max_disk_size; it then blocks.
	WhenFullSpill = "spill"
	// WhenFullDrop drops what does not fit, counting it in the metrics and the state.
	WhenFullDrop = "drop"
)

// Ref is a reference such as `source.file.hosts`.
type Ref struct {
	Kind  sdk.ComponentKind
	Type  string
	Name  string
	Range hcl.Range
}

// Address returns "kind.type.name".
func (r Ref) Address() string { return string(r.Kind) + "." + r.Type + "." + r.Name }

// Pipeline is a `pipeline "NAME"` block.
type Pipeline struct {
	Name     string
	From     []Ref
	Through  []Ref
	To       []Ref
	DefRange hcl.Range
}

// Defaults.
const (
	DefaultDataDir            = "./data"
	DefaultCheckpointInterval = time.Second
	DefaultMaxInflight        = 16
	DefaultMaxInflightBytes   = 2 << 20
	DefaultFallbackAfter      = 60 * time.Second
	DefaultMaxEvents          = 4096
	DefaultMaxBytes           = 4 << 20
	DefaultRetryInitial       = time.Second
	DefaultRetryMax           = 5 * time.Minute
	DefaultCallTimeout        = 60 * time.Second
	DefaultMaxAttempts        = 5
	DefaultBufferMaxSize      = 16 << 20
	DefaultBufferMaxDiskSize  = 1 << 30
)

var topSchema = &hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{
	{Type: "agent"},
	{Type: "plugin", LabelNames: []string{"name"}},
	{Type: "source", LabelNames: []string{"type", "name"}},
	{Type: "processor", LabelNames: []string{"type", "name"}},
	{Type: "sink", LabelNames: []string{"type", "name"}},
	{Type: "pipeline", LabelNames: []string{"name"}},
	{Type: "http"},
}}

// Load reads a config file, or every *.hcl file of a directory in name order.
func Load(path string) (*Config, hcl.Diagnostics) {
	st, err := os.Stat(path)
	if err != nil {
		detail := fmt.Sprintf("%v.", err)
		if errors.Is(err, fs.ErrNotExist) {
			detail = fmt.Sprintf("The config file %s does not exist. Check the path, or leave -config out to "+
				"run the embedded default.", path)
		}
		return &Config{ParseFailed: true}, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Cannot read config",
			Detail: detail}}
	}
	var files []string
	if st.IsDir() {
		matches, _ := filepath.Glob(filepath.Join(path, "*.hcl"))
		sort.Strings(matches)
		files = matches
		if len(files) == 0 {
			return &Config{ParseFailed: true}, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "No config files",
				Detail: fmt.Sprintf("The directory %s holds no *.hcl file.", path)}}
		}
	} else {
		files = []string{path}
	}
	srcs := make(map[string][]byte, len(files))
	var order []string
	total := 0
	for _, f := range files {
		b, err := readConfigFile(f)
		if err != nil {
			return &Config{ParseFailed: true}, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Cannot read config",
				Detail: err.Error()}}
		}
		if total += len(b); total > MaxConfigTotalSize {
			return &Config{ParseFailed: true}, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Config too large",
				Detail: fmt.Sprintf("The files of %s have more than %d bytes (4 MiB) together. Keep only the "+
					"config's *.hcl files in the directory.", path, MaxConfigTotalSize)}}
		}
		srcs[f] = b
		order = append(order, f)
	}
	return parse(order, srcs)
}

// readConfigFile reads a config file, refusing what is not a regular file (a device or a
// pipe would never end) and reading no more than one byte past MaxConfigFileSize: the size
// check in parse then names the file.
func readConfigFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file (%s); point -config at a .hcl file or a directory of them",
			path, st.Mode().Type())
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxConfigFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return b, nil
}

// LoadBytes loads a config held in memory (the embedded default), named filename in
// diagnostics.
func LoadBytes(filename string, src []byte) (*Config, hcl.Diagnostics) {
	return parse([]string{filename}, map[string][]byte{filename: src})
}

func parse(order []string, srcs map[string][]byte) (*Config, hcl.Diagnostics) {
	cfg := &Config{Files: map[string]*hcl.File{}, Plugins: map[string]*Plugin{},
		evalCtx: hclspec.EvalContext(".", nil)}
	var diags hcl.Diagnostics
	var bodies []hcl.Body
	for _, name := range order {
		// The limits first: the parser recurses, and an input past them could overflow its
		// stack, which no recover catches.
		if d := checkLimits(name, srcs[name]); d.HasErrors() {
			diags = append(diags, d...)
			continue
		}
		f, d := hclsyntax.ParseConfig(srcs[name], name, hcl.InitialPos)
		diags = append(diags, d...)
		if f != nil {
			cfg.Files[name] = f
			bodies = append(bodies, f.Body)
		}
	}
	if diags.HasErrors() {
		cfg.ParseFailed = true
		return cfg, diags
	}
	agentSeen := false
	for _, body := range bodies {
		content, d := body.Content(topSchema)
		diags = append(diags, d...)
		for _, b := range content.Blocks {
			switch b.Type {
			case "agent":
				if agentSeen {
					diags = append(diags, hclspec.ErrorfAt(b.DefRange, "Duplicate agent block",
						"Only one agent block is allowed."))
					continue
				}
				agentSeen = true
				diags = append(diags, cfg.decodeAgent(b)...)
			case "plugin":
				diags = append(diags, cfg.decodePlugin(b)...)
			case "source", "processor", "sink":
				diags = append(diags, cfg.decodeComponent(b)...)
			case "pipeline":
				diags = append(diags, cfg.decodePipeline(b)...)
			case "http":
				if cfg.HTTP != nil {
					diags = append(diags, hclspec.ErrorfAt(b.DefRange, "Duplicate http block",
						"Only one http block is allowed."))
					continue
				}
				cfg.HTTP = b.Body
				r := b.DefRange
				cfg.HTTPRange = &r
			}
		}
	}
	if !agentSeen {
		cfg.Agent = defaultAgent()
	}
	diags = append(diags, cfg.resolve()...)
	return cfg, diags
}

func defaultAgent() Agent {
	return Agent{DataDir: DefaultDataDir, LogLevel: "info", LogFormat: "text",
		CheckpointInterval: DefaultCheckpointInterval, MaxInflight: DefaultMaxInflight,
		MaxInflightBytes: DefaultMaxInflightBytes, BundledPlugins: BundledInAgent}
}

type agentBlock struct {
	DataDir            *string `hcl:"data_dir"`
	PluginDir          *string `hcl:"plugin_dir"`
	LogLevel           *string `hcl:"log_level"`
	LogFormat          *string `hcl:"log_format"`
	CheckpointInterval *string `hcl:"checkpoint_interval"`
	MaxInflight        *int    `hcl:"max_inflight_batches"`
	MaxInflightBytes   *string `hcl:"max_inflight_bytes"`
	AppVersion         *string `hcl:"app_version"`
	BundledPlugins     *string `hcl:"bundled_plugins"`
}

func (cfg *Config) decodeAgent(b *hcl.Block) hcl.Diagnostics {
	var ab agentBlock
	diags := gohcl.DecodeBody(b.Body, cfg.evalCtx, &ab)
	a := defaultAgent()
	if ab.DataDir != nil {
		a.DataDir = *ab.DataDir
	}
	if ab.PluginDir != nil {
		a.PluginDir = *ab.PluginDir
	}
	if ab.LogLevel != nil {
		a.LogLevel = *ab.LogLevel
		switch a.LogLevel {
		case "trace", "debug", "info", "warn", "error":
		default:
			diags = append(diags, attrError(b.Body, "log_level", "Unsupported value",
				"log_level must be one of \"trace\", \"debug\", \"info\", \"warn\" or \"error\"."))
		}
	}
	if ab.LogFormat != nil {
		a.LogFormat = *ab.LogFormat
		if a.LogFormat != "text" && a.LogFormat != "json" {
			diags = append(diags, attrError(b.Body, "log_format", "Unsupported value",
				"log_format must be \"text\" or \"json\"."))
		}
	}
	if ab.CheckpointInterval != nil {
		d, err := sdk.ParseDuration(*ab.CheckpointInterval)
		if err != nil || d < MinCheckpointInterval {
			diags = append(diags, attrError(b.Body, "checkpoint_interval", "Invalid duration",
				"checkpoint_interval must be a duration of at least 1ms such as \"1s\" (the default): each one "+
					"commits the state store."))
		}
		a.CheckpointInterval = d
	}
	if ab.MaxInflight != nil {
		if *ab.MaxInflight < 1 {
			diags = append(diags, attrError(b.Body, "max_inflight_batches", "Invalid value",
				"max_inflight_batches must be at least 1."))
		}
		a.MaxInflight = *ab.MaxInflight
	}
	if ab.MaxInflightBytes != nil {
		n, ok := agentByteSize(*ab.MaxInflightBytes)
		if !ok || n < minInflightBytes {
			diags = append(diags, attrError(b.Body, "max_inflight_bytes", "Invalid size",
				"max_inflight_bytes is a size of at least 64KiB such as \"32MiB\" (units B, KiB, MiB, GiB)."))
		} else {
			a.MaxInflightBytes = n
		}
	}
	if ab.AppVersion != nil {
		a.AppVersion = *ab.AppVersion
	}
	if ab.BundledPlugins != nil {
		switch *ab.BundledPlugins {
		case BundledInAgent, BundledSharedProcess:
			a.BundledPlugins = *ab.BundledPlugins
		default:
			diags = append(diags, attrError(b.Body, "bundled_plugins", "Unsupported value",
				fmt.Sprintf("bundled_plugins must be %q (the default: inside the agent's process) or %q "+
					"(one `tda plugin-serve` process beside the agent).", BundledInAgent, BundledSharedProcess)))
		}
	}
	cfg.Agent = a
	return diags
}

func attrError(body hcl.Body, name, summary, detail string) *hcl.Diagnostic {
	d := &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: detail}
	if sb, ok := body.(*hclsyntax.Body); ok {
		if a, ok := sb.Attributes[name]; ok {
			r := a.Expr.Range()
			d.Subject = &r
		}
	}
	return d
}

type pluginBlock struct {
	Path        *string            `hcl:"path"`
	SHA256      *string            `hcl:"sha256"`
	MemoryLimit *string            `hcl:"memory_limit"`
	Env         *map[string]string `hcl:"env"`
	InheritEnv  *[]string          `hcl:"inherit_env"`
}

var memoryLimitRE = regexp.MustCompile(`^[0-9]+(B|KiB|MiB|GiB|TiB)?$`)

// attrRange returns the range of an attribute's value, or nil.
func attrRange(body hcl.Body, name string) *hcl.Range {
	if sb, ok := body.(*hclsyntax.Body); ok {
		if a, ok := sb.Attributes[name]; ok {
			r := a.Expr.Range()
			return &r
		}
	}
	return nil
}

func (cfg *Config) decodePlugin(b *hcl.Block) hcl.Diagnostics {
	name := b.Labels[0]
	if prev, ok := cfg.Plugins[name]; ok {
		return hcl.Diagnostics{hclspec.ErrorfAt(b.DefRange, "Duplicate plugin block",
			"A plugin block for %q was already defined at %s.", name, prev.Range)}
	}
	var pb pluginBlock
	diags := gohcl.DecodeBody(b.Body, cfg.evalCtx, &pb)
	p := &Plugin{Name: name, Range: b.DefRange}
	if pb.Path != nil {
		p.Path = *pb.Path
	}
	if pb.SHA256 != nil {
		p.SHA256 = strings.ToLower(strings.TrimSpace(*pb.SHA256))
		if len(p.SHA256) != 64 || strings.Trim(p.SHA256, "0123456789abcdef") != "" {
			diags = append(diags, attrError(b.Body, "sha256", "Invalid checksum",
				"sha256 must be 64 hexadecimal digits; print it with `tda plugins` or `sha256sum`."))
		}
	}
	if pb.MemoryLimit != nil {
		p.MemoryLimit = strings.TrimSpace(*pb.MemoryLimit)
		n, err := ParseSize(p.MemoryLimit)
		switch {
		case !memoryLimitRE.MatchString(p.MemoryLimit) || err != nil:
			diags = append(diags, attrError(b.Body, "memory_limit", "Invalid memory limit",
				"memory_limit is a size such as \"180MiB\" or \"1GiB\" (units B, KiB, MiB, GiB, TiB)."))
		case n < MinMemoryLimit || n > MaxMemoryLimit:
			diags = append(diags, attrError(b.Body, "memory_limit", "Memory limit out of bounds",
				fmt.Sprintf("memory_limit is %s; it must lie between 32MiB (below it the plugin does little but "+
					"collect garbage) and 1TiB (a larger one is most likely a unit typo). Write a size such as "+
					"\"180MiB\" or \"1GiB\".", p.MemoryLimit)))
		}
	}
	p.PathRange, p.SHA256Range = attrRange(b.Body, "path"), attrRange(b.Body, "sha256")
	diags = append(diags, decodePluginEnv(b.Body, p, pb.Env, pb.InheritEnv)...)
	cfg.Plugins[name] = p
	return diags
}

// sinkSchema lists the host-level attributes of a sink block.
var sinkSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "kinds"}, {Name: "queue"}, {Name: "fallback"}, {Name: "fallback_after"},
		{Name: "group_interval"}, {Name: "call_timeout"}, {Name: "max_attempts"}, {Name: "isolate"},
	},
	Blocks: []hcl.BlockHeaderSchema{{Type: "batch"}, {Type: "retry"}, {Type: "buffer"}},
}

// hostSchemas lists the host-level attributes of source and processor blocks; the rest of
// the body is the plugin's.
var hostSchemas = map[sdk.ComponentKind]*hcl.BodySchema{
	sdk.KindSource:    {Attributes: []hcl.AttributeSchema{{Name: "call_timeout"}, {Name: "isolate"}}},
	sdk.KindProcessor: {Attributes: []hcl.AttributeSchema{{Name: "call_timeout"}, {Name: "max_attempts"}, {Name: "isolate"}}},
}

func (cfg *Config) decodeComponent(b *hcl.Block) hcl.Diagnostics {
	kind := sdk.ComponentKind(b.Type)
	c := &Component{Kind: kind, Type: b.Labels[0], Name: b.Labels[1], Body: b.Body,
		DefRange: b.DefRange, TypeRange: b.LabelRanges[0]}
	var diags hcl.Diagnostics
	for _, l := range b.Labels {
		if !hclsyntax.ValidIdentifier(l) {
			diags = append(diags, hclspec.ErrorfAt(b.DefRange, "Invalid name",
				"%q is not a valid name: use letters, digits, underscores and dashes, starting with a letter.", l))
		}
	}
	for _, other := range cfg.Components {
		if other.Kind == c.Kind && other.Type == c.Type && other.Name == c.Name {
			return append(diags, hclspec.ErrorfAt(b.DefRange, "Duplicate block",
				"%s was already defined at %s.", c.Address(), other.DefRange))
		}
	}
	if kind == sdk.KindSink {
		content, remain, d := b.Body.PartialContent(sinkSchema)
		diags = append(diags, d...)
		c.Body = remain
		s, d := cfg.decodeSinkSettings(content)
		diags = append(diags, d...)
		c.Sink = s
		diags = append(diags, cfg.decodeHostLevel(c, content)...)
	} else if schema, ok := hostSchemas[kind]; ok {
		content, remain, d := b.Body.PartialContent(schema)
		diags = append(diags, d...)
		c.Body = remain
		diags = append(diags, cfg.decodeHostLevel(c, content)...)
	}
	cfg.Components = append(cfg.Components, c)
	return diags
}

func (cfg *Config) decodeSinkSettings(content *hcl.BodyContent) (*SinkSettings, hcl.Diagnostics) {
	s := &SinkSettings{FallbackAfter: DefaultFallbackAfter, MaxEvents: DefaultMaxEvents,
		MaxBytes: DefaultMaxBytes, RetryInitial: DefaultRetryInitial, RetryMax: DefaultRetryMax}
	var diags hcl.Diagnostics
	if a, ok := content.Attributes["kinds"]; ok {
		diags = append(diags, gohcl.DecodeExpression(a.Expr, cfg.evalCtx, &s.Kinds)...)
		for _, k := range s.Kinds {
			switch k {
			case sdk.KindLog, sdk.KindAlert, sdk.KindTick, sdk.KindHeartbeat, sdk.KindAudit:
			default:
				diags = append(diags, hclspec.ErrorfAt(a.Expr.Range(), "Unsupported event kind",
					"%q is not an event kind; use \"log\", \"alert\", \"tick\", \"heartbeat\" or \"audit\".%s",
					k, didYouMean(k, []string{"log", "alert", "tick", "heartbeat", "audit"})))
			}
		}
	}
	if a, ok := content.Attributes["queue"]; ok {
		diags = append(diags, gohcl.DecodeExpression(a.Expr, cfg.evalCtx, &s.Queue)...)
		if s.Queue != sdk.QueueMemory && s.Queue != sdk.QueueDurable {
			diags = append(diags, hclspec.ErrorfAt(a.Expr.Range(), "Unsupported value",
				"queue must be \"memory\" or \"durable\".%s",
				didYouMean(s.Queue, []string{sdk.QueueMemory, sdk.QueueDurable})))
		}
	}
	if a, ok := content.Attributes["fallback"]; ok {
		ref, d := parseRef(a.Expr)
		diags = append(diags, d...)
		if ref != nil {
			s.Fallback = ref
		}
	}
	durations := []struct {
		name string
		dst  *time.Duration
	}{{"fallback_after", &s.FallbackAfter}, {"group_interval", &s.GroupInterval}}
	for _, dur := range durations {
		if a, ok := content.Attributes[dur.name]; ok {
			diags = append(diags, decodeDuration(a.Expr, cfg.evalCtx, dur.dst)...)
		}
	}
	for _, blk := range content.Blocks {
		switch blk.Type {
		case "batch":
			var bb struct {
				MaxEvents *int `hcl:"max_events"`
				MaxBytes  *int `hcl:"max_bytes"`
			}
			diags = append(diags, gohcl.DecodeBody(blk.Body, cfg.evalCtx, &bb)...)
			if bb.MaxEvents != nil {
				s.MaxEvents = *bb.MaxEvents
			}
			if bb.MaxBytes != nil {
				s.MaxBytes = *bb.MaxBytes
			}
			if s.MaxEvents < 1 || s.MaxBytes < 1 {
				diags = append(diags, hclspec.ErrorfAt(blk.DefRange, "Invalid batch limits",
					"max_events and max_bytes must be positive."))
			}
		case "retry":
			content, d := blk.Body.Content(&hcl.BodySchema{Attributes: []hcl.AttributeSchema{
				{Name: "initial"}, {Name: "max"}}})
			diags = append(diags, d...)
			if a, ok := content.Attributes["initial"]; ok {
				ds := decodeDuration(a.Expr, cfg.evalCtx, &s.RetryInitial)
				diags = append(diags, ds...)
				if !ds.HasErrors() && s.RetryInitial < MinRetryInitial {
					diags = append(diags, hclspec.ErrorfAt(a.Expr.Range(), "Invalid retry interval",
						"initial must be at least 1ms, such as \"1s\" (the default): it is the first wait "+
							"before a failed delivery is tried again, and each retry doubles it."))
				}
			}
			if a, ok := content.Attributes["max"]; ok {
				ds := decodeDuration(a.Expr, cfg.evalCtx, &s.RetryMax)
				diags = append(diags, ds...)
				if !ds.HasErrors() && s.RetryMax < s.RetryInitial {
					diags = append(diags, hclspec.ErrorfAt(a.Expr.Range(), "Invalid retry interval",
						"max (%s) must be at least initial (%s): it is the longest wait between two tries.",
						s.RetryMax, s.RetryInitial))
				}
			}
		case "buffer":
			diags = append(diags, cfg.decodeBuffer(blk, s)...)
		}
	}
	return s, diags
}

func decodeDuration(expr hcl.Expression, ctx *hcl.EvalContext, dst *time.Duration) hcl.Diagnostics {
	var s string
	diags := gohcl.DecodeExpression(expr, ctx, &s)
	if diags.HasErrors() {
		return diags
	}
	d, err := sdk.ParseDuration(s)
	if err != nil {
		return append(diags, hclspec.ErrorfAt(expr.Range(), "Invalid duration", "%v", err))
	}
	*dst = d
	return diags
}

func (cfg *Config) decodePipeline(b *hcl.Block) hcl.Diagnostics {
	p := &Pipeline{Name: b.Labels[0], DefRange: b.DefRange}
	for _, other := range cfg.Pipelines {
		if other.Name == p.Name {
			return hcl.Diagnostics{hclspec.ErrorfAt(b.DefRange, "Duplicate pipeline",
				"Pipeline %q was already defined at %s.", p.Name, other.DefRange)}
		}
	}
	content, diags := b.Body.Content(&hcl.BodySchema{Attributes: []hcl.AttributeSchema{
		{Name: "from", Required: true}, {Name: "through"}, {Name: "to", Required: true}}})
	lists := []struct {
		name string
		dst  *[]Ref
	}{{"from", &p.From}, {"through", &p.Through}, {"to", &p.To}}
	for _, l := range lists {
		a, ok := content.Attributes[l.name]
		if !ok {
			continue
		}
		exprs, d := hcl.ExprList(a.Expr)
		diags = append(diags, d...)
		for _, e := range exprs {
			ref, d := parseRef(e)
			diags = append(diags, d...)
			if ref != nil {
				*l.dst = append(*l.dst, *ref)
			}
		}
	}
	cfg.Pipelines = append(cfg.Pipelines, p)
	return diags
}

func parseRef(expr hcl.Expression) (*Ref, hcl.Diagnostics) {
	trav, diags := hcl.AbsTraversalForExpr(expr)
	if diags.HasErrors() {
		return nil, hcl.Diagnostics{hclspec.ErrorfAt(expr.Range(), "Invalid reference",
			"Expected a reference such as source.file.hosts, processor.rules.main or sink.jsonl.audit.")}
	}
	var parts []string
	for _, step := range trav {
		switch s := step.(type) {
		case hcl.TraverseRoot:
			parts = append(parts, s.Name)
		case hcl.TraverseAttr:
			parts = append(parts, s.Name)
		default:
			return nil, hcl.Diagnostics{hclspec.ErrorfAt(expr.Range(), "Invalid reference",
				"A reference is KIND.TYPE.NAME, e.g. source.file.hosts.")}
		}
	}
	if len(parts) != 3 {
		return nil, hcl.Diagnostics{hclspec.ErrorfAt(expr.Range(), "Invalid reference",
			"A reference is KIND.TYPE.NAME, e.g. source.file.hosts; got %q.", strings.Join(parts, "."))}
	}
	kind := sdk.ComponentKind(parts[0])
	switch kind {
	case sdk.KindSource, sdk.KindProcessor, sdk.KindSink:
	default:
		return nil, hcl.Diagnostics{hclspec.ErrorfAt(expr.Range(), "Invalid reference",
			"%q is not source, processor or sink.%s", parts[0],
			didYouMean(parts[0], []string{"source", "processor", "sink"}))}
	}
	return &Ref{Kind: kind, Type: parts[1], Name: parts[2], Range: expr.Range()}, nil
}

func didYouMean(given string, candidates []string) string {
	if s := sdk.Suggest(given, candidates); s != "" {
		return fmt.Sprintf(" Did you mean %q?", s)
	}
	return ""
}

// Component returns the component a reference points to, or nil.
func (cfg *Config) Component(r Ref) *Component {
	for _, c := range cfg.Components {
		if c.Kind == r.Kind && c.Type == r.Type && c.Name == r.Name {
			return c
		}
	}
	return nil
}

// ComponentByAddress returns the component with the address "kind.type.name", or nil.
func (cfg *Config) ComponentByAddress(addr string) *Component {
	for _, c := range cfg.Components {
		if c.Address() == addr {
			return c
		}
	}
	return nil
}

func (cfg *Config) resolve() hcl.Diagnostics {
	var diags hcl.Diagnostics
	check := func(r Ref, want sdk.ComponentKind, where string) *Component {
		if r.Kind != want {
			diags = append(diags, hclspec.ErrorfAt(r.Range, "Wrong kind of reference",
				"%s takes %s references; %s is a %s.", where, want, r.Address(), r.Kind))
			return nil
		}
		c := cfg.Component(r)
		if c == nil {
			var names []string
			for _, o := range cfg.Components {
				if o.Kind == r.Kind {
					names = append(names, o.Address())
				}
			}
			detail := fmt.Sprintf("There is no %s block named %q of type %q.", r.Kind, r.Name, r.Type)
			if s := sdk.Suggest(r.Address(), names); s != "" {
				detail += fmt.Sprintf(" Did you mean %s?", s)
			} else if len(names) > 0 {
				detail += fmt.Sprintf(" Defined: %s.", strings.Join(names, ", "))
			}
			d := hclspec.ErrorfAt(r.Range, "Reference to undefined "+string(r.Kind), "%s", detail)
			d.Extra = UndefinedReference{Ref: r}
			diags = append(diags, d)
			return nil
		}
		c.Used = true
		return c
	}
	owner := map[string]string{}
	for _, p := range cfg.Pipelines {
		if len(p.From) == 0 {
			diags = append(diags, hclspec.ErrorfAt(p.DefRange, "Empty pipeline",
				"Pipeline %q reads from no source; list at least one in from.", p.Name))
		}
		if len(p.To) == 0 {
			diags = append(diags, hclspec.ErrorfAt(p.DefRange, "Empty pipeline",
				"Pipeline %q writes to no sink; list at least one in to.", p.Name))
		}
		for _, refs := range [][]Ref{p.From, p.Through, p.To} {
			seen := map[string]bool{}
			for _, r := range refs {
				if seen[r.Address()] {
					diags = append(diags, hclspec.ErrorfAt(r.Range, "Duplicate reference",
						"%s is listed twice in pipeline %q.", r.Address(), p.Name))
				}
				seen[r.Address()] = true
			}
		}
		for _, r := range p.From {
			check(r, sdk.KindSource, "from")
		}
		for _, r := range p.Through {
			if check(r, sdk.KindProcessor, "through") == nil {
				continue
			}
			if prev, ok := owner[r.Address()]; ok && prev != p.Name {
				diags = append(diags, hclspec.ErrorfAt(r.Range, "Processor used twice",
					"%s is already used by pipeline %q. A processor keeps state for one pipeline; declare a second block for this one.",
					r.Address(), prev))
			}
			owner[r.Address()] = p.Name
		}
		for _, r := range p.To {
			check(r, sdk.KindSink, "to")
		}
	}
	for _, c := range cfg.Components {
		if c.Sink == nil || c.Sink.Fallback == nil {
			continue
		}
		fb := check(*c.Sink.Fallback, sdk.KindSink, "fallback")
		if fb == c {
			diags = append(diags, hclspec.ErrorfAt(c.Sink.Fallback.Range, "Invalid fallback",
				"A sink cannot be its own fallback."))
		}
	}
	// Fallback chains must not loop.
	for _, c := range cfg.Components {
		seen := map[*Component]bool{}
		for cur := c; cur != nil && cur.Sink != nil && cur.Sink.Fallback != nil; {
			if seen[cur] {
				diags = append(diags, hclspec.ErrorfAt(c.Sink.Fallback.Range, "Fallback loop",
					"The fallbacks of %s lead back to it.", c.Address()))
				break
			}
			seen[cur] = true
			cur = cfg.Component(*cur.Sink.Fallback)
		}
	}
	for _, c := range cfg.Components {
		if !c.Used {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagWarning, Summary: "Unused block",
				Detail:  fmt.Sprintf("%s is not used by any pipeline and will not run.", c.Address()),
				Subject: c.DefRange.Ptr(), Extra: UnusedBlock{Address: c.Address()}})
		}
	}
	return diags
}

// EvalContext returns the evaluation context of the config (functions env and file).
func (cfg *Config) EvalContext() *hcl.EvalContext { return cfg.evalCtx }

// InstanceDataDir is the private directory of a component instance under the data dir.
func (cfg *Config) InstanceDataDir(c *Component) string {
	return filepath.Join(cfg.Agent.DataDir, c.Address())
}

// Decode decodes a component's body with its spec and stores the JSON in c.Config.
func (cfg *Config) Decode(c *Component, spec *sdk.Spec) hcl.Diagnostics {
	if spec == nil {
		spec = &sdk.Spec{}
	}
	data, diags := hclspec.Decode(spec, c.Body, cfg.evalCtx, c.DefRange)
	if !diags.HasErrors() {
		c.Config = data
	}
	return diags
}

// Positioned converts a plugin's diagnostics for component c into HCL diagnostics.
func (cfg *Config) Positioned(c *Component, spec *sdk.Spec, ds sdk.Diagnostics) hcl.Diagnostics {
	return hclspec.Diagnostics(ds, spec, c.Body, c.DefRange)
}

// Pipeline returns the named pipeline, or nil.
func (cfg *Config) Pipeline(name string) *Pipeline {
	for _, p := range cfg.Pipelines {
		if p.Name == name {
			return p
		}
	}
	return nil
}
