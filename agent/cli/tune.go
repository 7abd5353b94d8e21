package cli

import (
	"errors"
	"fmt"
	"strings"

	"github.com/hashicorp/hcl/v2"

	"github.com/tda-dev/tda/agent/config"
	"github.com/tda-dev/tda/agent/loader"
	"github.com/tda-dev/tda/plugins/detect"
	"github.com/tda-dev/tda/plugins/detect/tune"
	"github.com/tda-dev/tda/sdk"
)

type tuneCommand struct{ env *Env }

func (c *tuneCommand) Synopsis() string { return "Suggest rule thresholds from your own log history" }

func (c *tuneCommand) Help() string {
	return strings.TrimSpace(`
Usage: tda tune [-config FILE] [-processor NAME] [-margin 0.5] [-json] LOGFILE...

  Reads the log files through the same parsers and rule conditions as the rules
  processor and prints, for each rule, how many matching events a key has per
  window (p50 and p99 over the normal windows, the largest count any sliding
  window reached), how many incidents the current threshold raises over this
  history, and a suggested threshold with its margin above the normal p99.

  Feed it a representative stretch of history (days, not minutes). Windows
  above the current threshold are the incidents the rule already reports; they
  are listed separately and left out of the normal level.

Flags:
  -config FILE      Configuration (default: the embedded one).
  -processor NAME   Name of the rules processor block (default: the only one).
  -margin M         Relative margin of a suggested threshold above p99 (default 0.5).
  -json             Print the report as JSON.
`)
}

func (c *tuneCommand) Run(args []string) int {
	fs := c.env.FlagSet("tune")
	path := fs.String("config", "", "")
	name := fs.String("processor", "", "")
	margin := fs.Float64("margin", tune.DefaultMargin, "")
	asJSON := fs.Bool("json", false, "")
	if ok, code := c.env.Parse(fs, args, c.Help); !ok {
		return code
	}
	files := fs.Args()
	if len(files) == 0 {
		c.env.Errorf("name at least one log file to tune from")
		return 1
	}
	if *margin < 0 {
		c.env.Errorf("-margin must not be negative")
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
	tu, err := tune.FromConfig(comp.Config)
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
	for _, f := range files {
		if err := tu.AddFile(f); err != nil {
			c.env.Errorf("%v", err)
			return 1
		}
	}
	rep := tu.Report(*margin)
	if *asJSON {
		err = rep.WriteJSON(c.env.Stdout)
	} else {
		err = rep.WriteTable(c.env.Stdout)
	}
	if err != nil {
		c.env.Errorf("%v", err)
		return 1
	}
	return 0
}

// rulesBlock finds the rules processor block to tune.
func rulesBlock(cfg *config.Config, name string) (*config.Component, error) {
	var found []*config.Component
	for _, comp := range cfg.Components {
		if comp.Kind == sdk.KindProcessor && comp.Type == "rules" && (name == "" || comp.Name == name) {
			found = append(found, comp)
		}
	}
	switch {
	case len(found) == 1:
		return found[0], nil
	case len(found) == 0 && name != "":
		return nil, fmt.Errorf("the configuration has no processor \"rules\" %q", name)
	case len(found) == 0:
		return nil, errors.New(`the configuration has no processor "rules" block to tune`)
	}
	names := make([]string, len(found))
	for i, f := range found {
		names[i] = f.Name
	}
	return nil, fmt.Errorf("several rules processors (%s): choose one with -processor NAME", strings.Join(names, ", "))
}
