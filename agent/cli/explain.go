package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"

	"github.com/hashicorp/go-hclog"

	"github.com/tda-dev/tda/agent/actions"
	"github.com/tda-dev/tda/agent/config"
	"github.com/tda-dev/tda/agent/loader"
	"github.com/tda-dev/tda/agent/pluginhost"
	"github.com/tda-dev/tda/sdk"
)

type explainCommand struct{ env *Env }

func (c *explainCommand) Synopsis() string {
	return "Show, line by line, what detection makes of your logs"
}

func (c *explainCommand) Help() string {
	return strings.TrimSpace(`
Usage: tda explain [-config FILE] [-processor NAME] [-json] [-only-events] [-rule NAME] LOGFILE...

  Reads the log files through the parsers of the detection pipeline (every
  override or rules processor up to the rules processor, in order) and the rules
  of that rules processor, and prints, for every line: the format recognised, the detection event and its
  fields, and for every rule matching the event whether it counted it or why
  not (the rule's where or unless condition, a maintenance window, an approved
  migration; no rule matching the event; the parser recognising the event but
  ignoring it). Then a summary: lines and events per format, and per rule the
  events it matched and counted and whether it would fire over these lines.

  Run it on your own logs before trusting tda with them: a line you expect to
  be an event that shows none is an incident tda would never see. Nothing is
  started, sent or written; files are read one after another, in the lines'
  own time, as tda replay reads them. The rules processor's plugin does the
  work (its action "explain"), so the trace is that of the plugin tda runs.

Flags:
  -config FILE      Configuration (default: the embedded one).
  -processor NAME   Name of the rules processor block (default: the only one).
  -json             One JSON object per line (file, line, time, format, event,
                    fields, rules, reason); the summary goes to standard error.
  -only-events      Only the lines that are events or that the parser ignored.
  -rule NAME        Only the lines whose event the rule matches, with its decision.
`)
}

// explainRequest is the request of a rules processor's action "explain" (docs/plugins.md).
type explainRequest struct {
	Files      []logFile           `json:"files"`
	Upstream   []upstreamProcessor `json:"upstream,omitempty"`
	Output     string              `json:"output,omitempty"`
	JSON       bool                `json:"json,omitempty"`
	OnlyEvents bool                `json:"only_events,omitempty"`
	Rule       string              `json:"rule,omitempty"`
}

// logFile is a file an action reads: its absolute path, and its name as the operator gave it.
type logFile struct {
	Path string `json:"path"`
	Name string `json:"name,omitempty"`
}

// upstreamProcessor is a detect processor before the rules processor in its pipeline.
type upstreamProcessor struct {
	Address string          `json:"address"`
	Type    string          `json:"type"`
	Config  json.RawMessage `json:"config"`
}

// explainResult is the result of action "explain".
type explainResult struct {
	Summary string `json:"summary"`
}

func (c *explainCommand) Run(args []string) int {
	fs := c.env.FlagSet("explain")
	path := fs.String("config", "", "")
	name := fs.String("processor", "", "")
	asJSON := fs.Bool("json", false, "")
	onlyEvents := fs.Bool("only-events", false, "")
	rule := fs.String("rule", "", "")
	if ok, code := c.env.Parse(fs, args, c.Help); !ok {
		return code
	}
	if fs.NArg() == 0 {
		c.env.Errorf("name at least one log file to explain")
		return 1
	}
	files, err := logFiles(fs.Args())
	if err != nil {
		c.env.Errorf("%v", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	l, comp, ok := c.env.loadRules(ctx, *path, *name)
	if l != nil && l.Registry != nil {
		defer l.Registry.Close()
	}
	if !ok {
		return 1
	}
	req := explainRequest{Files: files, JSON: *asJSON, OnlyEvents: *onlyEvents, Rule: *rule}
	for _, u := range detectUpstream(l.Config, comp) {
		req.Upstream = append(req.Upstream, upstreamProcessor{Address: u.Address(), Type: u.Type, Config: u.Config})
	}
	// The plugin writes the trace to a file of ours (a line can be longer than a progress
	// line may be): a named pipe copied to standard output as the plugin writes, or where
	// there is none a file, printed once the replay is done.
	dir, err := os.MkdirTemp("", "tda-explain-")
	if err != nil {
		c.env.Errorf("create a directory for the trace: %v", err)
		return 1
	}
	defer os.RemoveAll(dir)
	req.Output = filepath.Join(dir, "trace")
	var copied chan error
	r, hold, piped := openTracePipe(req.Output)
	if piped {
		defer r.Close()
		copied = make(chan error, 1)
		go func() {
			_, err := io.Copy(c.env.Stdout, r)
			if err != nil {
				err = fmt.Errorf("print the trace: %w", err)
			}
			copied <- err
		}()
	}
	var res explainResult
	err = c.env.callAction(ctx, l, comp, "explain", req, &res)
	if piped {
		// The plugin has closed its end: ours was the last, and the copy ends.
		hold.Close()
		if cerr := <-copied; err == nil {
			err = cerr
		}
	} else if err == nil {
		err = copyFile(c.env.Stdout, req.Output)
	}
	if err != nil {
		c.env.Errorf("%v", err)
		return 1
	}
	// With -json the summary is for the person running the command; standard output stays JSON.
	summaryTo := c.env.Stdout
	if *asJSON {
		summaryTo = c.env.Stderr
	}
	if _, err := io.WriteString(summaryTo, res.Summary); err != nil {
		c.env.Errorf("%v", err)
		return 1
	}
	return 0
}

// logFiles names the files an action reads: absolute paths (a plugin's working directory is
// not the operator's), shown as the operator wrote them.
func logFiles(args []string) ([]logFile, error) {
	out := make([]logFile, 0, len(args))
	for _, a := range args {
		abs, err := filepath.Abs(a)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", a, err)
		}
		out = append(out, logFile{Path: abs, Name: a})
	}
	return out, nil
}

func copyFile(w io.Writer, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("read the trace: %w", err)
	}
	defer f.Close()
	if _, err := io.Copy(w, f); err != nil {
		return fmt.Errorf("print the trace: %w", err)
	}
	return nil
}

// loadRules loads the config with its plugins, as tda run does, and finds the rules
// processor block named name (or the only one), checked by its plugin: its mistakes are
// diagnostics with their position. It prints what is wrong and returns ok false.
func (e *Env) loadRules(ctx context.Context, path, name string) (*loader.Loaded, *config.Component, bool) {
	l, diags := loader.Load(ctx, path, loader.Options{Builtin: e.Builtin})
	if e.Diagnostics(l.Config, diags) {
		return l, nil, false
	}
	comp, err := rulesBlock(l.Config, name)
	if err != nil {
		e.Errorf("%v", err)
		return l, nil, false
	}
	procs := pluginhost.NewProcesses(l.Registry, nil, nil)
	defer procs.Close()
	checked := append(detectUpstream(l.Config, comp), comp)
	for _, u := range checked {
		if e.Diagnostics(l.Config, checkComponent(ctx, l, procs, u)) {
			return l, nil, false
		}
	}
	return l, comp, true
}

// callAction runs an action of comp's plugin; the plugin's warnings go to standard error.
func (e *Env) callAction(ctx context.Context, l *loader.Loaded, comp *config.Component, action string, args, result any) error {
	r := actions.Runner{Logger: hclog.New(&hclog.LoggerOptions{Name: "tda", Level: hclog.Warn, Output: e.Stderr})}
	return r.Call(ctx, l.Config, comp.Address(), action, args, result, nil, os.Getenv("TDA_ACTOR"))
}

// detectUpstream returns the detect processors (override, rules) that run before comp in the
// first pipeline that runs comp, in order: each of them parses the lines first, and the rules
// processor reuses what they found. Processors of other plugins are not run.
func detectUpstream(cfg *config.Config, comp *config.Component) []*config.Component {
	for _, p := range cfg.Pipelines {
		for i, r := range p.Through {
			if r.Kind != comp.Kind || r.Type != comp.Type || r.Name != comp.Name {
				continue
			}
			var out []*config.Component
			for _, u := range p.Through[:i] {
				if u.Kind != sdk.KindProcessor || (u.Type != "override" && u.Type != "rules") {
					continue
				}
				if c := cfg.Component(u); c != nil && c.Config != nil {
					out = append(out, c)
				}
			}
			return out
		}
	}
	return nil
}
