package cli

import (
	"context"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tda-dev/tda/agent/config"
	"github.com/tda-dev/tda/agent/control"
	"github.com/tda-dev/tda/agent/loader"
	"github.com/tda-dev/tda/agent/panel"
	"github.com/tda-dev/tda/agent/runtime"
	"github.com/tda-dev/tda/agent/startpages"
	"github.com/tda-dev/tda/agent/state"
	"github.com/tda-dev/tda/sdk"
)

// StopTimeout bounds the drain after SIGINT or SIGTERM.
const StopTimeout = 9 * time.Second

type runCommand struct{ env *Env }

func (c *runCommand) Synopsis() string { return "Run every pipeline of a configuration" }

func (c *runCommand) Help() string {
	return strings.TrimSpace(`
Usage: tda run [-config FILE] [-plugin-dir DIR] [-log-level LEVEL]

  Runs every pipeline of the configuration until interrupted. On SIGINT or SIGTERM
  tda stops its sources, lets the batches in flight reach the sinks, commits the
  checkpoints and exits within 10 seconds; a second signal exits at once.

  Operators reach the running agent through its socket (data_dir/tda.sock): tda
  override, tda migrate, tda alerts, tda state. With an http block, tda also
  serves the control panel and its API (see docs/panel.md).

  Without -config, tda runs its embedded default (configs/agent.hcl): it tails the
  example logs in ./examples/logs, prints alerts and appends them to
  ./alerts/alerts.jsonl.

Flags:
  -config FILE      Config file, or a directory of *.hcl files.
  -plugin-dir DIR   Where the plugin binaries are (overrides agent.plugin_dir).
  -log-level LEVEL  trace, debug, info, warn or error (overrides agent.log_level).
`)
}

// agentGCPercent is the running agent's GOGC unless the environment sets one. Its heap is
// mostly batch buffers it recycles (sdk/host's pool), so a collection finds little to scan
// and happens seldom: collecting at 50 % growth instead of Go's 100 % keeps the peak of
// `tda run` tailing a fast file about 10 MB lower for the same CPU (1,000,000 lines, two
// cores). Plugin processes keep Go's default: the environment they inherit is unchanged.
const agentGCPercent = 35

func (c *runCommand) Run(args []string) int {
	fs := c.env.FlagSet("run")
	path := fs.String("config", "", "")
	pluginDir := fs.String("plugin-dir", "", "")
	level := fs.String("log-level", "", "")
	if ok, code := c.env.Parse(fs, args, c.Help); !ok {
		return code
	}
	if os.Getenv("GOGC") == "" {
		defer debug.SetGCPercent(debug.SetGCPercent(agentGCPercent))
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	steps := newStartupSteps()
	loaded, diags := loader.Load(ctx, *path, loader.Options{PluginDir: *pluginDir, Builtin: c.env.Builtin})
	// The checked copies of pinned plugins are released once nothing launches any more.
	defer loaded.Registry.Close()
	if c.env.Diagnostics(loaded.Config, diags) {
		return 1
	}
	cfg := loaded.Config
	if os.Getenv("GOMEMLIMIT") == "" {
		defer debug.SetMemoryLimit(debug.SetMemoryLimit(agentMemoryLimit(cfg)))
	}
	if *level == "" {
		*level = cfg.Agent.LogLevel
	}
	logger := c.env.Logger(*level, cfg.Agent.LogFormat)
	env := []string{"TDA_PLUGIN_LOG_LEVEL=" + *level}
	if cfg.Agent.AppVersion != "" && os.Getenv("TDA_APP_VERSION") == "" {
		env = append(env, "TDA_APP_VERSION="+cfg.Agent.AppVersion)
	}
	if f, ok := c.env.Stdout.(*os.File); ok && isatty.IsTerminal(f.Fd()) {
		env = append(env, sdk.StdoutTerminalEnv+"=1")
	}
	// The bundled plugins' instances run inside the agent unless bundled_plugins says
	// otherwise; a plugin process starts while the agent opens its state and control socket.
	launcher := &runtime.ProcessLauncher{Registry: loaded.Registry, Env: env, Stdout: c.env.Stdout,
		InAgent: cfg.Agent.BundledPlugins == config.BundledInAgent}
	steps.done("config")
	launcher.Prestart(cfg, logger)
	defer launcher.Close()
	store, err := state.Open(cfg.Agent.DataDir, state.Options{})
	if err != nil {
		c.env.Errorf("%v", err)
		return 1
	}
	defer store.Close()
	steps.done("state")
	setup, diags := control.Prepare(cfg, logger.Named("control"))
	if c.env.Diagnostics(cfg, diags) {
		return 1
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.Background(), StopTimeout)
		defer cancel()
		_ = setup.Close(closeCtx)
	}()
	agent := &control.RuntimeAgent{}
	letters := &control.LateLetters{}
	svc, err := control.NewService(setup, store, agent, letters, "socket", logger.Named("control"))
	if err != nil {
		c.env.Errorf("%v", err)
		return 1
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = svc.Close(closeCtx)
	}()
	rt, err := runtime.New(runtime.Options{
		Config: cfg, Logger: logger, Store: store, Live: true,
		Launcher: launcher,
		Observe:  svc.Observe,
	})
	if err != nil {
		c.env.Errorf("%v", err)
		return 1
	}
	agent.Bind(rt)
	letters.Bind(rt.DeadLetters())
	steps.done("control")
	signals := make(chan os.Signal, 2)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(signals)
	if err := rt.Start(ctx); err != nil {
		c.env.Errorf("%v", err)
		return 1
	}
	steps.done("pipelines")
	servers, err := control.Serve(control.ServeOptions{Ops: svc, Repairs: setup.Repairs(svc), Socket: control.SocketPath(cfg), HTTP: setup.HTTP,
		UI: panel.Handler(), Gatherers: prometheus.Gatherers{rt.Registry()}, Logger: logger.Named("control")})
	if err != nil {
		c.env.Errorf("%v", err)
		stopCtx, cancel := context.WithTimeout(context.Background(), StopTimeout)
		defer cancel()
		_ = rt.Stop(stopCtx)
		return 1
	}
	steps.done("serve")
	announceCtx, cancelAnnounce := context.WithTimeout(ctx, 30*time.Second)
	err = svc.AnnounceApprovals(announceCtx)
	cancelAnnounce()
	if err != nil {
		logger.Warn("could not announce the valid migration approvals to the pipelines", "error", err)
	}
	steps.done("approvals")
	// config: the config read, the plugins described, every block decoded; state: the
	// store opened (the shared plugin process starts meanwhile); control: the operations
	// and the runtime set up; pipelines: the plugin processes launched and handshaken, the
	// instances configured and started; serve: the control socket (and HTTP) listening.
	logger.Info("start-up", steps.fields()...)
	// Start-up is over: the pages of the binary only it used go back to the page cache.
	if n, err := startpages.Release(); err != nil {
		logger.Debug("could not give back the start-up pages of the binary", "error", err)
	} else {
		logger.Debug("gave back the start-up pages of the binary", "resident_bytes", n)
	}
	select {
	case sig := <-signals:
		logger.Info("stopping: draining in-flight batches", "signal", sig.String())
	case <-rt.SourcesEnded():
		logger.Info("every source has finished; stopping")
	}
	stopCtx, stopCancel := context.WithTimeout(context.Background(), StopTimeout)
	defer stopCancel()
	servers.Shutdown(stopCtx)
	stopped := make(chan error, 1)
	go func() { stopped <- rt.Stop(stopCtx) }()
	select {
	case err := <-stopped:
		if err != nil {
			logger.Error("stopped with errors; what was not committed is read again on the next start", "error", err)
			return 1
		}
		logger.Info("stopped cleanly")
		return 0
	case sig := <-signals:
		logger.Warn("second signal: exiting without draining", "signal", sig.String())
		return 130
	}
}
