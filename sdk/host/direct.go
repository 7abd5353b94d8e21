package host

import (
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/tda-dev/tda/sdk"
)

// Direct* run components in the host's own process, without RPC: the agent runs its bundled
// components this way, and tests and benchmarks use it to measure what the protocol costs.
// Each Direct* value holds one instance.
//
// What a plugin process gives an instance, a direct one keeps as far as a process can:
//   - calls are one at a time, as over gRPC;
//   - a panic in a call, in a source's Run or in Configure fails that call (or ends the
//     source with an error), as the SDK answers a panic in a plugin process, and never takes
//     the host down;
//   - a call whose context ends (call_timeout) returns the context's error at once, also
//     when the component ignores its context. A goroutine cannot be killed as a process can:
//     the hung call is left to return on its own, and when it does the instance, which the
//     host has killed and replaced meanwhile, is closed (see Kill).
type direct struct {
	comp   sdk.Component
	logger hclog.Logger
	env    DirectEnv
	// mu keeps calls one at a time; a hung call holds it until it returns.
	mu       sync.Mutex
	inst     sdk.Instance
	instance string
	// killed is set by Kill: the instance is replaced and must be closed by whoever holds mu
	// last (see Kill and unlock).
	killed    atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

// DirectEnv is what a direct instance is given in place of a plugin process's standard
// output and environment (see sdk.Resources.Stdout and Getenv). Zero values mean the host's
// own.
type DirectEnv struct {
	Stdout io.Writer
	Getenv func(key string) string
}

// directCloseTimeout bounds the Close of an instance that was killed.
const directCloseTimeout = 5 * time.Second

// unlock releases mu and closes the instance if it was killed while a call held mu.
func (d *direct) unlock() {
	d.mu.Unlock()
	if d.killed.Load() && d.mu.TryLock() {
		defer d.mu.Unlock()
		d.closeKilledLocked()
	}
}

// Kill ends an instance the host gives up on (it crashed, hung, or the host stops): it is
// closed now, or, when a call still holds it, as soon as that call returns. Kill does not
// wait for a hung call.
func (d *direct) Kill() {
	d.killed.Store(true)
	if d.mu.TryLock() {
		defer d.mu.Unlock()
		d.closeKilledLocked()
	}
}

// closeKilledLocked closes a killed instance, bounded by directCloseTimeout; mu is held.
func (d *direct) closeKilledLocked() {
	ctx, cancel := context.WithTimeout(context.Background(), directCloseTimeout)
	defer cancel()
	d.closeLocked(ctx)
}

// closeLocked closes the instance once, whoever asks first; mu is held.
func (d *direct) closeLocked(ctx context.Context) error {
	d.closeOnce.Do(func() { d.closeErr = d.closeInstance(ctx) })
	return d.closeErr
}

// closeInstance closes the component's instance; mu is held.
func (d *direct) closeInstance(ctx context.Context) (err error) {
	defer func() {
		if r := recover(); r != nil {
			d.logger.Error("component panicked", "during", "close", "panic", r)
			err = sdk.NewPanicError("close", r)
		}
	}()
	if v := d.inst.Value(); v != nil {
		if c, ok := v.(sdk.Closer); ok {
			return c.Close(ctx)
		}
	}
	return nil
}

// call runs f under mu and returns its result, or ctx's error as soon as ctx ends: a call
// that does not return by then is abandoned (it keeps mu until it returns; see Kill). A
// panic in f is its error. Without a deadline or cancel on ctx, f runs on the caller's
// goroutine.
func call[T any](ctx context.Context, d *direct, what string, f func() (T, error)) (T, error) {
	var zero T
	run := func() (v T, err error) {
		defer func() {
			if r := recover(); r != nil {
				d.logger.Error("component panicked", "during", what, "panic", r)
				v, err = zero, sdk.NewPanicError(what, r)
			}
		}()
		return f()
	}
	if ctx.Done() == nil {
		d.mu.Lock()
		defer d.unlock()
		return run()
	}
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		d.mu.Lock()
		defer d.unlock()
		if ctx.Err() != nil {
			done <- result{zero, ctx.Err()}
			return
		}
		v, err := run()
		done <- result{v, err}
	}()
	select {
	case r := <-done:
		return r.v, r.err
	case <-ctx.Done():
		return zero, fmt.Errorf("%s did not return: %w", what, ctx.Err())
	}
}

func (d *direct) configure(ctx context.Context, c Configuration) (Configured, error) {
	if c.Component != "" && c.Component != d.comp.Name {
		return Configured{}, fmt.Errorf("component %q is not %q", c.Component, d.comp.Name)
	}
	return call(ctx, d, "configure", func() (Configured, error) {
		// The logger comes named after the instance from the host.
		res := sdk.Resources{Logger: d.logger, Instance: c.Instance, DataDir: c.DataDir,
			Stdout: d.env.Stdout, Getenv: d.env.Getenv}
		inst, diags := d.comp.NewInstance(c.Config, res)
		if diags.HasErrors() || c.ValidateOnly {
			return Configured{Diagnostics: diags}, nil
		}
		d.inst, d.instance = inst, c.Instance
		if st, ok := inst.Value().(sdk.Starter); ok {
			if err := st.Start(ctx); err != nil {
				return Configured{Diagnostics: diags}, fmt.Errorf("start %s: %w", c.Instance, err)
			}
		}
		_, stateful := inst.Value().(sdk.Stateful)
		_, watches := inst.Value().(sdk.CommitWatcher)
		return Configured{Diagnostics: diags, Stateful: stateful, WatchesCommits: watches && inst.Source != nil}, nil
	})
}

func (d *direct) close(ctx context.Context) error {
	_, err := call(ctx, d, "close", func() (struct{}, error) {
		return struct{}{}, d.closeLocked(ctx)
	})
	return err
}

func newDirect(comp sdk.Component, logger hclog.Logger, env DirectEnv) *direct {
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	return &direct{comp: comp, logger: logger, env: env}
}

// DirectSource runs a source component in-process.
func DirectSource(comp sdk.Component, logger hclog.Logger) Source {
	return DirectSourceWith(comp, logger, DirectEnv{})
}

// DirectSourceWith is DirectSource with the instance's standard output and environment.
func DirectSourceWith(comp sdk.Component, logger hclog.Logger, env DirectEnv) Source {
	return &directSource{direct: newDirect(comp, logger, env)}
}

type directSource struct {
	*direct
	// stopRun stops the running Read's source (nil before Read); guarded by direct.mu.
	stopRun context.CancelFunc
}

// Kill stops the source's Run and ends the instance (see direct.Kill).
func (s *directSource) Kill() {
	s.mu.Lock()
	stop := s.stopRun
	s.mu.Unlock()
	if stop != nil {
		stop()
	}
	s.direct.Kill()
}

func (s *directSource) Configure(ctx context.Context, c Configuration) (Configured, error) {
	return s.configure(ctx, c)
}

func (s *directSource) Close(ctx context.Context) error { return s.close(ctx) }

// Read starts the source's Run on a goroutine of its own, which ends when Run returns (Stop
// or ctx cancels it). Run holds no call lock: Committed and Close reach the source while it
// runs, as over gRPC.
func (s *directSource) Read(ctx context.Context, checkpoints map[string][]byte, credits int) (Reader, error) {
	runCtx, cancel := context.WithCancel(ctx)
	s.mu.Lock()
	src := s.inst.Source
	instance := s.instance
	if src != nil {
		s.stopRun = cancel
	}
	s.mu.Unlock()
	if src == nil {
		cancel()
		return nil, fmt.Errorf("source is not configured")
	}
	r := &directReader{ch: make(chan Message, 4), cancel: cancel, done: make(chan struct{}), ctx: runCtx}
	r.watcher, _ = src.(sdk.CommitWatcher)
	cps := make(map[string][]byte, len(checkpoints))
	for k, v := range checkpoints {
		cps[k] = v
	}
	r.out = sdk.NewCreditOutput(credits, cps,
		func(events []sdk.Event, c []sdk.Checkpoint) error {
			select {
			case r.ch <- Message{Batch: NewBatch(events), Checkpoints: c}:
				return nil
			case <-runCtx.Done():
				return runCtx.Err()
			}
		},
		func(st sdk.Status) error {
			select {
			case r.ch <- Message{Status: &st}:
				return nil
			case <-runCtx.Done():
				return runCtx.Err()
			}
		})
	r.out.SetRecycle(func(events []sdk.Event, arena []byte, done func(), c []sdk.Checkpoint) error {
		select {
		case r.ch <- Message{Batch: NewRecycledBatch(events, arena, done), Checkpoints: c}:
			return nil
		case <-runCtx.Done():
			return runCtx.Err()
		}
	})
	r.out.Stamp(instance)
	go func() {
		defer close(r.done)
		defer func() {
			if p := recover(); p != nil {
				s.logger.Error("component panicked", "during", "run", "panic", p)
				r.err = sdk.NewPanicError("run", p)
			}
		}()
		err := src.Run(runCtx, r.out)
		if err != nil && runCtx.Err() == nil {
			r.err = err
		}
	}()
	return r, nil
}

type directReader struct {
	ctx     context.Context
	watcher sdk.CommitWatcher
	// commitMu keeps the calls to watcher one at a time, as over gRPC.
	commitMu sync.Mutex
	ch       chan Message
	out      *sdk.CreditOutput
	cancel   context.CancelFunc
	done     chan struct{}
	err      error
}

func (r *directReader) Recv() (Message, error) {
	select {
	case m := <-r.ch:
		return m, nil
	case <-r.done:
		select {
		case m := <-r.ch:
			return m, nil
		default:
		}
		if r.err != nil {
			return Message{}, r.err
		}
		return Message{}, io.EOF
	}
}

func (r *directReader) Grant(n int) error {
	r.out.Grant(n)
	return nil
}

func (r *directReader) Committed(cps []sdk.Checkpoint) (err error) {
	if r.watcher == nil || len(cps) == 0 || r.ctx.Err() != nil {
		return nil
	}
	r.commitMu.Lock()
	defer r.commitMu.Unlock()
	defer func() {
		if p := recover(); p != nil {
			err = sdk.NewPanicError("committed", p)
		}
	}()
	r.watcher.Committed(r.ctx, sdk.CommittedMap(cps))
	return nil
}

func (r *directReader) Stop() error {
	r.cancel()
	return nil
}

// DirectProcessor runs a processor component in-process.
func DirectProcessor(comp sdk.Component, logger hclog.Logger) Processor {
	return DirectProcessorWith(comp, logger, DirectEnv{})
}

// DirectProcessorWith is DirectProcessor with the instance's standard output and environment.
func DirectProcessorWith(comp sdk.Component, logger hclog.Logger, env DirectEnv) Processor {
	return &directProcessor{newDirect(comp, logger, env)}
}

type directProcessor struct{ *direct }

func (p *directProcessor) Configure(ctx context.Context, c Configuration) (Configured, error) {
	return p.configure(ctx, c)
}

func (p *directProcessor) Close(ctx context.Context) error { return p.close(ctx) }

// get returns the processor; mu is held.
func (p *directProcessor) get() (sdk.Processor, error) {
	if p.inst.Processor == nil {
		return nil, fmt.Errorf("processor is not configured")
	}
	return p.inst.Processor, nil
}

// Process runs the processor on in. Of a recycled input (a source in the host's process),
// the memory stays with the batch for good when the output lies in it (the processor passed
// events on) or the call was abandoned (it may still be using it).
func (p *directProcessor) Process(ctx context.Context, in *Batch, wm sdk.Watermark) (*Batch, error) {
	out, err := call(ctx, p.direct, "process", func() (*Batch, error) {
		proc, err := p.get()
		if err != nil {
			return nil, err
		}
		events, err := proc.Process(ctx, in.Events(), wm)
		if err != nil {
			return nil, err
		}
		if in.sharesMemoryWith(events) {
			in.Keep()
		}
		return NewBatch(events), nil
	})
	if err != nil && ctx.Err() != nil {
		in.Keep()
	}
	return out, err
}

func (p *directProcessor) Snapshot(ctx context.Context) ([]byte, error) {
	return call(ctx, p.direct, "snapshot", func() ([]byte, error) {
		proc, err := p.get()
		if err != nil {
			return nil, err
		}
		if st, ok := proc.(sdk.Stateful); ok {
			return st.Snapshot()
		}
		return nil, nil
	})
}

func (p *directProcessor) Restore(ctx context.Context, state []byte) error {
	_, err := call(ctx, p.direct, "restore", func() (struct{}, error) {
		proc, err := p.get()
		if err != nil {
			return struct{}{}, err
		}
		if st, ok := proc.(sdk.Stateful); ok && len(state) > 0 {
			return struct{}{}, st.Restore(state)
		}
		return struct{}{}, nil
	})
	return err
}

// DirectSink runs a sink component in-process.
func DirectSink(comp sdk.Component, logger hclog.Logger) Sink {
	return DirectSinkWith(comp, logger, DirectEnv{})
}

// DirectSinkWith is DirectSink with the instance's standard output and environment.
func DirectSinkWith(comp sdk.Component, logger hclog.Logger, env DirectEnv) Sink {
	return &directSink{newDirect(comp, logger, env)}
}

type directSink struct{ *direct }

func (s *directSink) Configure(ctx context.Context, c Configuration) (Configured, error) {
	return s.configure(ctx, c)
}

func (s *directSink) Close(ctx context.Context) error { return s.close(ctx) }

func (s *directSink) Write(ctx context.Context, id uint64, b *Batch) error {
	_, err := call(ctx, s.direct, "write", func() (struct{}, error) {
		if s.inst.Sink == nil {
			return struct{}{}, fmt.Errorf("sink is not configured")
		}
		return struct{}{}, s.inst.Sink.Write(ctx, sdk.Batch{ID: id, Events: b.Events()})
	})
	if err != nil && ctx.Err() != nil {
		b.Keep() // an abandoned call may still read it
	}
	return err
}

// Killer is implemented by the Direct* values: see Kill.
type Killer interface{ Kill() }
