package runtime

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tda-dev/tda/agent/config"
	"github.com/tda-dev/tda/sdk"
	"github.com/tda-dev/tda/sdk/host"
)

// Plugin is one running component instance: a child process or an in-process component.
type Plugin interface {
	Source() host.Source
	Processor() host.Processor
	Sink() host.Sink
	// Exited reports whether the instance's process has exited.
	Exited() bool
	// Kill stops the instance.
	Kill()
	// Pid is the process id (0 in-process).
	Pid() int
}

// releaser is a Plugin that can end its instance without stopping a process other
// instances share (see processPlugin); release falls back to Kill for the others.
type releaser interface{ Release() }

// release ends the instance p runs: the agent stops, or the instance failed to start. A
// failed process is stopped with Kill instead.
func release(p Plugin) {
	if r, ok := p.(releaser); ok {
		r.Release()
		return
	}
	p.Kill()
}

// Launcher starts the instance of a component.
type Launcher interface {
	Launch(ctx context.Context, c *config.Component, logger hclog.Logger) (Plugin, error)
	// Describe returns the description of a component (its spec, accepted kinds, queue).
	Describe(c *config.Component) (sdk.ComponentDescription, bool)
}

// instance supervises one component instance: it starts, configures and, after a crash,
// restarts it with backoff.
type instance struct {
	comp     *config.Component
	desc     sdk.ComponentDescription
	launcher Launcher
	conf     host.Configuration
	logger   hclog.Logger
	rt       *Runtime

	// callTimeout bounds each call to the plugin (0: none); see callContext.
	callTimeout time.Duration

	mu       sync.Mutex
	plugin   Plugin
	stateful bool
	// watchesCommits: the source asked for its committed checkpoints (sdk.CommitWatcher).
	watchesCommits bool
	restarts       int
	// streak counts restarts since the plugin last served a call well; it sets the backoff
	// before the next start, so a plugin that keeps dying restarts ever more slowly.
	streak    int
	startedAt time.Time
}

// maxAttempts is how often one batch may fail, crash or hang the plugin (max_attempts).
func (in *instance) maxAttempts() int {
	if in.comp.MaxAttempts > 0 {
		return in.comp.MaxAttempts
	}
	return config.DefaultMaxAttempts
}

// succeeded tells the supervisor the plugin served a call: the crash streak ends.
func (in *instance) succeeded() {
	in.mu.Lock()
	in.streak = 0
	in.mu.Unlock()
}

func (rt *Runtime) newInstance(c *config.Component) (*instance, error) {
	desc, ok := rt.launcher.Describe(c)
	if !ok {
		return nil, fmt.Errorf("no plugin offers %s %q; run `tda plugins` to see what is installed", c.Kind, c.Type)
	}
	dataDir := ""
	if rt.cfg.Agent.DataDir != "" {
		dataDir = rt.cfg.InstanceDataDir(c)
	}
	return &instance{
		comp: c, desc: desc, launcher: rt.launcher, rt: rt,
		logger: rt.logger.Named(c.Address()),
		conf: host.Configuration{Component: c.Type, Instance: c.Address(), Config: c.Config,
			DataDir: dataDir},
		// The component block's call_timeout: callContext applies it to every call.
		callTimeout: callTimeoutOf(c),
	}, nil
}

// callTimeoutOf is a component's call_timeout, or the default.
func callTimeoutOf(c *config.Component) time.Duration {
	if c.CallTimeout > 0 {
		return c.CallTimeout
	}
	return config.DefaultCallTimeout
}

func (in *instance) addr() string { return in.comp.Address() }

// start launches and configures the instance.
func (in *instance) start(ctx context.Context) error {
	p, err := in.launcher.Launch(ctx, in.comp, in.logger)
	if err != nil {
		return fmt.Errorf("start %s: %w", in.addr(), err)
	}
	var res host.Configured
	callCtx, cancel := in.callContext(ctx)
	switch in.comp.Kind {
	case sdk.KindSource:
		res, err = p.Source().Configure(callCtx, in.conf)
	case sdk.KindProcessor:
		res, err = p.Processor().Configure(callCtx, in.conf)
	case sdk.KindSink:
		res, err = p.Sink().Configure(callCtx, in.conf)
	}
	cancel()
	if err == nil && res.Diagnostics.HasErrors() {
		err = res.Diagnostics.Err()
	}
	if err != nil {
		if answered(ctx, err) {
			// The plugin refused the config: the instance ends, the process lives on for the
			// others that share it.
			release(p)
		} else {
			// Hung or gone: no other instance can use that process either.
			p.Kill()
		}
		return fmt.Errorf("configure %s: %w", in.addr(), err)
	}
	for _, d := range res.Diagnostics {
		in.logger.Warn("config warning", "warning", d.Error())
	}
	in.mu.Lock()
	in.plugin = p
	in.stateful = res.Stateful
	in.watchesCommits = res.WatchesCommits
	in.startedAt = time.Now()
	in.mu.Unlock()
	in.rt.health.setPid(in.addr(), p.Pid())
	return nil
}

func (in *instance) current() Plugin {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.plugin
}

func (in *instance) source() host.Source       { return in.current().Source() }
func (in *instance) processor() host.Processor { return in.current().Processor() }
func (in *instance) sink() host.Sink           { return in.current().Sink() }

// watchesCommitted reports whether the source wants its committed checkpoints
// (sdk.CommitWatcher).
func (in *instance) watchesCommitted() bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.watchesCommits
}

func (in *instance) isStateful() bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.stateful
}

// callContext is the one place a deadline applies to a call to the plugin: every processor
// and source call of the runtime goes through it. A call past it is a hung plugin, which
// recover restarts (see crashed).
func (in *instance) callContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if in.callTimeout <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, in.callTimeout)
}

// answered tells whether err is the plugin's own answer to a call (a refused config, a
// failed start), not a call that hung or a connection that broke.
func answered(ctx context.Context, err error) bool {
	if hung(ctx, err) || ctx.Err() != nil {
		return false
	}
	st, ok := status.FromError(err)
	if !ok {
		// Diagnostics the plugin returned, or an error of the host itself.
		return !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled)
	}
	switch st.Code() {
	case codes.Unavailable, codes.DeadlineExceeded, codes.Canceled, codes.Unknown:
		return false
	}
	return true
}

// hung tells whether err is a call that ran past its deadline while the caller's own context
// was still live.
func hung(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	st, ok := status.FromError(err)
	if !ok {
		st, ok = status.FromError(errors.Unwrap(err))
	}
	return ok && st.Code() == codes.DeadlineExceeded
}

// watch reports at once, idle or not, that the instance's process exited: the health says
// so until a restart (on the next call to the plugin) brings it back. It returns when ctx
// ends.
func (in *instance) watch(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		in.mu.Lock()
		p := in.plugin
		// Under in.mu: a restart swaps the plugin under the same lock, so an exit seen here is
		// the current plugin's, never one the restart already replaced.
		if p != nil && p.Exited() {
			in.rt.health.setProcess(in.addr(), false, fmt.Sprintf(
				"plugin process %d exited; it is restarted when next called (see the agent log for its last words)", p.Pid()))
		}
		in.mu.Unlock()
	}
}

// crashed tells whether err means the plugin process is gone, unreachable or hung.
func (in *instance) crashed(ctx context.Context, err error) bool {
	p := in.current()
	if p == nil {
		return true
	}
	if p.Exited() {
		return true
	}
	if sdk.IsPanic(err) {
		// The plugin recovered a panic: it is alive, the call failed.
		return false
	}
	if hung(ctx, err) {
		in.rt.deliveryMetrics().hung.WithLabelValues(in.addr()).Inc()
		in.logger.Error("plugin call ran past its deadline; the plugin is hung and is restarted", "error", err,
			"call_timeout", in.callTimeout)
		return true
	}
	var te *host.TransportError
	unreachable := errors.As(err, &te)
	if st, ok := status.FromError(errors.Unwrap(err)); ok && st.Code() == codes.Unavailable {
		unreachable = true
	}
	if st, ok := status.FromError(err); ok && st.Code() == codes.Unavailable {
		unreachable = true
	}
	if !unreachable {
		return false
	}
	// The connection broke; give the process a moment to be reaped.
	for i := 0; i < 20 && !p.Exited(); i++ {
		time.Sleep(50 * time.Millisecond)
	}
	return true
}

// recover restarts the instance when err shows it crashed. It reports whether it restarted;
// false with a nil error means the plugin is alive and err is its own answer.
func (in *instance) recover(ctx context.Context, err error) (bool, error) {
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	if !in.crashed(ctx, err) {
		return false, nil
	}
	return true, in.restart(ctx, err)
}

// restartHung kills a plugin that did not answer within call_timeout and starts it again.
func (in *instance) restartHung(ctx context.Context, cause error) error {
	in.rt.deliveryMetrics().hung.WithLabelValues(in.addr()).Inc()
	in.logger.Error("plugin did not answer within call_timeout; killing and restarting it",
		"call_timeout", in.callTimeout, "error", cause)
	// A hung process may be stopped (SIGSTOP) or stuck in the kernel, and a graceful kill
	// waits for it to answer: it gets SIGKILL first, which even a stopped process obeys.
	if p := in.current(); p != nil {
		if pid := p.Pid(); pid > 0 {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		} else {
			// Inside the agent a goroutine cannot be killed: the stuck call is abandoned, and
			// the instance it holds is closed when it returns (see host.DirectSource).
			return in.restart(ctx, fmt.Errorf("hung: no answer within call_timeout %s; it runs inside the agent, "+
				"where the stuck call is abandoned, not killed: give the block isolate = true if it may hang", in.callTimeout))
		}
	}
	return in.restart(ctx, fmt.Errorf("hung: no answer within call_timeout %s", in.callTimeout))
}

// Crash-loop backoff: the first restart waits about restartBase, each further one without a
// call served in between twice as long, up to restartMax. A plugin that ran restartCalm
// since its last start begins a new streak.
const (
	restartBase = 100 * time.Millisecond
	restartMax  = 30 * time.Second
	restartCalm = time.Minute
)

// restart kills the instance and starts it again, with backoff, until it runs or ctx ends.
func (in *instance) restart(ctx context.Context, cause error) error {
	in.mu.Lock()
	if time.Since(in.startedAt) >= restartCalm {
		in.streak = 0
	}
	in.streak++
	streak := in.streak
	in.mu.Unlock()
	in.rt.health.setProcess(in.addr(), false, fmt.Sprintf("plugin restarting after: %v", cause))
	in.logger.Error("plugin failed; restarting it", "error", cause, "pid", in.current().Pid(), "crash_streak", streak)
	for attempt := streak; ; attempt++ {
		if p := in.current(); p != nil {
			p.Kill()
		}
		if err := sleepCtx(ctx, backoff(attempt, restartBase, restartMax)); err != nil {
			return err
		}
		err := in.start(ctx)
		if err != nil {
			// A restart that still fails stays failing, with the newest reason.
			in.rt.health.setProcess(in.addr(), false, fmt.Sprintf(
				"plugin restarting (attempt %d failed: %v); check the plugin's log and binary", attempt, err))
		}
		if err == nil {
			in.mu.Lock()
			in.restarts++
			n := in.restarts
			in.mu.Unlock()
			in.rt.metrics.restarts.WithLabelValues(in.addr()).Inc()
			in.rt.health.restarted(in.addr(), n)
			in.rt.health.setProcess(in.addr(), true, "")
			in.logger.Info("plugin restarted", "restarts", n, "pid", in.current().Pid())
			return nil
		}
		in.logger.Error("restarting the plugin failed; trying again", "attempt", attempt, "error", err)
	}
}

// kill ends the instance when the agent stops (its process stops unless other instances
// still share it).
func (in *instance) kill() {
	if p := in.current(); p != nil {
		release(p)
	}
}

// backoff returns an exponential delay with full jitter between base and max.
func backoff(attempt int, base, max time.Duration) time.Duration {
	d := base
	for i := 1; i < attempt && d < max; i++ {
		d *= 2
	}
	if d > max {
		d = max
	}
	// Jitter in [d/2, d].
	return d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
