package cli

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/hashicorp/hcl/v2"

	"github.com/tda-dev/tda/agent/config"
	"github.com/tda-dev/tda/agent/loader"
	"github.com/tda-dev/tda/plugins/detect"
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
  own time, as tda replay reads them.

Flags:
  -config FILE      Configuration (default: the embedded one).
  -processor NAME   Name of the rules processor block (default: the only one).
  -json             One JSON object per line (file, line, time, format, event,
                    fields, rules, reason); the summary goes to standard error.
  -only-events      Only the lines that are events or that the parser ignored.
  -rule NAME        Only the lines whose event the rule matches, with its decision.
`)
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
	files := fs.Args()
	if len(files) == 0 {
		c.env.Errorf("name at least one log file to explain")
		return 1
	}
	cfg, diags := loader.LoadConfig(*path)
	if c.env.Diagnostics(cfg, diags) {
		return 1
	}
	comp, err := rulesBlock(cfg, *name)
	if err != nil {
		c.env.Errorf("%v", err)
		return 1
	}
	spec := detect.RulesSpec()
	if c.env.Diagnostics(cfg, cfg.Decode(comp, spec)) {
		return 1
	}
	var upstream []upstreamParser
	for _, u := range detectUpstream(cfg, comp) {
		uspec := detect.RulesSpec()
		if u.Type == "override" {
			uspec = detect.OverrideSpec()
		}
		if c.env.Diagnostics(cfg, cfg.Decode(u, uspec)) {
			return 1
		}
		upstream = append(upstream, upstreamParser{address: u.Address(), spec: uspec, config: u.Config})
	}
	x, err := newExplainer(comp.Config, comp.Address(), upstream)
	if err != nil {
		var d *sdk.Diagnostic
		if errors.As(err, &d) {
			c.env.Diagnostics(cfg, cfg.Positioned(comp, spec, sdk.Diagnostics{d}))
		} else {
			c.env.Diagnostics(cfg, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Invalid rules block",
				Detail: err.Error(), Subject: comp.DefRange.Ptr()}})
		}
		return 1
	}
	if *rule != "" {
		if _, ok := x.ruleIndex[*rule]; !ok {
			names := make([]string, len(x.tallies))
			for i, t := range x.tallies {
				names[i] = t.Rule
			}
			c.env.Errorf("%s has no rule %q; its rules: %s", comp.Address(), *rule, strings.Join(names, ", "))
			return 1
		}
	}
	if err := c.explain(x, files, *asJSON, *onlyEvents, *rule); err != nil {
		c.env.Errorf("%v", err)
		return 1
	}
	return 0
}

func (c *explainCommand) explain(x *explainer, files []string, asJSON, onlyEvents bool, rule string) error {
	var write func(*explainLine) error
	var table *explainTable
	if asJSON {
		write = newExplainJSON(c.env.Stdout).write
	} else {
		table = newExplainTable(c.env.Stdout)
		write = table.write
	}
	for _, path := range files {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		err = readLines(f, func(n int, line []byte) error {
			rec := x.explain(path, n, line)
			if !shown(&rec, onlyEvents, rule) {
				return nil
			}
			return write(&rec)
		})
		f.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
	}
	x.finish()
	if asJSON {
		// The summary is for the person running the command; standard output stays JSON.
		return writeExplainSummary(c.env.Stderr, x, rule)
	}
	if err := table.flush(); err != nil {
		return err
	}
	return writeExplainSummary(c.env.Stdout, x, rule)
}

// shown applies -only-events and -rule to a line (and keeps only that rule's decision).
func shown(rec *explainLine, onlyEvents bool, rule string) bool {
	if rule != "" {
		for _, d := range rec.Rules {
			if d.Rule == rule {
				rec.Rules = append(rec.Rules[:0], d)
				return true
			}
		}
		return false
	}
	return !onlyEvents || rec.Event != "" || rec.Reason != ""
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
				if c := cfg.Component(u); c != nil {
					out = append(out, c)
				}
			}
			return out
		}
	}
	return nil
}
