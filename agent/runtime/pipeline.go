package runtime

import (
	"context"
	"sync"
	"time"

	"github.com/tda-dev/tda/sdk"
	"github.com/tda-dev/tda/sdk/host"
)

type itemKind int

const (
	itemBatch itemKind = iota
	itemTick
	itemBarrier
	itemInject
)

// item is what flows into a pipeline: a source batch, a clock tick, events injected by an
// operator, or a checkpoint barrier.
type item struct {
	kind    itemKind
	env     *envelope
	batch   *host.Batch
	wm      sdk.Watermark
	barrier *barrier
	done    chan struct{} // closed after an injected item was handed to the sinks
}

// epoch counts the sink deliveries issued between two barriers.
type epoch struct {
	outstanding int
	closed      bool
	done        chan struct{}
}

// pipelineRunner runs a pipeline's processors in order on one goroutine and hands the output
// to its sinks.
type pipelineRunner struct {
	rt     *Runtime
	name   string
	in     chan item
	stages []*stage
	sinks  []*sinkRunner

	mu    sync.Mutex
	epoch *epoch

	done chan struct{}
}

// stage is one processor of a pipeline. For a stateful processor it keeps every input since
// the last committed snapshot, so a crashed plugin can be restored and brought up to date.
type stage struct {
	inst *instance

	mu        sync.Mutex
	buffer    []buffered
	held      int // bytes of the buffered batches
	committed []byte
}

type buffered struct {
	batch *host.Batch
	wm    sdk.Watermark
	size  int
}

func newEpoch() *epoch { return &epoch{done: make(chan struct{})} }

func (p *pipelineRunner) run(ctx context.Context) {
	defer close(p.done)
	for it := range p.in {
		switch it.kind {
		case itemBarrier:
			p.barrier(ctx, it.barrier)
		default:
			p.process(ctx, it)
		}
	}
}

func (p *pipelineRunner) watermark(it item) sdk.Watermark {
	if it.kind == itemTick {
		return it.wm
	}
	if p.rt.live {
		return sdk.Watermark{Time: time.Now()}
	}
	return sdk.Watermark{}
}

func (p *pipelineRunner) process(ctx context.Context, it item) {
	// The item's batch is this pipeline's to release once done with it.
	defer it.batch.Release()
	b := it.batch
	if b == nil {
		b = host.NewBatch(nil)
	}
	wm := p.watermark(it)
	if b.Len() > 0 || it.kind == itemTick {
		for _, st := range p.stages {
			n := b.Len()
			if n == 0 && it.kind != itemTick {
				break
			}
			p.rt.metrics.eventsIn.WithLabelValues(st.inst.addr()).Add(float64(n))
			b = st.process(ctx, b, wm)
			p.rt.metrics.eventsOut.WithLabelValues(st.inst.addr()).Add(float64(b.Len()))
		}
	}
	var received time.Time
	if it.env != nil {
		received = it.env.received
	}
	if b == it.batch {
		// No processor: the source's batch goes to the sinks, which keep it in their queues.
		b = b.Unpooled()
	}
	p.deliver(it.env, b, received)
	if it.env != nil {
		it.env.release()
	}
	if it.done != nil {
		close(it.done)
	}
}

// process runs one batch through the stage's processor, restarting a crashed or hung plugin
// and replaying what it lost. A batch that fails, crashes or hangs the processor
// max_attempts times is set aside as a dead letter: a poison batch must not stop detection.
func (st *stage) process(ctx context.Context, b *host.Batch, wm sdk.Watermark) *host.Batch {
	if st.keepsInputs() {
		size := b.Size()
		st.mu.Lock()
		st.buffer = append(st.buffer, buffered{batch: b.Retain(), wm: wm, size: size})
		st.held += size
		full := st.held >= st.inst.rt.replayHold
		st.mu.Unlock()
		if full {
			st.inst.rt.commitSoon()
		}
	}
	for attempt := 1; ; attempt++ {
		callCtx, cancel := st.inst.callContext(ctx)
		out, err := st.inst.processor().Process(callCtx, b, wm)
		cancel()
		if err == nil {
			return out
		}
		if ctx.Err() != nil {
			return host.NewBatch(nil)
		}
		restarted, rerr := st.inst.recover(ctx, err)
		if rerr != nil {
			return host.NewBatch(nil)
		}
		if restarted {
			st.rebuild(ctx, true)
		}
		if attempt >= st.inst.maxAttempts() {
			st.inst.rt.setAsideInput(st.inst, b, err, attempt)
			return host.NewBatch(nil)
		}
		if restarted {
			continue
		}
		st.inst.logger.Warn("processor failed on a batch; retrying", "error", err, "attempt", attempt)
		if sleepCtx(ctx, time.Duration(attempt)*100*time.Millisecond) != nil {
			return host.NewBatch(nil)
		}
	}
}

// keepsInputs reports whether the stage buffers its inputs for crash recovery: only stateful
// processors whose snapshots are committed to a store (a replay keeps nothing).
func (st *stage) keepsInputs() bool {
	return st.inst.isStateful() && st.inst.rt.store != nil
}

// rebuild restores a restarted processor to its last committed snapshot and replays the
// inputs since then (all but the current one, the last buffered, when exceptLast); their
// outputs were already passed on and are dropped.
func (st *stage) rebuild(ctx context.Context, exceptLast bool) {
	if !st.keepsInputs() {
		return
	}
	st.mu.Lock()
	snap := st.committed
	n := len(st.buffer)
	if exceptLast && n > 0 {
		n--
	}
	replay := append([]buffered(nil), st.buffer[:n]...)
	for _, b := range replay {
		b.batch.Retain() // a commit may drop them from the buffer meanwhile
	}
	st.mu.Unlock()
	defer func() {
		for _, b := range replay {
			b.batch.Release()
		}
	}()
	proc := st.inst.processor()
	if len(snap) > 0 {
		if err := proc.Restore(ctx, snap); err != nil {
			st.inst.logger.Error("restoring the processor's state failed; it starts empty", "error", err)
		}
	}
	for _, b := range replay {
		if _, err := proc.Process(ctx, b.batch, b.wm); err != nil {
			st.inst.logger.Error("replaying a batch into the restarted processor failed", "error", err)
			return
		}
	}
	if len(replay) > 0 {
		st.inst.logger.Info("processor state rebuilt", "replayed_batches", len(replay))
	}
}

// snapshot returns the processor's state, restarting it first if it crashed.
func (st *stage) snapshot(ctx context.Context) ([]byte, int, error) {
	for {
		st.mu.Lock()
		mark := len(st.buffer)
		st.mu.Unlock()
		callCtx, cancel := st.inst.callContext(ctx)
		b, err := st.inst.processor().Snapshot(callCtx)
		cancel()
		if err == nil {
			return b, mark, nil
		}
		restarted, rerr := st.inst.recover(ctx, err)
		if rerr != nil {
			return nil, 0, rerr
		}
		if !restarted {
			return nil, 0, err
		}
		// The restarted plugin lost everything after the last commit: bring it back, then
		// snapshot again.
		st.rebuild(ctx, false)
	}
}

// commit records a committed snapshot and forgets the inputs it covers.
func (st *stage) commit(snap []byte, mark int) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.committed = snap
	if mark > len(st.buffer) {
		mark = len(st.buffer)
	}
	for _, b := range st.buffer[:mark] {
		b.batch.Release()
		st.held -= b.size
	}
	st.buffer = append(st.buffer[:0:0], st.buffer[mark:]...)
}

// deliver hands the output of a batch to the sinks, each receiving the kinds it takes.
func (p *pipelineRunner) deliver(env *envelope, b *host.Batch, received time.Time) {
	if b.Len() == 0 {
		return
	}
	kinds := b.KindCounts()
	if kinds[sdk.KindAlert] > 0 || (p.rt.observe != nil && kinds[sdk.KindAudit] > 0) {
		events := b.Events()
		for i := range events {
			e := &events[i]
			if a := e.Alert; a != nil && e.Kind == sdk.KindAlert {
				p.rt.metrics.alerts.WithLabelValues(a.Rule, a.State).Inc()
				if !received.IsZero() {
					p.rt.metrics.detectionLatency.Observe(time.Since(received).Seconds())
				}
			}
			if p.rt.observe != nil && (e.Kind == sdk.KindAlert || e.Kind == sdk.KindAudit) {
				p.rt.observe(p.name, e.Clone())
			}
		}
	}
	for _, k := range p.sinks {
		sub := k.filter(b)
		if sub.Len() == 0 {
			continue
		}
		p.mu.Lock()
		ep := p.epoch
		ep.outstanding++
		p.mu.Unlock()
		if env != nil {
			env.hold()
		}
		k.enqueue(sub, func() {
			p.ackDelivery(ep)
			if env != nil {
				env.release()
			}
		})
	}
}

func (p *pipelineRunner) ackDelivery(ep *epoch) {
	p.mu.Lock()
	defer p.mu.Unlock()
	ep.outstanding--
	if ep.closed && ep.outstanding == 0 {
		close(ep.done)
	}
}

// barrier snapshots the stateful processors at this point of the stream and closes the
// current epoch; the barrier completes when every delivery of that epoch is accepted.
func (p *pipelineRunner) barrier(ctx context.Context, b *barrier) {
	res := pipelineMark{pipeline: p}
	for _, st := range p.stages {
		if !st.inst.isStateful() {
			continue
		}
		snap, mark, err := st.snapshot(ctx)
		if err != nil {
			res.err = err
			st.inst.logger.Error("snapshot failed; this checkpoint is skipped", "error", err)
			continue
		}
		res.stages = append(res.stages, stageMark{stage: st, snapshot: snap, mark: mark})
	}
	p.mu.Lock()
	old := p.epoch
	p.epoch = newEpoch()
	old.closed = true
	if old.outstanding == 0 {
		close(old.done)
	}
	p.mu.Unlock()
	res.drained = old.done
	b.marks <- res
}
