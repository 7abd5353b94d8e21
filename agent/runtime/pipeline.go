package runtime

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
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

// pipelineRunner runs a pipeline's processors in order on one goroutine and hands the output
// to its sinks.
type pipelineRunner struct {
	rt     *Runtime
	name   string
	in     chan item
	stages []*stage
	sinks  []*sinkRunner
	flow   *flow
	group  *group
	// ticks counts the clock ticks waiting in the input (at most maxQueuedTicks).
	ticks atomic.Int32

	mu    sync.Mutex
	epoch *epoch
	// lost is set when the pipeline could not process a batch (its context ended): no later
	// checkpoint of its group may be committed in this run, since it would cover that batch.
	lost bool

	done chan struct{}
}

// maxQueuedTicks bounds the clock ticks waiting in a pipeline's input.
const maxQueuedTicks = 2

// errLost is the reason a checkpoint is refused after a pipeline lost a batch.
var errLost = errors.New("a batch was cut off by the shutdown before its sinks got it; no checkpoint covers it, and it is read again at the next start")

func (p *pipelineRunner) run(ctx context.Context) {
	defer close(p.done)
	for it := range p.in {
		switch it.kind {
		case itemBarrier:
			p.barrier(ctx, it.barrier)
		case itemTick:
			if it.done == nil { // the tick loop's, not Flush's
				p.ticks.Add(-1)
			}
			p.process(ctx, it)
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
			out, err := st.process(ctx, b, wm)
			if err != nil {
				p.mu.Lock()
				p.lost = true
				p.mu.Unlock()
				b = host.NewBatch(nil)
				break
			}
			b = out
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

// deliver hands the output of a batch to the sinks, each receiving the kinds it takes.
func (p *pipelineRunner) deliver(env *envelope, b *host.Batch, received time.Time) {
	if b.Len() == 0 {
		return
	}
	kinds := b.KindCounts()
	if kinds[sdk.KindAlert] > 0 || kinds[sdk.KindAudit] > 0 {
		events := b.Events()
		for i := range events {
			e := &events[i]
			if a := e.Alert; a != nil && e.Kind == sdk.KindAlert {
				p.rt.metrics.alerts.WithLabelValues(a.Rule, a.State).Inc()
				if !received.IsZero() {
					p.rt.metrics.detectionLatency.Observe(time.Since(received).Seconds())
				}
			}
			if e.Kind == sdk.KindAudit {
				p.rt.observeClockReport(p.name, e)
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
		// The sink calls this exactly once, when it has accepted the batch; the epoch, and with
		// it every checkpoint after this point, waits for it.
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
	ep.settle()
}

// barrier snapshots the stateful processors at this point of the stream and closes the
// current epoch; the barrier's mark is drained when every delivery of this epoch and of
// every epoch before it is accepted.
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
	if p.lost && res.err == nil {
		res.err = errLost
	}
	old := p.epoch
	p.epoch = old.successor()
	old.closed = true
	old.settle()
	p.mu.Unlock()
	res.drained = old.done
	b.marks <- res
}

// sinkNames lists the pipeline's sinks for messages.
func (p *pipelineRunner) sinkNames() string {
	names := make([]string, len(p.sinks))
	for i, k := range p.sinks {
		names[i] = k.addr()
	}
	return strings.Join(names, ", ")
}
