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
	// ReplayHoldBytes is how many bytes of input a stateful processor's stage holds for
	// replay before it asks for a checkpoint ahead of the interval (default 32 MiB).
	ReplayHoldBytes int
}

// DefaultReplayHoldBytes bounds the input a stage holds between checkpoints: a commit lets
// the held batches go, which bounds their memory and hands it back to the host for the next
// batches while it is still warm.
const DefaultReplayHoldBytes = 32 << 20

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
	commitMu   sync.Mutex
	// commitNow asks the commit loop for a checkpoint before the interval is up.
	commitNow chan struct{}

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
	rt := &Runtime{cfg: opts.Config, launcher: opts.Launcher, logger: opts.Logger, store: opts.Store,
		live: opts.Live, tick: opts.TickInterval, replayHold: opts.ReplayHoldBytes, health: newHealth(), metrics: newMetrics(),
		allEnded: make(chan struct{}), observe: opts.Observe, commitNow: make(chan struct{}, 1)}
	if err := rt.build(opts.Pipelines); err != nil {
		return nil, err
	}
	return rt, nil
}

func (rt *Runtime) build(only []string) error {
	cfg := rt.cfg
	want := map[string]bool{}
	for _, n := range only {
		if cfg.Pipeline(n) == nil {
			return fmt.Errorf("no pipeline named %q", n)
		}
		want[n] = true
	}
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
	for _, p := range cfg.Pipelines {
		if len(want) > 0 && !want[p.Name] {
			continue
		}
		pr := &pipelineRunner{rt: rt, name: p.Name, epoch: newEpoch(), done: make(chan struct{})}
		for _, r := range p.Through {
			c := cfg.Component(r)
			in, err := rt.newInstance(c)
			if err != nil {
				return err
			}
			rt.instances = append(rt.instances, in)
			pr.stages = append(pr.stages, &stage{inst: in})
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
				s = &sourceRunner{rt: rt, inst: in, short: c.ShortName(), maxInflight: cfg.Agent.MaxInflight,
					latest: map[string][]byte{}, done: make(chan struct{})}
				if s.maxInflight < 1 {
					s.maxInflight = config.DefaultMaxInflight
				}
				sources[c] = s
				rt.sources = append(rt.sources, s)
			}
			s.pipelines = append(s.pipelines, pr)
		}
		rt.pipelines = append(rt.pipelines, pr)
	}
	// Size pipeline inputs so a dispatch never blocks: every source has at most maxInflight
	// batches outstanding; ticks, barriers and injections add a few.
	for _, pr := range rt.pipelines {
		capacity := 64
		for _, s := range rt.sources {
			for _, sp := range s.pipelines {
				if sp == pr {
					capacity += s.maxInflight
				}
			}
		}
		pr.in = make(chan item, capacity)
	}
	for _, in := range rt.instances {
		rt.health.register(in.addr())
	}
	return nil
}

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
	go rt.watchSources()
	if rt.store != nil {
		rt.loopsWG.Add(1)
		go func() {
			defer rt.loopsWG.Done()
			rt.commitLoop()
		}()
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
	st.committed = snap
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
			select {
			case p.in <- item{kind: itemTick, wm: sdk.Watermark{Time: now}}:
			default: // the pipeline is busy; the next batch carries the time anyway
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

// barrier collects each pipeline's mark for one checkpoint.
type barrier struct {
	marks chan pipelineMark
}

type pipelineMark struct {
	pipeline *pipelineRunner
	stages   []stageMark
	drained  chan struct{}
	err      error
}

type stageMark struct {
	stage    *stage
	snapshot []byte
	mark     int
}

func (rt *Runtime) commitLoop() {
	t := time.NewTicker(rt.cfg.Agent.CheckpointInterval)
	defer t.Stop()
	for {
		select {
		case <-rt.loopsCtx.Done():
			return
		case <-t.C:
		case <-rt.commitNow:
			t.Reset(rt.cfg.Agent.CheckpointInterval)
		}
		if err := rt.Commit(rt.loopsCtx); err != nil && !errors.Is(err, context.Canceled) {
			rt.logger.Error("checkpoint failed; the next one will retry", "error", err)
		}
	}
}

// commitSoon asks for a checkpoint ahead of the interval; a request made while one is
// pending is the same request.
func (rt *Runtime) commitSoon() {
	select {
	case rt.commitNow <- struct{}{}:
	default:
	}
}

// Commit marks every pipeline, waits until everything before the mark is accepted by the
// sinks, and stores the processors' snapshots and the sources' checkpoints in one
// transaction.
func (rt *Runtime) Commit(ctx context.Context) error {
	if rt.store == nil {
		return nil
	}
	rt.commitMu.Lock()
	defer rt.commitMu.Unlock()
	start := time.Now()
	b := &barrier{marks: make(chan pipelineMark, len(rt.pipelines))}
	positions := make([]uint64, len(rt.sources))
	rt.dispatchMu.Lock()
	for i, s := range rt.sources {
		positions[i] = s.position()
	}
	for _, p := range rt.pipelines {
		p.in <- item{kind: itemBarrier, barrier: b}
	}
	rt.dispatchMu.Unlock()

	marks := make([]pipelineMark, 0, len(rt.pipelines))
	for range rt.pipelines {
		select {
		case m := <-b.marks:
			marks = append(marks, m)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	for _, m := range marks {
		select {
		case <-m.drained:
		case <-ctx.Done():
			return ctx.Err()
		}
		if m.err != nil {
			return fmt.Errorf("pipeline %s: %w", m.pipeline.name, m.err)
		}
	}
	cps := make([]map[string]sdk.Checkpoint, len(rt.sources))
	for i, s := range rt.sources {
		cps[i] = s.committable(positions[i])
	}
	err := rt.store.Update(func(tx *state.Tx) error {
		for _, m := range marks {
			for _, sm := range m.stages {
				if err := tx.Put(rt.snapshotPath(m.pipeline), []byte(sm.stage.inst.addr()), sm.snapshot); err != nil {
					return err
				}
			}
		}
		for i, s := range rt.sources {
			for key, c := range cps[i] {
				var err error
				if c.Delete {
					err = tx.Delete(rt.checkpointPath(s), []byte(key))
				} else {
					err = tx.Put(rt.checkpointPath(s), []byte(key), c.Value)
				}
				if err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("write checkpoint: %w", err)
	}
	for _, m := range marks {
		for _, sm := range m.stages {
			sm.stage.commit(sm.snapshot, sm.mark)
		}
	}
	for i, s := range rt.sources {
		s.committed(positions[i])
	}
	rt.metrics.commits.Inc()
	rt.metrics.commitSeconds.Observe(time.Since(start).Seconds())
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
