// Package runtime runs tda's pipelines: it starts every plugin instance (sinks first, sources
// last), moves batches from sources through processors to sinks with bounded in-flight
// batches, commits checkpoints and processor snapshots together at barriers, restarts
// crashed plugins, and drains on stop (sources first, sinks last).
package runtime

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tda-dev/tda/agent/config"
	"github.com/tda-dev/tda/agent/state"
	"github.com/tda-dev/tda/sdk"
	"github.com/tda-dev/tda/sdk/host"
)

// Options configure a Runtime.
type Options struct {
	Config   *config.Config
	Launcher Launcher
	Logger   hclog.Logger
	// Store persists checkpoints, processor state, durable queues and delivered alerts. Nil
	// runs without persistence (tda replay).
	Store *state.Store
	// Live passes the wall clock to processors as their watermark and ticks them every
	// TickInterval; otherwise (replays) the events' own times rule.
	Live         bool
	TickInterval time.Duration
	// Pipelines limits the run to these pipelines (nil: all).
	Pipelines []string
	// Observe, when set, sees every alert and audit event a pipeline hands to its sinks (the
	// control panel keeps the system state from them). It must not block.
	Observe func(pipeline string, e sdk.Event)
	// ReplayHoldBytes bounds the bytes of input a stateful processor's stage holds for replay
	// (default 2 MiB): past it the processor's snapshot replaces the inputs held, and the
	// stage asks for a checkpoint ahead of the interval (at most one a second).
	ReplayHoldBytes int
	// ExitPollInterval is how often each instance's process is checked for an exit (default
	// 100ms).
	ExitPollInterval time.Duration
	// CheckpointStallAfter is how long a periodic commit waits for the sinks before the state
	// says the group's checkpoints are held back (default: ten checkpoint intervals, at
	// least 30s).
	CheckpointStallAfter time.Duration
}

// DefaultReplayHoldBytes bounds the input a stage holds for replay: past it a snapshot
// replaces the inputs, which bounds their memory and hands it back to the host for the next
// batches while it is still warm. Two of a fast source's batches (about 1 MiB each): a
// snapshot of the rules processor costs about a millisecond on the benchmark's workload,
// every input byte held costs its memory 1.35 times over (the collector's headroom at the
// agent's GOGC 35).
const DefaultReplayHoldBytes = 2 << 20

// Runtime runs a configuration's pipelines.
type Runtime struct {
	cfg      *config.Config
	launcher Launcher
	logger   hclog.Logger
	store    *state.Store
	live     bool
	tick     time.Duration
	// replayHold is Options.ReplayHoldBytes.
	replayHold int
	exitPoll   time.Duration
	stallAfter time.Duration
	plan       *Plan
	groups     []*group
	// commitFault, when set (tests), fails checkpoint writes with what it returns.
	commitFault atomic.Pointer[func() error]

	health  *Health
	metrics *metrics
	// letters is the dead-letter store (deadLetterStore makes it once).
	deliveryOnce sync.Once
	letters      *deadLetters
	metricsOnce  sync.Once
	delivery     *deliveryMetrics
	observe      func(pipeline string, e sdk.Event)

	sources   []*sourceRunner
	pipelines []*pipelineRunner
	sinks     []*sinkRunner
	instances []*instance

	dispatchMu sync.Mutex

	runCtx    context.Context
	cancelRun context.CancelFunc
	wg        sync.WaitGroup
	// loops (checkpoint and tick timers) end before the drain starts.
	loopsCtx    context.Context
	cancelLoops context.CancelFunc
	loopsWG     sync.WaitGroup
	started     bool
	stopOnce    sync.Once
	allEnded    chan struct{}
}

// New builds a runtime; nothing starts until Start.
func New(opts Options) (*Runtime, error) {
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	if opts.TickInterval == 0 {
		opts.TickInterval = time.Second
	}
	if opts.ReplayHoldBytes <= 0 {
		opts.ReplayHoldBytes = DefaultReplayHoldBytes
	}
	if opts.ExitPollInterval <= 0 {
		opts.ExitPollInterval = 100 * time.Millisecond
	}
	if opts.CheckpointStallAfter <= 0 && opts.Config != nil {
		opts.CheckpointStallAfter = max(10*opts.Config.Agent.CheckpointInterval, 30*time.Second)
	}
	rt := &Runtime{cfg: opts.Config, launcher: opts.Launcher, logger: opts.Logger, store: opts.Store,
		live: opts.Live, tick: opts.TickInterval, replayHold: opts.ReplayHoldBytes, exitPoll: opts.ExitPollInterval,
		stallAfter: opts.CheckpointStallAfter, health: newHealth(), metrics: newMetrics(),
		allEnded: make(chan struct{}), observe: opts.Observe}
	if err := rt.build(opts.Pipelines); err != nil {
		return nil, err
	}
	return rt, nil
}

func (rt *Runtime) build(only []string) error {
	cfg := rt.cfg
	plan, err := BuildPlan(cfg, only)
	if err != nil {
		return err
	}
	rt.plan = plan
	sinks := map[*config.Component]*sinkRunner{}
	sources := map[*config.Component]*sourceRunner{}
	var sinkFor func(c *config.Component) (*sinkRunner, error)
	sinkFor = func(c *config.Component) (*sinkRunner, error) {
		if k, ok := sinks[c]; ok {
			return k, nil
		}
		in, err := rt.newInstance(c)
		if err != nil {
			return nil, err
		}
		k := rt.newSinkRunner(in)
		sinks[c] = k
		rt.sinks = append(rt.sinks, k)
		rt.instances = append(rt.instances, in)
		if c.Sink.Fallback != nil {
			fc := cfg.Component(*c.Sink.Fallback)
			if fc == nil {
				return nil, fmt.Errorf("%s: fallback %s is not defined", c.Address(), c.Sink.Fallback.Address())
			}
			fb, err := sinkFor(fc)
			if err != nil {
				return nil, err
			}
			k.fallback = fb
		}
		return k, nil
	}
	for _, gp := range plan.Groups {
		rt.groups = append(rt.groups, &group{rt: rt, name: gp.Name, now: make(chan struct{}, 1)})
	}
	for _, pp := range plan.Pipelines {
		p := cfg.Pipeline(pp.Name)
		g := rt.groups[pp.Group]
		pr := &pipelineRunner{rt: rt, name: p.Name, epoch: newEpoch(), done: make(chan struct{}), group: g,
			flow: newFlow(pp.MaxInflightBatches, pp.MaxInflightBytes), in: make(chan item, pp.InputCapacity)}
		pr.flow.batchGauge = rt.metrics.inflightBatches.WithLabelValues(p.Name)
		pr.flow.byteGauge = rt.metrics.inflightBytes.WithLabelValues(p.Name)
		for _, r := range p.Through {
			c := cfg.Component(r)
			in, err := rt.newInstance(c)
			if err != nil {
				return err
			}
			rt.instances = append(rt.instances, in)
			pr.stages = append(pr.stages, &stage{inst: in, hold: rt.replayHold, group: g})
		}
		for _, r := range p.To {
			k, err := sinkFor(cfg.Component(r))
			if err != nil {
				return err
			}
			pr.sinks = append(pr.sinks, k)
		}
		for _, r := range p.From {
			c := cfg.Component(r)
			s, ok := sources[c]
			if !ok {
				in, err := rt.newInstance(c)
				if err != nil {
					return err
				}
				rt.instances = append(rt.instances, in)
				s = &sourceRunner{rt: rt, inst: in, short: c.ShortName(), latest: map[string][]byte{},
					done: make(chan struct{})}
				sources[c] = s
				rt.sources = append(rt.sources, s)
				g.sources = append(g.sources, s)
			}
			s.pipelines = append(s.pipelines, pr)
			pr.flow.sources = append(pr.flow.sources, s)
		}
		g.pipelines = append(g.pipelines, pr)
		rt.pipelines = append(rt.pipelines, pr)
	}
	for _, in := range rt.instances {
		rt.health.register(in.addr())
	}
	return nil
}

// Plan returns the plan the runtime runs.
func (rt *Runtime) Plan() *Plan { return rt.plan }

// Health returns the components' health.
func (rt *Runtime) Health() *Health { return rt.health }

// Registry returns the runtime's Prometheus registry.
func (rt *Runtime) Registry() *prometheus.Registry { return rt.metrics.registry }

// Start launches every instance downstream first (sinks, processors, sources), restores state
// from the store and starts moving data.
func (rt *Runtime) Start(ctx context.Context) error {
	rt.runCtx, rt.cancelRun = context.WithCancel(context.Background())
	rt.loopsCtx, rt.cancelLoops = context.WithCancel(rt.runCtx)
	rt.started = true
	fail := func(err error) error {
		rt.killAll()
		rt.cancelRun()
		return err
	}
	if err := rt.startInstances(ctx); err != nil {
		return fail(err)
	}
	for _, k := range rt.sinks {
		if err := k.delivered.load(); err != nil {
			return fail(fmt.Errorf("load delivered alerts of %s: %w", k.addr(), err))
		}
		if err := k.load(); err != nil {
			return fail(err)
		}
	}
	for _, p := range rt.pipelines {
		for _, st := range p.stages {
			if err := rt.restoreStage(ctx, p, st); err != nil {
				return fail(err)
			}
		}
	}
	for _, s := range rt.sources {
		if err := rt.loadCheckpoints(s); err != nil {
			return fail(err)
		}
	}
	for _, k := range rt.sinks {
		rt.wg.Add(1)
		go func(k *sinkRunner) {
			defer rt.wg.Done()
			k.run(rt.runCtx)
		}(k)
	}
	for _, p := range rt.pipelines {
		go p.run(rt.runCtx)
		if rt.live && len(p.stages) > 0 {
			rt.loopsWG.Add(1)
			go func(p *pipelineRunner) {
				defer rt.loopsWG.Done()
				rt.tickLoop(p)
			}(p)
		}
	}
	for _, s := range rt.sources {
		go s.run(rt.runCtx)
	}
	for _, in := range rt.instances {
		rt.wg.Add(1)
		go func(in *instance) {
			defer rt.wg.Done()
			in.watch(rt.runCtx, rt.exitPoll)
		}(in)
	}
	go rt.watchSources()
	if rt.store != nil {
		for _, g := range rt.groups {
			rt.loopsWG.Add(1)
			go func(g *group) {
				defer rt.loopsWG.Done()
				g.loop(rt.loopsCtx, rt.cfg.Agent.CheckpointInterval, rt.stallAfter)
			}(g)
		}
	}
	rt.logger.Info("pipelines running", "pipelines", len(rt.pipelines), "sources", len(rt.sources),
		"sinks", len(rt.sinks))
	return nil
}

func (rt *Runtime) snapshotPath(p *pipelineRunner) []string {
	return []string{"processors", p.name}
}

func (rt *Runtime) restoreStage(ctx context.Context, p *pipelineRunner, st *stage) error {
	if rt.store == nil || !st.inst.isStateful() {
		return nil
	}
	var snap []byte
	if err := rt.store.View(func(tx *state.Tx) error {
		var err error
		snap, err = tx.Get(rt.snapshotPath(p), []byte(st.inst.addr()))
		return err
	}); err != nil {
		return fmt.Errorf("read the state of %s: %w", st.inst.addr(), err)
	}
	if len(snap) == 0 {
		return nil
	}
	if err := st.inst.processor().Restore(ctx, snap); err != nil {
		st.inst.logger.Error("restoring the saved state failed; starting empty", "error", err)
		return nil
	}
	st.base, st.stored = snap, snap
	st.inst.logger.Info("state restored", "bytes", len(snap))
	return nil
}

func (rt *Runtime) checkpointPath(s *sourceRunner) []string {
	return []string{"checkpoints", s.addr()}
}

func (rt *Runtime) loadCheckpoints(s *sourceRunner) error {
	if rt.store == nil {
		return nil
	}
	return rt.store.View(func(tx *state.Tx) error {
		return tx.ForEach(rt.checkpointPath(s), func(k, v []byte) error {
			s.latest[string(k)] = append([]byte(nil), v...)
			return nil
		})
	})
}

// tickLoop sends the wall clock through a pipeline every tick, so processors can close
// windows and expire overrides while no line arrives.
func (rt *Runtime) tickLoop(p *pipelineRunner) {
	t := time.NewTicker(rt.tick)
	defer t.Stop()
	for {
		select {
		case <-rt.loopsCtx.Done():
			return
		case now := <-t.C:
			rt.dispatchMu.Lock()
			// At most maxQueuedTicks wait in the input, so ticks never take the room of
			// batches, barriers and injections: a busy pipeline gets the time with its next
			// batch anyway.
			if p.ticks.Load() < maxQueuedTicks {
				p.ticks.Add(1)
				p.in <- item{kind: itemTick, wm: sdk.Watermark{Time: now}}
			}
			rt.dispatchMu.Unlock()
		}
	}
}

// watchSources closes allEnded once every source has finished on its own (replays).
func (rt *Runtime) watchSources() {
	for _, s := range rt.sources {
		select {
		case <-s.done:
		case <-rt.runCtx.Done():
			return
		}
	}
	for _, s := range rt.sources {
		if !s.hasEnded() {
			return
		}
	}
	close(rt.allEnded)
}

// SourcesEnded is closed when every source has finished by itself (e.g. a file source with
// follow = false reached the end of its files).
func (rt *Runtime) SourcesEnded() <-chan struct{} { return rt.allEnded }

// Inject sends events into a pipeline's first processor as if a source had emitted them
// (e.g. an operator's override) and waits until they were handed to the sinks.
func (rt *Runtime) Inject(ctx context.Context, pipeline string, events []sdk.Event) error {
	var target *pipelineRunner
	for _, p := range rt.pipelines {
		if p.name == pipeline {
			target = p
		}
	}
	if target == nil {
		return fmt.Errorf("no running pipeline named %q", pipeline)
	}
	done := make(chan struct{})
	rt.dispatchMu.Lock()
	select {
	case target.in <- item{kind: itemInject, batch: host.NewBatch(events), done: done}:
	case <-ctx.Done():
		rt.dispatchMu.Unlock()
		return ctx.Err()
	}
	rt.dispatchMu.Unlock()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Pipelines returns the names of the running pipelines and their processor addresses.
func (rt *Runtime) Pipelines() map[string][]string {
	out := map[string][]string{}
	for _, p := range rt.pipelines {
		var procs []string
		for _, st := range p.stages {
			procs = append(procs, st.inst.addr())
		}
		out[p.name] = procs
	}
	return out
}

// Flush runs a final watermark through every pipeline (end of a replay) and waits until the
// outputs were handed to the sinks.
func (rt *Runtime) Flush(ctx context.Context) error {
	for _, p := range rt.pipelines {
		done := make(chan struct{})
		rt.dispatchMu.Lock()
		p.in <- item{kind: itemTick, wm: sdk.Watermark{Final: true}, done: done}
		rt.dispatchMu.Unlock()
		select {
		case <-done:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// Stop drains: sources stop first and their last batches flow through; a final checkpoint is
// committed once the sinks accepted everything; then processors and sinks are closed and
// every plugin process ends. ctx bounds the whole drain.
func (rt *Runtime) Stop(ctx context.Context) error {
	if !rt.started {
		return nil
	}
	var err error
	rt.stopOnce.Do(func() { err = rt.stop(ctx) })
	return err
}

func (rt *Runtime) stop(ctx context.Context) error {
	var errs []error
	rt.cancelLoops()
	rt.loopsWG.Wait()
	for _, s := range rt.sources {
		s.stop()
	}
	for _, s := range rt.sources {
		select {
		case <-s.done:
		case <-ctx.Done():
			errs = append(errs, fmt.Errorf("%s did not stop in time", s.addr()))
		}
	}
	// The final checkpoint of every group, side by side: a group whose sink does not accept
	// in time commits nothing past what its sinks accepted; the others commit everything.
	if err := rt.Commit(ctx); err != nil {
		errs = append(errs, fmt.Errorf("final checkpoint: %w", err))
	}
	rt.dispatchMu.Lock()
	for _, p := range rt.pipelines {
		close(p.in)
	}
	rt.dispatchMu.Unlock()
	for _, p := range rt.pipelines {
		select {
		case <-p.done:
		case <-ctx.Done():
		}
	}
	for _, k := range rt.sinks {
		k.stop()
	}
	sinksDone := make(chan struct{})
	go func() {
		for _, k := range rt.sinks {
			<-k.done
		}
		close(sinksDone)
	}()
	select {
	case <-sinksDone:
	case <-ctx.Done():
		errs = append(errs, errors.New("sinks did not finish their queues in time"))
	}
	rt.cancelRun()
	rt.wg.Wait()
	closeCtx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, s := range rt.sources {
		_ = s.inst.source().Close(closeCtx)
	}
	for _, p := range rt.pipelines {
		for _, st := range p.stages {
			_ = st.inst.processor().Close(closeCtx)
		}
	}
	for _, k := range rt.sinks {
		if err := k.inst.sink().Close(closeCtx); err != nil {
			if p := k.inst.current(); p != nil && p.Exited() {
				// The sink's process is gone (an idle sink is restarted only when next
				// called): it holds nothing to close, and every write it acknowledged is kept.
				k.inst.logger.Info("sink not closed: its plugin process had exited", "error", err)
				continue
			}
			errs = append(errs, fmt.Errorf("close %s: %w", k.addr(), err))
		}
	}
	rt.killAll()
	return errors.Join(errs...)
}

// startInstances launches and configures every plugin instance at once: each is a process
// start and a TLS handshake, and nothing flows between them before the runners start,
// downstream first. The error reported is that of the first failed instance in build order.
func (rt *Runtime) startInstances(ctx context.Context) error {
	errs := make([]error, len(rt.instances))
	var wg sync.WaitGroup
	for i, in := range rt.instances {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = in.start(ctx)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func (rt *Runtime) killAll() {
	var wg sync.WaitGroup
	for _, in := range rt.instances {
		wg.Add(1)
		go func(in *instance) {
			defer wg.Done()
			in.kill()
		}(in)
	}
	wg.Wait()
}
