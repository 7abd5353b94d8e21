package host

import (
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/hashicorp/go-hclog"

	"github.com/tda-dev/tda/sdk"
)

// Direct runs components in the host's own process, without RPC: for tests and for measuring
// what the protocol costs. Each Direct* value holds one instance.
type direct struct {
	comp     sdk.Component
	logger   hclog.Logger
	mu       sync.Mutex
	inst     sdk.Instance
	instance string
}

func (d *direct) configure(ctx context.Context, c Configuration) (Configured, error) {
	if c.Component != "" && c.Component != d.comp.Name {
		return Configured{}, fmt.Errorf("component %q is not %q", c.Component, d.comp.Name)
	}
	// The logger comes named after the instance from the host.
	res := sdk.Resources{Logger: d.logger, Instance: c.Instance, DataDir: c.DataDir}
	inst, diags := d.comp.NewInstance(c.Config, res)
	if diags.HasErrors() || c.ValidateOnly {
		return Configured{Diagnostics: diags}, nil
	}
	if st, ok := inst.Value().(sdk.Starter); ok {
		if err := st.Start(ctx); err != nil {
			return Configured{Diagnostics: diags}, fmt.Errorf("start %s: %w", c.Instance, err)
		}
	}
	_, stateful := inst.Value().(sdk.Stateful)
	_, watches := inst.Value().(sdk.CommitWatcher)
	d.mu.Lock()
	d.inst = inst
	d.instance = c.Instance
	d.mu.Unlock()
	return Configured{Diagnostics: diags, Stateful: stateful, WatchesCommits: watches && inst.Source != nil}, nil
}

func (d *direct) close(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if v := d.inst.Value(); v != nil {
		if c, ok := v.(sdk.Closer); ok {
			return c.Close(ctx)
		}
	}
	return nil
}

func newDirect(comp sdk.Component, logger hclog.Logger) *direct {
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	return &direct{comp: comp, logger: logger}
}

// DirectSource runs a source component in-process.
func DirectSource(comp sdk.Component, logger hclog.Logger) Source {
	return &directSource{newDirect(comp, logger)}
}

type directSource struct{ *direct }

func (s *directSource) Configure(ctx context.Context, c Configuration) (Configured, error) {
	return s.configure(ctx, c)
}

func (s *directSource) Close(ctx context.Context) error { return s.close(ctx) }

func (s *directSource) Read(ctx context.Context, checkpoints map[string][]byte, credits int) (Reader, error) {
	s.mu.Lock()
	src := s.inst.Source
	instance := s.instance
	s.mu.Unlock()
	if src == nil {
		return nil, fmt.Errorf("source is not configured")
	}
	runCtx, cancel := context.WithCancel(ctx)
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
	r.out.Stamp(instance)
	go func() {
		defer close(r.done)
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

func (r *directReader) Committed(cps []sdk.Checkpoint) error {
	if r.watcher == nil || len(cps) == 0 || r.ctx.Err() != nil {
		return nil
	}
	r.commitMu.Lock()
	defer r.commitMu.Unlock()
	r.watcher.Committed(r.ctx, sdk.CommittedMap(cps))
	return nil
}

func (r *directReader) Stop() error {
	r.cancel()
	return nil
}

// DirectProcessor runs a processor component in-process.
func DirectProcessor(comp sdk.Component, logger hclog.Logger) Processor {
	return &directProcessor{newDirect(comp, logger)}
}

type directProcessor struct{ *direct }

func (p *directProcessor) Configure(ctx context.Context, c Configuration) (Configured, error) {
	return p.configure(ctx, c)
}

func (p *directProcessor) Close(ctx context.Context) error { return p.close(ctx) }

func (p *directProcessor) get() (sdk.Processor, error) {
	if p.inst.Processor == nil {
		return nil, fmt.Errorf("processor is not configured")
	}
	return p.inst.Processor, nil
}

func (p *directProcessor) Process(ctx context.Context, in *Batch, wm sdk.Watermark) (out *Batch, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	proc, err := p.get()
	if err != nil {
		return nil, err
	}
	defer func() {
		if r := recover(); r != nil {
			p.logger.Error("component panicked", "during", "process", "panic", r)
			out, err = nil, sdk.NewPanicError("process", r)
		}
	}()
	events, err := proc.Process(ctx, in.Events(), wm)
	if err != nil {
		return nil, err
	}
	return NewBatch(events), nil
}

func (p *directProcessor) Snapshot(context.Context) ([]byte, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	proc, err := p.get()
	if err != nil {
		return nil, err
	}
	if st, ok := proc.(sdk.Stateful); ok {
		return st.Snapshot()
	}
	return nil, nil
}

func (p *directProcessor) Restore(_ context.Context, state []byte) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	proc, err := p.get()
	if err != nil {
		return err
	}
	if st, ok := proc.(sdk.Stateful); ok && len(state) > 0 {
		return st.Restore(state)
	}
	return nil
}

// DirectSink runs a sink component in-process.
func DirectSink(comp sdk.Component, logger hclog.Logger) Sink {
	return &directSink{newDirect(comp, logger)}
}

type directSink struct{ *direct }

func (s *directSink) Configure(ctx context.Context, c Configuration) (Configured, error) {
	return s.configure(ctx, c)
}

func (s *directSink) Close(ctx context.Context) error { return s.close(ctx) }

func (s *directSink) Write(ctx context.Context, id uint64, b *Batch) (err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inst.Sink == nil {
		return fmt.Errorf("sink is not configured")
	}
	// As in a plugin process, a panic fails the call, not the host.
	defer func() {
		if r := recover(); r != nil {
			s.logger.Error("component panicked", "during", "write", "panic", r)
			err = sdk.NewPanicError("write", r)
		}
	}()
	return s.inst.Sink.Write(ctx, sdk.Batch{ID: id, Events: b.Events()})
}
