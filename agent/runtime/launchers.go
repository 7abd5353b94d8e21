package runtime

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/hashicorp/go-hclog"

	"github.com/tda-dev/tda/agent/config"
	"github.com/tda-dev/tda/agent/pluginhost"
	"github.com/tda-dev/tda/sdk"
	"github.com/tda-dev/tda/sdk/host"
)

// ProcessLauncher runs each instance where its plugin and block say: the plugins built into
// tda inside the agent's own process (InAgent), or in the one process of a binary that
// serves several instances (`tda plugin-serve`); separate plugin binaries, components under
// a plugin block's memory_limit or environment, and blocks with isolate = true in a process
// of their own. See pluginhost.Processes.
type ProcessLauncher struct {
	Registry *pluginhost.Registry
	// Env is added to every plugin's environment (e.g. TDA_PLUGIN_LOG_LEVEL); an instance
	// inside the agent reads it before the agent's own environment.
	Env []string
	// Stdout receives the plugins' standard output (the console sink writes there).
	Stdout io.Writer
	// InAgent runs the instances of the plugins linked into the agent (pluginhost.Builtin
	// Plugins) that could share a process inside the agent's process instead (agent
	// bundled_plugins = "in_agent").
	InAgent bool

	once      sync.Once
	processes *pluginhost.Processes
}

// Describe implements Launcher.
func (l *ProcessLauncher) Describe(c *config.Component) (sdk.ComponentDescription, bool) {
	_, d, ok := l.Registry.Lookup(c.Kind, c.Type)
	return d, ok
}

func (l *ProcessLauncher) procs() *pluginhost.Processes {
	l.once.Do(func() { l.processes = pluginhost.NewProcesses(l.Registry, l.Env, l.Stdout) })
	return l.processes
}

// Prestart begins launching the shared plugin processes the used components of cfg will
// run in, while the agent prepares the rest; Close stops those no instance took.
func (l *ProcessLauncher) Prestart(cfg *config.Config, logger hclog.Logger) {
	for _, c := range cfg.Components {
		if _, inAgent := l.linked(c); c.Used && !c.Isolate && !inAgent {
			l.procs().Prestart(c.Kind, c.Type, logger)
		}
	}
}

// Close stops the plugin processes that no instance holds; call it when the agent is done.
func (l *ProcessLauncher) Close() { l.procs().Close() }

// linked returns the component c runs inside the agent, if it does (see InAgent).
func (l *ProcessLauncher) linked(c *config.Component) (sdk.Component, bool) {
	if !l.InAgent || c.Isolate {
		return sdk.Component{}, false
	}
	b, d, ok := l.Registry.Lookup(c.Kind, c.Type)
	if !ok {
		return sdk.Component{}, false
	}
	return b.Linked(d)
}

// RunsInAgent reports whether the instance of c runs inside the agent's process.
func (l *ProcessLauncher) RunsInAgent(c *config.Component) bool {
	_, ok := l.linked(c)
	return ok
}

// Launch implements Launcher.
func (l *ProcessLauncher) Launch(_ context.Context, c *config.Component, logger hclog.Logger) (Plugin, error) {
	if comp, ok := l.linked(c); ok {
		return launchDirect(c.Kind, comp, logger, host.DirectEnv{Stdout: l.Stdout, Getenv: envLookup(l.Env)}), nil
	}
	in, err := l.procs().Start(c.Kind, c.Type, c.Address(), c.Isolate, logger)
	if err != nil {
		return nil, err
	}
	return processPlugin{in}, nil
}

// processPlugin is an instance in a plugin process. Kill stops the process (it failed: a
// shared one takes its other instances down too, and they restart); Release ends the
// instance alone.
type processPlugin struct{ *pluginhost.Instance }

func (p processPlugin) Source() host.Source       { return p.Conn.Source() }
func (p processPlugin) Processor() host.Processor { return p.Conn.Processor() }
func (p processPlugin) Sink() host.Sink           { return p.Conn.Sink() }

// InProcessLauncher runs components linked into the agent, without RPC (benchmarks, tests,
// and host-internal components such as the replay output).
type InProcessLauncher struct {
	// Components maps "kind.type" (e.g. "sink.stdout") to the component.
	Components map[string]sdk.Component
}

func (l *InProcessLauncher) lookup(c *config.Component) (sdk.Component, bool) {
	comp, ok := l.Components[string(c.Kind)+"."+c.Type]
	return comp, ok
}

// Describe implements Launcher.
func (l *InProcessLauncher) Describe(c *config.Component) (sdk.ComponentDescription, bool) {
	comp, ok := l.lookup(c)
	if !ok {
		return sdk.ComponentDescription{}, false
	}
	return sdk.Describe(sdk.PluginInfo{Name: "in-process"}, comp).Components[0], true
}

// Launch implements Launcher.
func (l *InProcessLauncher) Launch(_ context.Context, c *config.Component, logger hclog.Logger) (Plugin, error) {
	comp, ok := l.lookup(c)
	if !ok {
		return nil, fmt.Errorf("no in-process component %s.%s", c.Kind, c.Type)
	}
	return launchDirect(c.Kind, comp, logger, host.DirectEnv{}), nil
}

// launchDirect runs an instance of comp in the agent's process.
func launchDirect(kind sdk.ComponentKind, comp sdk.Component, logger hclog.Logger, env host.DirectEnv) *directPlugin {
	d := &directPlugin{}
	switch kind {
	case sdk.KindSource:
		d.source = host.DirectSourceWith(comp, logger, env)
	case sdk.KindProcessor:
		d.processor = host.DirectProcessorWith(comp, logger, env)
	case sdk.KindSink:
		d.sink = host.DirectSinkWith(comp, logger, env)
	}
	return d
}

// envLookup reads NAME=value entries before the agent's own environment.
func envLookup(env []string) func(string) string {
	own := make(map[string]string, len(env))
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok {
			own[k] = v
		}
	}
	return func(key string) string {
		if v, ok := own[key]; ok {
			return v
		}
		return os.Getenv(key)
	}
}

type directPlugin struct {
	source    host.Source
	processor host.Processor
	sink      host.Sink
}

func (d *directPlugin) Source() host.Source       { return d.source }
func (d *directPlugin) Processor() host.Processor { return d.processor }
func (d *directPlugin) Sink() host.Sink           { return d.sink }
func (d *directPlugin) Exited() bool              { return false }
func (d *directPlugin) Pid() int                  { return 0 }

// Kill ends the instance: it is closed now, or when a call it is stuck in returns (a
// goroutine cannot be killed; see host.DirectSource).
func (d *directPlugin) Kill() {
	for _, v := range []any{d.source, d.processor, d.sink} {
		if k, ok := v.(host.Killer); ok {
			k.Kill()
		}
	}
}

// MixedLauncher tries its launchers in order: the first that describes a component runs it.
type MixedLauncher []Launcher

// Describe implements Launcher.
func (m MixedLauncher) Describe(c *config.Component) (sdk.ComponentDescription, bool) {
	for _, l := range m {
		if d, ok := l.Describe(c); ok {
			return d, true
		}
	}
	return sdk.ComponentDescription{}, false
}

// Launch implements Launcher.
func (m MixedLauncher) Launch(ctx context.Context, c *config.Component, logger hclog.Logger) (Plugin, error) {
	for _, l := range m {
		if _, ok := l.Describe(c); ok {
			return l.Launch(ctx, c, logger)
		}
	}
	return nil, fmt.Errorf("no plugin offers %s %q", c.Kind, c.Type)
}
