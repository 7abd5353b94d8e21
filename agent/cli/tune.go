package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"

	"github.com/tda-dev/tda/agent/config"
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

// tuneRequest is the request of a rules processor's action "tune" (docs/plugins.md).
type tuneRequest struct {
	Files  []logFile `json:"files"`
	Margin float64   `json:"margin"`
	JSON   bool      `json:"json,omitempty"`
}

// tuneResult is the result of action "tune": the report as printed.
type tuneResult struct {
	Output string `json:"output"`
}

// defaultTuneMargin is the relative margin of a suggested threshold above the normal p99.
const defaultTuneMargin = 0.5

func (c *tuneCommand) Run(args []string) int {
	fs := c.env.FlagSet("tune")
	path := fs.String("config", "", "")
	name := fs.String("processor", "", "")
	margin := fs.Float64("margin", defaultTuneMargin, "")
	asJSON := fs.Bool("json", false, "")
	if ok, code := c.env.Parse(fs, args, c.Help); !ok {
		return code
	}
	if fs.NArg() == 0 {
		c.env.Errorf("name at least one log file to tune from")
		return 1
	}
	if *margin < 0 {
		c.env.Errorf("-margin must not be negative")
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
	var res tuneResult
	if err := c.env.callAction(ctx, l, comp, "tune", tuneRequest{Files: files, Margin: *margin, JSON: *asJSON}, &res); err != nil {
		c.env.Errorf("%v", err)
		return 1
	}
	if _, err := io.WriteString(c.env.Stdout, res.Output); err != nil {
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
