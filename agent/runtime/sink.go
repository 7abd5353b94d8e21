package runtime

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/tda-dev/tda/agent/config"
	"github.com/tda-dev/tda/agent/deadletter"
	"github.com/tda-dev/tda/agent/state"
	"github.com/tda-dev/tda/sdk"
	"github.com/tda-dev/tda/sdk/host"
)

// sinkRunner owns one sink's delivery: its bounded buffer (memory, spilled to disk, or
// durable; delivery_buffer.go), batching, de-duplication of alerts, each call's deadline,
// retries with backoff, the crash budget, the fallback and the dead letters.
type sinkRunner struct {
	rt          *Runtime
	inst        *instance
	settings    config.SinkSettings
	kinds       map[string]bool
	durable     bool
	maxEvents   int
	maxBytes    int
	maxAttempts int
	buf         bufferPolicy
	fallback    *sinkRunner
	delivered   *deliveredSet
	metrics     *deliveryMetrics

	// diskMu serialises placing new entries with refilling memory from disk.
	diskMu sync.Mutex

	mu        sync.Mutex
	mem       []*queued
	memBytes  int64
	memEvents int
	tailN     int
	// tailEvents are the events on disk only (the "spilled" figure).
	tailEvents int
	cursor     []byte
	diskBytes  int64
	diskErr    error
	dropped    int64
	// room is closed (and replaced) whenever the buffer frees room.
	room     chan struct{}
	pin      *pin
	stopping bool
	nextID   uint64
	failing  bool
	reason   string
	wake     chan struct{}
	done     chan struct{}
}

func (rt *Runtime) newSinkRunner(in *instance) *sinkRunner {
	s := *in.comp.Sink
	k := &sinkRunner{rt: rt, inst: in, settings: s, maxEvents: s.MaxEvents, maxBytes: s.MaxBytes,
		maxAttempts: in.maxAttempts(), metrics: rt.deliveryMetrics(),
		wake: make(chan struct{}, 1), done: make(chan struct{}), room: make(chan struct{}),
		// Delivery ids must never repeat across runs: an idempotent sink (jsonl) remembers the
		// last id it wrote and takes a repeat for a retry.
		nextID: uint64(time.Now().UnixNano())}
	if k.maxEvents <= 0 {
		k.maxEvents = config.DefaultMaxEvents
	}
	if k.maxBytes <= 0 {
		k.maxBytes = config.DefaultMaxBytes
	}
	kinds := s.Kinds
	if len(kinds) == 0 {
		kinds = in.desc.Accepts
	}
	if len(kinds) > 0 {
		k.kinds = map[string]bool{}
		for _, kind := range kinds {
			k.kinds[kind] = true
		}
	}
	k.buf = resolveBuffer(s.Buffer, k.kinds)
	queue := s.Queue
	if queue == "" {
		queue = in.desc.Queue
	}
	k.durable = queue == sdk.QueueDurable && rt.store != nil
	if in.desc.MaxBatch > 0 && in.desc.MaxBatch < k.maxEvents {
		k.maxEvents = in.desc.MaxBatch
	}
	k.delivered = newDeliveredSet(rt.store, in.addr())
	return k
}

func (k *sinkRunner) addr() string { return k.inst.addr() }

// filter returns the events of the kinds this sink takes.
func (k *sinkRunner) filter(b *host.Batch) *host.Batch {
	if k.kinds == nil {
		return b
	}
	return b.Filter(func(kind string) bool { return k.kinds[kind] })
}

func (k *sinkRunner) signal() {
	select {
	case k.wake <- struct{}{}:
	default:
	}
}

// run delivers the buffer in order until stopped.
func (k *sinkRunner) run(ctx context.Context) {
	defer close(k.done)
	for {
		group := k.next(ctx)
		if group == nil {
			return
		}
		if !k.deliver(ctx, group) {
			return
		}
	}
}

// next waits for queued events and returns the head of the buffer that makes one write (the
// pinned in-flight delivery first); nil when the runner should stop. A write never mixes
// persisted entries with memory-only ones, so that the pinned delivery is the same after a
// restart.
func (k *sinkRunner) next(ctx context.Context) []*queued {
	for {
		k.mu.Lock()
		refill := k.tailN > 0 && (len(k.mem) == 0 || k.memBytes <= k.buf.maxSize/2 || k.pin != nil)
		k.mu.Unlock()
		if refill {
			if err := k.refill(); err != nil {
				k.inst.logger.Error("cannot read the buffer from disk; retrying", "error", err)
				if sleepCtx(ctx, time.Second) != nil {
					return nil
				}
				continue
			}
		}
		k.mu.Lock()
		if k.stopping && !k.memoryOnlyQueued() {
			// What is left is on disk: the next run delivers it.
			k.mu.Unlock()
			return nil
		}
		if len(k.mem) == 0 {
			tail := k.tailN
			k.mu.Unlock()
			if tail > 0 {
				continue
			}
			select {
			case <-k.wake:
			case <-ctx.Done():
				return nil
			}
			continue
		}
		n, events, size := 0, 0, 0
		persisted := k.mem[0].key != nil
		if p := k.pin; p != nil && persisted {
			for n < len(k.mem) && k.mem[n].key != nil && bytes.Compare(k.mem[n].key, p.last) <= 0 {
				n++
			}
			out := append([]*queued(nil), k.mem[:n]...)
			k.mu.Unlock()
			return out
		}
		k.pin = nil
		for n < len(k.mem) {
			e := k.mem[n]
			if n > 0 && (events+e.n > k.maxEvents || size+e.bytes > k.maxBytes || (e.key != nil) != persisted) {
				break
			}
			events += e.n
			size += e.bytes
			n++
		}
		full := n < len(k.mem) || events >= k.maxEvents || k.tailN > 0
		wait := time.Until(k.mem[0].enqueued.Add(k.settings.GroupInterval))
		stopping := k.stopping
		if k.settings.GroupInterval > 0 && wait > 0 && !full && !stopping {
			k.mu.Unlock()
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-k.wake:
			case <-ctx.Done():
				t.Stop()
				return nil
			}
			t.Stop()
			continue
		}
		out := append([]*queued(nil), k.mem[:n]...)
		k.mu.Unlock()
		return out
	}
}

// deliveryID returns the id of a write: the pinned one after a restart, else a new one,
// pinned in the store before the first attempt when the write holds persisted entries.
func (k *sinkRunner) deliveryID(group []*queued) uint64 {
	k.mu.Lock()
	if p := k.pin; p != nil {
		k.mu.Unlock()
		return p.id
	}
	k.nextID++
	id := k.nextID
	k.mu.Unlock()
	last := group[len(group)-1].key
	if last == nil || k.rt.store == nil {
		return id
	}
	val := binary.BigEndian.AppendUint64(nil, id)
	val = append(val, last...)
	if err := k.rt.store.Update(func(tx *state.Tx) error {
		return tx.Put(k.deliveryPath(), []byte(k.addr()), val)
	}); err != nil {
		k.inst.logger.Error("cannot record the delivery in flight; after a kill it may go out again under another id", "error", err)
		return id
	}
	k.mu.Lock()
	k.pin = &pin{id: id, last: last}
	k.mu.Unlock()
	return id
}

// pinSpilled pins a write in flight whose entries were just spilled to disk, so that after a
// kill it goes out again as the same delivery.
func (k *sinkRunner) pinSpilled(id uint64, group []*queued) {
	k.mu.Lock()
	pinned := k.pin != nil
	for _, q := range group {
		if q.key == nil {
			pinned = true // still in memory: nothing to pin
		}
	}
	k.mu.Unlock()
	if pinned || k.rt.store == nil {
		return
	}
	last := group[len(group)-1].key
	val := append(binary.BigEndian.AppendUint64(nil, id), last...)
	if err := k.rt.store.Update(func(tx *state.Tx) error {
		return tx.Put(k.deliveryPath(), []byte(k.addr()), val)
	}); err != nil {
		k.inst.logger.Error("cannot record the delivery in flight; after a kill it may go out again under another id", "error", err)
		return
	}
	k.mu.Lock()
	k.pin = &pin{id: id, last: last}
	k.mu.Unlock()
}

// deliver writes one group until it is delivered, refused, set aside or the runner stops;
// false means stop. Every call has call_timeout: a call past it is a hung plugin, killed
// and restarted. A recovered panic, a crash and a hang each use one of max_attempts; a
// plain error (the destination is down) is retried without limit, the buffer absorbing the
// outage, and the fallback takes over after fallback_after.
func (k *sinkRunner) deliver(ctx context.Context, group []*queued) bool {
	parts := make([]*host.Batch, len(group))
	for i, q := range group {
		parts[i] = q.batch
	}
	b := k.delivered.filter(host.Concat(parts...))
	if b.Len() == 0 {
		k.complete(group, nil)
		return true
	}
	id := k.deliveryID(group)
	attempts := 0
	for retry := 1; ; retry++ {
		callCtx, cancel := k.inst.callContext(ctx)
		err := k.inst.sink().Write(callCtx, id, b)
		hung := err != nil && ctx.Err() == nil && errors.Is(callCtx.Err(), context.DeadlineExceeded)
		cancel()
		if err == nil {
			k.complete(group, b)
			k.rt.metrics.eventsOut.WithLabelValues(k.addr()).Add(float64(b.Len()))
			k.setFailing(false, "")
			k.inst.succeeded()
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		var reason deadletter.Reason
		delay := backoff(retry, k.settings.RetryInitial, k.settings.RetryMax)
		switch {
		case hung:
			attempts++
			reason = deadletter.ReasonDeadline
			k.rt.metrics.sinkFailures.WithLabelValues(k.addr(), "deadline").Inc()
			err = fmt.Errorf("no answer within call_timeout (%s): %w", k.inst.callTimeout, err)
			if rerr := k.inst.restartHung(ctx, err); rerr != nil {
				return false
			}
			delay = 0
		case sdk.IsPanic(err):
			attempts++
			reason = deadletter.ReasonCrashBudget
			k.rt.metrics.sinkFailures.WithLabelValues(k.addr(), "panic").Inc()
			k.inst.logger.Error("the plugin panicked on this batch; it keeps running", "error", err,
				"attempt", attempts, "max_attempts", k.maxAttempts, "delivery", id)
		case k.inst.crashed(ctx, err):
			attempts++
			reason = deadletter.ReasonCrashBudget
			k.rt.metrics.sinkFailures.WithLabelValues(k.addr(), "crash").Inc()
			if rerr := k.inst.restart(ctx, err); rerr != nil {
				return false
			}
			delay = 0
		case sdk.IsPermanent(err):
			k.rt.metrics.sinkFailures.WithLabelValues(k.addr(), "permanent").Inc()
			return k.setAside(ctx, group, b, deadletter.ReasonRefused, err, attempts+1)
		default:
			k.rt.metrics.sinkFailures.WithLabelValues(k.addr(), "retry").Inc()
			if after, ok := sdk.RetryAfter(err); ok {
				delay = after
			}
		}
		if attempts >= k.maxAttempts {
			return k.setAside(ctx, group, b, reason, err, attempts)
		}
		k.setFailing(true, fmt.Sprintf("sink failing (%s); %d events queued", err, k.queuedEvents()))
		k.spillMemory()
		k.pinSpilled(id, group)
		k.inst.logger.Warn("sink write failed; retrying", "error", err, "in", delay, "delivery", id)
		if !k.waitRetry(ctx, delay) {
			return false
		}
	}
}

// setAside gives up on a group: a permanent refusal, or max_attempts used. The batch goes to
// the fallback when there is one, and to the dead letters always; the group is then
// accepted and the pipeline moves on. The state says what happened and what to do. When the
// dead-letter store is full the group stays at the head of the buffer and is tried again.
func (k *sinkRunner) setAside(ctx context.Context, group []*queued, b *host.Batch, reason deadletter.Reason, cause error, attempts int) bool {
	for {
		l, err := k.rt.deadLetterStore().add(k.addr(), "", reason, cause, attempts, b)
		if err == nil {
			k.rt.metrics.droppedBatches.WithLabelValues(k.addr()).Inc()
			where := "no fallback is configured: the events are only in the dead letters (configure fallback = sink.TYPE.NAME)"
			if k.fallback != nil {
				k.toFallback(group, true)
				where = "the events went to " + k.fallback.addr()
			}
			what := map[deadletter.Reason]string{
				deadletter.ReasonRefused:     "refused a batch permanently",
				deadletter.ReasonCrashBudget: fmt.Sprintf("failed on a batch %d times (max_attempts)", attempts),
				deadletter.ReasonDeadline:    fmt.Sprintf("hung on a batch %d times (call_timeout %s)", attempts, k.inst.callTimeout),
			}[reason]
			fix := "fix the sink's settings"
			if reason != deadletter.ReasonRefused {
				fix = "fix the plugin or the batch"
			}
			msg := fmt.Sprintf("%s: %s; %s; %s, then replay the dead letters: tda deadletter replay %d",
				what, cause, where, fix, l.ID)
			k.inst.logger.Error("sink gave up on a batch; it is a dead letter", "reason", reason, "error", cause,
				"events", b.Len(), "dead_letter", l.ID)
			k.complete(group, nil)
			k.setFailing(true, msg)
			return true
		}
		k.inst.logger.Error("cannot set the batch aside; it stays queued", "error", err)
		k.setFailing(true, fmt.Sprintf("gave up on a batch (%s) but cannot keep it: %v; the batch stays queued", cause, err))
		if !k.waitRetry(ctx, k.settings.RetryMax) {
			return false
		}
	}
}

// waitRetry waits delay, meanwhile handing entries that waited longer than fallback_after to
// the fallback. False means stop (context done, or stopping while everything queued is on
// disk for the next run).
func (k *sinkRunner) waitRetry(ctx context.Context, delay time.Duration) bool {
	deadline := time.Now().Add(delay)
	for {
		k.checkFallback()
		if k.stoppingAllOnDisk() {
			return false
		}
		left := time.Until(deadline)
		if left <= 0 {
			return true
		}
		step := left
		if k.fallback != nil && step > time.Second {
			step = time.Second
		}
		if err := sleepCtx(ctx, step); err != nil {
			return false
		}
	}
}

// stoppingAllOnDisk reports whether the runner is stopping and nothing queued is in memory
// only: the next run delivers what is on disk.
func (k *sinkRunner) stoppingAllOnDisk() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.stopping && !k.memoryOnlyQueued()
}

// memoryOnlyQueued reports whether an entry held in memory only waits (under mu).
func (k *sinkRunner) memoryOnlyQueued() bool {
	for _, q := range k.mem {
		if q.key == nil {
			return true
		}
	}
	return false
}

// checkFallback copies every queued entry in memory that has waited fallback_after to the
// fallback sink, once; the primary keeps it and delivers it when it recovers.
func (k *sinkRunner) checkFallback() {
	if k.fallback == nil {
		return
	}
	k.mu.Lock()
	var due []*queued
	for _, q := range k.mem {
		if !q.fallbackSent && time.Since(q.enqueued) >= k.settings.FallbackAfter {
			due = append(due, q)
		}
	}
	k.mu.Unlock()
	if len(due) > 0 {
		k.inst.logger.Warn("sink has failed longer than fallback_after; sending to the fallback",
			"fallback", k.fallback.addr(), "entries", len(due))
		k.toFallback(due, false)
	}
}

// toFallback hands entries to the fallback's own buffer (bounded by its policy).
func (k *sinkRunner) toFallback(entries []*queued, final bool) {
	for _, q := range entries {
		if q.fallbackSent || q.batch == nil {
			continue
		}
		if fb := k.fallback.filter(q.batch); fb.Len() > 0 {
			k.fallback.enqueue(fb, nil)
		}
		q.fallbackSent = true
		if q.key != nil && !final {
			val, err := encodeQueued(q)
			if err == nil {
				err = k.rt.store.Update(func(tx *state.Tx) error { return tx.Put(k.queuePath(), q.key, val) })
			}
			if err != nil {
				k.inst.logger.Error("cannot record the fallback hand-off", "error", err)
			}
		}
	}
}

// complete removes a finished group from the head of the buffer. Delivered alerts (of
// delivered, nil when the group was set aside or had nothing new) are recorded in the same
// transaction that removes the entries and the pin: after a kill either both happened or
// neither, so only the delivery in flight can go out again, under its pinned id.
func (k *sinkRunner) complete(group []*queued, delivered *host.Batch) {
	var keys [][]byte
	n, size, disk := 0, 0, 0
	for _, q := range group {
		n += q.n
		size += q.bytes
		disk += q.disk
		if q.key != nil {
			keys = append(keys, q.key)
		}
	}
	alertKeys := deliveryKeys(delivered)
	evicted := k.delivered.record(alertKeys)
	if k.rt.store != nil && (len(keys) > 0 || len(alertKeys) > 0) {
		if err := k.rt.store.Update(func(tx *state.Tx) error {
			if err := k.delivered.put(tx, alertKeys, evicted); err != nil {
				return err
			}
			for _, key := range keys {
				if err := tx.Delete(k.queuePath(), key); err != nil {
					return err
				}
			}
			if len(keys) > 0 {
				return tx.Delete(k.deliveryPath(), []byte(k.addr()))
			}
			return nil
		}); err != nil {
			k.inst.logger.Error("cannot record the delivery; after a restart it may be sent again", "error", err)
		}
	}
	k.mu.Lock()
	k.mem = k.mem[len(group):]
	if len(k.mem) == 0 {
		k.mem = nil // let the backing array go
	}
	k.memBytes -= int64(size)
	k.memEvents -= n
	k.diskBytes -= int64(disk)
	if len(keys) > 0 {
		k.pin = nil
	}
	close(k.room)
	k.room = make(chan struct{})
	k.mu.Unlock()
	k.publishFigures()
	for _, q := range group {
		if q.onAccept != nil {
			q.onAccept()
		}
	}
}

func (k *sinkRunner) queuedEvents() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.memEvents + k.tailEvents
}

// setFailing records whether the sink fails, and why. It stays failing until a delivery
// succeeds.
func (k *sinkRunner) setFailing(failing bool, reason string) {
	k.mu.Lock()
	changed := k.failing != failing || k.reason != reason
	k.failing, k.reason = failing, reason
	k.mu.Unlock()
	if !changed {
		return
	}
	if !failing {
		k.inst.logger.Info("sink delivering again")
	}
	k.refreshHealth()
}

// refreshHealth sets the sink's state: failing with its reason, else degraded while it has
// dead letters (they wait for an operator), else healthy.
func (k *sinkRunner) refreshHealth() {
	reason := k.failingReason()
	k.mu.Lock()
	dropped := k.dropped
	k.mu.Unlock()
	if reason != "" && dropped > 0 && !strings.Contains(reason, "dropped") {
		reason += fmt.Sprintf("; %d events dropped so far (buffer full, when_full = \"drop\")", dropped)
	}
	if reason != "" {
		k.rt.health.set(k.addr(), false, reason)
		return
	}
	if n := k.rt.deadLetterStore().countFor(k.addr()); n > 0 {
		k.rt.health.set(k.addr(), false, fmt.Sprintf("delivering, but %d batches were set aside as dead letters: inspect them with `tda deadletter list`, then replay or drop them", n))
		return
	}
	k.rt.health.set(k.addr(), true, "")
}

// failingReason is the reason the sink is failing ("" when it is not).
func (k *sinkRunner) failingReason() string {
	k.mu.Lock()
	defer k.mu.Unlock()
	if !k.failing {
		return ""
	}
	return k.reason
}

// stop lets the runner finish what is in memory only, and leave what is on disk for the
// next run.
func (k *sinkRunner) stop() {
	k.mu.Lock()
	k.stopping = true
	k.mu.Unlock()
	k.signal()
}

// describeBuffer is the buffer's policy in words, for the log.
func (k *sinkRunner) describeBuffer() string {
	var b strings.Builder
	fmt.Fprintf(&b, "max_size=%d when_full=%s", k.buf.maxSize, k.buf.whenFull)
	if k.durable || k.buf.whenFull == config.WhenFullSpill {
		fmt.Fprintf(&b, " max_disk_size=%d", k.buf.maxDisk)
	}
	if k.durable {
		b.WriteString(" queue=durable")
	}
	return b.String()
}
