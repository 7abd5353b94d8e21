package cli

import (
	"context"
	"os"
	"os/signal"
	"strings"

	"github.com/tda-dev/tda/agent/loader"
	"github.com/tda-dev/tda/agent/replay"
)

type replayCommand struct{ env *Env }

func (c *replayCommand) Synopsis() string { return "Run log files through the detection rules" }

func (c *replayCommand) Help() string {
	return strings.TrimSpace(`
Usage: tda replay [-config FILE] [-pipeline NAME] [-kinds KINDS] LOGFILE...

  Feeds the log files through the processors of the configuration's detection
  pipeline (parsers, override, rules), as fast as the machine allows and in the
  lines' own time, and prints the resulting alerts as JSON lines on standard
  output. No sink is called and no state is read or written, so it is safe to run
  next to a running agent. Use it to test rules against your own history.

  Files are read one after another, each from its beginning to its end.

Flags:
  -config FILE     Configuration (default: the embedded one).
  -pipeline NAME   The pipeline whose processors run (default: the only one with processors).
  -kinds KINDS     Comma-separated event kinds to print (default: alert; e.g. alert,audit).
  -log-level L     Log level for the agent's own messages on standard error (default: warn).
`)
}

func (c *replayCommand) Run(args []string) int {
	fs := c.env.FlagSet("replay")
	path := fs.String("config", "", "")
	pipeline := fs.String("pipeline", "", "")
	kinds := fs.String("kinds", "alert", "")
	level := fs.String("log-level", "warn", "")
	pluginDir := fs.String("plugin-dir", "", "")
	if ok, code := c.env.Parse(fs, args, c.Help); !ok {
		return code
	}
	files := fs.Args()
	if len(files) == 0 {
		c.env.Errorf("name at least one log file to replay")
		return 1
	}
	for _, f := range files {
		if _, err := os.Stat(f); err != nil {
			c.env.Errorf("%v", err)
			return 1
		}
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt)
	defer cancel()
	loaded, diags := loader.Load(ctx, *path, loader.Options{PluginDir: *pluginDir, Builtin: c.env.Builtin})
	// The checked copies of pinned plugins are released once nothing launches any more.
	defer loaded.Registry.Close()
	if c.env.Diagnostics(loaded.Config, diags) {
		return 1
	}
	var kindList []string
	for _, k := range strings.Split(*kinds, ",") {
		if k = strings.TrimSpace(k); k != "" {
			kindList = append(kindList, k)
		}
	}
	_, err := replay.Run(ctx, replay.Options{Loaded: loaded, Pipeline: *pipeline, Files: files,
		Out: c.env.Stdout, Kinds: kindList, Logger: c.env.Logger(*level, "text")})
	if err != nil {
		c.env.Errorf("%v", err)
		return 1
	}
	return 0
}
