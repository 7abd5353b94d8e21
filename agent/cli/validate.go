package cli

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/hcl/v2"

	"github.com/tda-dev/tda/agent/config"
	"github.com/tda-dev/tda/agent/control"
	"github.com/tda-dev/tda/agent/loader"
	"github.com/tda-dev/tda/agent/pluginhost"
	"github.com/tda-dev/tda/sdk"
	"github.com/tda-dev/tda/sdk/host"
)

type validateCommand struct{ env *Env }

func (c *validateCommand) Synopsis() string { return "Check a configuration without running it" }

func (c *validateCommand) Help() string {
	return strings.TrimSpace(`
Usage: tda validate [-config FILE] [-plugin-dir DIR]

  Parses the configuration, starts each plugin it uses only to check its block,
  and prints every problem with its position (file:line,column), the source line
  and a hint: unknown or misspelt attributes, wrong types, missing required ones,
  invalid values, references to undefined sources, processors or sinks, and
  blocks no pipeline uses (a warning).

  Exits 0 when the configuration is valid, 1 otherwise.

Flags:
  -config FILE      Config file, or a directory of *.hcl files (default: the embedded one).
  -plugin-dir DIR   Where the plugin binaries are (overrides agent.plugin_dir).
`)
}

func (c *validateCommand) Run(args []string) int {
	fs := c.env.FlagSet("validate")
	path := fs.String("config", "", "")
	pluginDir := fs.String("plugin-dir", "", "")
	if ok, code := c.env.Parse(fs, args, c.Help); !ok {
		return code
	}
	ctx := context.Background()
	loaded, diags := loader.Load(ctx, *path, loader.Options{PluginDir: *pluginDir, Builtin: c.env.Builtin})
	// The checked copies of pinned plugins are released once nothing launches any more.
	defer loaded.Registry.Close()
	if !diags.HasErrors() {
		diags = append(diags, checkWithPlugins(ctx, loaded)...)
		diags = append(diags, control.Check(loaded.Config)...)
	}
	if c.env.Diagnostics(loaded.Config, diags) {
		return 1
	}
	name := *path
	if name == "" {
		name = loader.DefaultConfigName + " (embedded)"
	}
	used := 0
	for _, comp := range loaded.Config.Components {
		if comp.Used {
			used++
		}
	}
	c.env.Printf("The configuration is valid: %s (%s, %s).\n", name,
		plural(len(loaded.Config.Pipelines), "pipeline"), plural(used, "component"))
	return 0
}

// checkWithPlugins asks each used component's plugin to check its decoded config (semantic
// checks such as regexps and cross-field rules), in parallel, in the processes tda run would
// use: the plugins built into tda check every block in one.
func checkWithPlugins(ctx context.Context, l *loader.Loaded) hcl.Diagnostics {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	procs := pluginhost.NewProcesses(l.Registry, nil, nil)
	defer procs.Close()
	var (
		mu    sync.Mutex
		diags hcl.Diagnostics
		wg    sync.WaitGroup
	)
	for _, comp := range l.Config.Components {
		if !comp.Used || comp.Config == nil {
			continue
		}
		wg.Add(1)
		go func(comp *config.Component) {
			defer wg.Done()
			d := checkComponent(ctx, l, procs, comp)
			mu.Lock()
			diags = append(diags, d...)
			mu.Unlock()
		}(comp)
	}
	wg.Wait()
	return diags
}

func checkComponent(ctx context.Context, l *loader.Loaded, procs *pluginhost.Processes, comp *config.Component) hcl.Diagnostics {
	_, desc, ok := l.Registry.Lookup(comp.Kind, comp.Type)
	if !ok {
		return nil
	}
	proc, err := procs.Start(comp.Kind, comp.Type, comp.Address(), comp.Isolate, hclog.NewNullLogger())
	if err != nil {
		return hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Cannot start plugin",
			Detail: err.Error(), Subject: comp.TypeRange.Ptr()}}
	}
	defer proc.Release()
	conf := host.Configuration{Component: comp.Type, Instance: comp.Address(), Config: comp.Config,
		ValidateOnly: true}
	var res host.Configured
	switch comp.Kind {
	case sdk.KindSource:
		res, err = proc.Source().Configure(ctx, conf)
	case sdk.KindProcessor:
		res, err = proc.Processor().Configure(ctx, conf)
	case sdk.KindSink:
		res, err = proc.Sink().Configure(ctx, conf)
	}
	if err != nil {
		return hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Plugin check failed",
			Detail: fmt.Sprintf("%s: %v", comp.Address(), err), Subject: comp.DefRange.Ptr()}}
	}
	return l.Config.Positioned(comp, desc.Spec, res.Diagnostics)
}

// plural returns "1 pipeline", "2 pipelines".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
