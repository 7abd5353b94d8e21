package runtime

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/tda-dev/tda/agent/config"
	"github.com/tda-dev/tda/agent/state"
	"github.com/tda-dev/tda/sdk"
	"github.com/tda-dev/tda/sdk/host"
)

// queued is one entry of a sink's queue.
type queued struct {
	key          []byte // durable queue key; nil in memory
	batch        *host.Batch
	n            int
	bytes        int
	enqueued     time.Time
	onAccept     func()
	fallbackSent bool
}

// sinkRunner owns what every sink shares: its queue (in memory, or durable in the state
// store), batching, de-duplication of alerts, retries with backoff, and the fallback.
type sinkRunner struct {
	rt        *Runtime
	inst      *instance
	settings  config.SinkSettings
	kinds     map[string]bool
	durable   bool
	maxEvents int
	maxBytes  int
	fallback  *sinkRunner
	delivered *deliveredSet

	mu        sync.Mutex
	queue     []*queued
	queuedN   int
	stopping  bool
	nextID    uint64
	failing   bool
	wake      chan struct{}
	done      chan struct{}
	lastError string
}

func (rt *Runtime) newSinkRunner(in *instance) *sinkRunner {
	s := *in.comp.Sink
	k := &sinkRunner{rt: rt, inst: in, settings: s, maxEvents: s.MaxEvents, maxBytes: s.MaxBytes,
		wake: make(chan struct{}, 1), done: make(chan struct{}),
		// Delivery ids must never repeat across runs: an idempotent sink (jsonl) remembers the
		// last id it wrote and takes a repeat for a retry.
		nextID: uint64(time.Now().UnixNano())}
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

// enqueue adds a batch to the queue. onAccept runs once the sink has accepted all of it:
// after delivery for a memory queue, after persisting for a durable one.
func (k *sinkRunner) enqueue(b *host.Batch, onAccept func()) {
	chunks := k.split(b)
	accept := onAccept
	if len(chunks) > 1 && onAccept != nil {
		var mu sync.Mutex
		left := len(chunks)
		accept = func() {
			mu.Lock()
			left--
			last := left == 0
			mu.Unlock()
			if last {
				onAccept()
			}
		}
	}
	now := time.Now()
	entries := make([]*queued, len(chunks))
	total := 0
	for i, c := range chunks {
		entries[i] = &queued{batch: c, n: c.Len(), bytes: c.Size(), enqueued: now, onAccept: accept}
		total += entries[i].n
	}
	if k.durable {
		if err := k.persist(entries); err != nil {
			k.inst.logger.Error("cannot persist to the durable queue; keeping the events in memory", "error", err)
		} else {
			for _, e := range entries {
				if e.onAccept != nil {
					e.onAccept()
				}
				e.onAccept = nil
			}
		}
	}
	k.mu.Lock()
	k.queue = append(k.queue, entries...)
	k.queuedN += total
	n := k.queuedN
	k.mu.Unlock()
	k.rt.metrics.queueDepth.WithLabelValues(k.addr()).Set(float64(n))
	k.rt.health.setQueued(k.addr(), n)
	k.signal()
}

// split cuts a batch that exceeds one write's limits into chunks that fit.
func (k *sinkRunner) split(b *host.Batch) []*host.Batch {
	if b.Len() <= k.maxEvents && b.Size() <= k.maxBytes {
		return []*host.Batch{b}
	}
	events := b.Events()
	var chunks []*host.Batch
	start, size := 0, 0
	for i := range events {
		n := host.EventSize(&events[i])
		if i > start && (i-start >= k.maxEvents || size+n > k.maxBytes) {
			chunks = append(chunks, host.NewBatch(events[start:i:i]))
			start, size = i, 0
		}
		size += n
	}
	return append(chunks, host.NewBatch(events[start:]))
}

func (k *sinkRunner) signal() {
	select {
	case k.wake <- struct{}{}:
	default:
	}
}

func (k *sinkRunner) queuePath() []string { return []string{"queues", k.addr()} }

func (k *sinkRunner) persist(entries []*queued) error {
	return k.rt.store.Update(func(tx *state.Tx) error {
		for _, e := range entries {
			seq, err := tx.NextSequence(k.queuePath())
			if err != nil {
				return err
			}
			key := make([]byte, 8)
			binary.BigEndian.PutUint64(key, seq)
			val, err := encodeQueued(e)
			if err != nil {
				return err
			}
			if err := tx.Put(k.queuePath(), key, val); err != nil {
				return err
			}
			e.key = key
		}
		return nil
	})
}

// encodeQueued stores [enqueued unix ns][flags][protobuf batch].
func encodeQueued(e *queued) ([]byte, error) {
	b, err := e.batch.Raw()
	if err != nil {
		return nil, err
	}
	out := make([]byte, 9, 9+len(b))
	binary.BigEndian.PutUint64(out, uint64(e.enqueued.UnixNano()))
	if e.fallbackSent {
		out[8] = 1
	}
	return append(out, b...), nil
}

func decodeQueued(key, val []byte) (*queued, error) {
	if len(val) < 9 {
		return nil, errors.New("short queue record")
	}
	// The store's bytes are valid only inside its transaction: the batch gets a copy.
	batch, err := host.RawBatch(bytes.Clone(val[9:]))
	if err != nil {
		return nil, err
	}
	return &queued{key: append([]byte(nil), key...), batch: batch, n: batch.Len(), bytes: batch.Size(),
		enqueued: time.Unix(0, int64(binary.BigEndian.Uint64(val))), fallbackSent: val[8]&1 == 1}, nil
}

// load reads the durable queue left by a previous run.
func (k *sinkRunner) load() error {
	if !k.durable {
		return nil
	}
	var entries []*queued
	err := k.rt.store.View(func(tx *state.Tx) error {
		return tx.ForEach(k.queuePath(), func(key, val []byte) error {
			q, err := decodeQueued(key, val)
			if err != nil {
				k.inst.logger.Error("dropping an unreadable queue record", "error", err)
				return nil
			}
			entries = append(entries, q)
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("load queue of %s: %w", k.addr(), err)
	}
	n := 0
	for _, e := range entries {
		n += e.n
	}
	if n > 0 {
		k.inst.logger.Info("resuming queued deliveries from the previous run", "events", n)
	}
	k.mu.Lock()
	k.queue = append(entries, k.queue...)
	k.queuedN += n
	k.mu.Unlock()
	k.rt.health.setQueued(k.addr(), n)
	return nil
}

// run delivers the queue in order until stopped.
func (k *sinkRunner) run(ctx context.Context) {
	defer close(k.done)
	for {
		batch := k.next(ctx)
		if batch == nil {
			return
		}
		if !k.deliver(ctx, batch) {
			return
		}
	}
}

// next waits for queued events and returns the head of the queue that fits one write; nil
// when the runner should stop.
func (k *sinkRunner) next(ctx context.Context) []*queued {
	for {
		k.mu.Lock()
		if len(k.queue) == 0 {
			stopping := k.stopping
			k.mu.Unlock()
			if stopping {
				return nil
			}
			select {
			case <-k.wake:
			case <-ctx.Done():
				return nil
			}
			continue
		}
		n, events, bytes := 0, 0, 0
		for n < len(k.queue) {
			e := k.queue[n]
			if n > 0 && (events+e.n > k.maxEvents || bytes+e.bytes > k.maxBytes) {
				break
			}
			events += e.n
			bytes += e.bytes
			n++
		}
		full := n < len(k.queue) || events >= k.maxEvents
		wait := time.Until(k.queue[0].enqueued.Add(k.settings.GroupInterval))
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
		out := append([]*queued(nil), k.queue[:n]...)
		k.mu.Unlock()
		return out
	}
}

// deliver writes a batch until it is accepted, permanently rejected, or the runner stops;
// false means stop.
func (k *sinkRunner) deliver(ctx context.Context, batch []*queued) bool {
	parts := make([]*host.Batch, len(batch))
	for i, q := range batch {
		parts[i] = q.batch
	}
	b := k.delivered.filter(host.Concat(parts...))
	if b.Len() == 0 {
		k.complete(batch)
		return true
	}
	k.mu.Lock()
	k.nextID++
	id := k.nextID
	k.mu.Unlock()
	for attempt := 1; ; attempt++ {
		err := k.inst.sink().Write(ctx, id, b)
		if err == nil {
			k.delivered.record(b)
			k.rt.metrics.eventsOut.WithLabelValues(k.addr()).Add(float64(b.Len()))
			k.complete(batch)
			k.setFailing(false, "")
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		if restarted, rerr := k.inst.recover(ctx, err); rerr != nil {
			return false
		} else if restarted {
			continue
		}
		if sdk.IsPermanent(err) {
			k.rt.metrics.sinkFailures.WithLabelValues(k.addr(), "permanent").Inc()
			if k.fallback != nil {
				k.inst.logger.Error("sink rejected a batch permanently; handing it to the fallback",
					"error", err, "events", b.Len(), "fallback", k.fallback.addr())
				k.toFallback(batch, true)
			} else {
				k.inst.logger.Error("sink rejected a batch permanently and has no fallback; the batch is dropped (configure fallback = sink.TYPE.NAME to keep it)",
					"error", err, "events", b.Len())
				k.rt.metrics.droppedBatches.WithLabelValues(k.addr()).Inc()
			}
			k.complete(batch)
			return true
		}
		k.rt.metrics.sinkFailures.WithLabelValues(k.addr(), "retry").Inc()
		delay := backoff(attempt, k.settings.RetryInitial, k.settings.RetryMax)
		if after, ok := sdk.RetryAfter(err); ok {
			delay = after
		}
		k.setFailing(true, err.Error())
		k.inst.logger.Warn("sink write failed; retrying", "error", err, "attempt", attempt, "in", delay)
		if !k.waitRetry(ctx, delay) {
			return false
		}
	}
}

// waitRetry waits delay, meanwhile handing entries that waited longer than fallback_after to
// the fallback. False means stop (context done, or stopping with a durable queue that keeps
// the entries for the next run).
func (k *sinkRunner) waitRetry(ctx context.Context, delay time.Duration) bool {
	deadline := time.Now().Add(delay)
	for {
		k.checkFallback()
		k.mu.Lock()
		stopping := k.stopping
		k.mu.Unlock()
		if stopping && k.durable {
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

// checkFallback copies every queued entry that has waited fallback_after to the fallback
// sink, once; the primary keeps it and delivers it when it recovers.
func (k *sinkRunner) checkFallback() {
	if k.fallback == nil {
		return
	}
	k.mu.Lock()
	var due []*queued
	for _, q := range k.queue {
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

func (k *sinkRunner) toFallback(entries []*queued, final bool) {
	for _, q := range entries {
		if q.fallbackSent {
			continue
		}
		if fb := k.fallback.filter(q.batch); fb.Len() > 0 {
			k.fallback.enqueue(fb, nil)
		}
		q.fallbackSent = true
		if k.durable && q.key != nil && !final {
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

// complete removes delivered entries from the head of the queue.
func (k *sinkRunner) complete(batch []*queued) {
	var keys [][]byte
	n := 0
	for _, q := range batch {
		n += q.n
		if q.key != nil {
			keys = append(keys, q.key)
		}
	}
	if len(keys) > 0 {
		if err := k.rt.store.Update(func(tx *state.Tx) error {
			for _, key := range keys {
				if err := tx.Delete(k.queuePath(), key); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			k.inst.logger.Error("cannot remove delivered entries from the durable queue; they may be sent again after a restart",
				"error", err)
		}
	}
	k.mu.Lock()
	k.queue = k.queue[len(batch):]
	k.queuedN -= n
	left := k.queuedN
	k.mu.Unlock()
	k.rt.metrics.queueDepth.WithLabelValues(k.addr()).Set(float64(left))
	k.rt.health.setQueued(k.addr(), left)
	for _, q := range batch {
		if q.onAccept != nil {
			q.onAccept()
		}
	}
}

func (k *sinkRunner) setFailing(failing bool, reason string) {
	k.mu.Lock()
	changed := k.failing != failing || k.lastError != reason
	k.failing, k.lastError = failing, reason
	n := k.queuedN
	k.mu.Unlock()
	if !changed {
		return
	}
	if failing {
		k.rt.health.set(k.addr(), false, fmt.Sprintf("sink failing (%s); %d events queued", reason, n))
	} else {
		k.rt.health.set(k.addr(), true, "")
		k.inst.logger.Info("sink delivering again")
	}
}

// stop lets the runner finish the queue (memory) or leave it persisted (durable).
func (k *sinkRunner) stop() {
	k.mu.Lock()
	k.stopping = true
	k.mu.Unlock()
	k.signal()
}

// deliveredSet remembers which alert records a sink has delivered, in the state store, so a
// replay after a restart never pages twice.
type deliveredSet struct {
	store *state.Store
	path  []string
	mu    sync.Mutex
	seen  map[string]bool
}

// deliveredRetention is how long delivered-alert records are kept.
const deliveredRetention = 30 * 24 * time.Hour

func newDeliveredSet(store *state.Store, addr string) *deliveredSet {
	return &deliveredSet{store: store, path: []string{"delivered", addr}, seen: map[string]bool{}}
}

// load reads the records and drops expired ones.
func (d *deliveredSet) load() error {
	if d.store == nil {
		return nil
	}
	cutoff := time.Now().Add(-deliveredRetention)
	return d.store.Update(func(tx *state.Tx) error {
		var expired [][]byte
		err := tx.ForEach(d.path, func(k, v []byte) error {
			if len(v) == 8 && time.Unix(0, int64(binary.BigEndian.Uint64(v))).Before(cutoff) {
				expired = append(expired, append([]byte(nil), k...))
				return nil
			}
			d.seen[string(k)] = true
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range expired {
			if err := tx.Delete(d.path, k); err != nil {
				return err
			}
		}
		return nil
	})
}

// filter drops alerts already delivered.
func (d *deliveredSet) filter(b *host.Batch) *host.Batch {
	if b.KindCounts()[sdk.KindAlert] == 0 {
		return b
	}
	events := b.Events()
	d.mu.Lock()
	defer d.mu.Unlock()
	dup := false
	for i := range events {
		if a := events[i].Alert; a != nil && d.seen[a.DeliveryKey()] {
			dup = true
			break
		}
	}
	if !dup {
		return b
	}
	out := make([]sdk.Event, 0, len(events))
	for i := range events {
		if a := events[i].Alert; a != nil && d.seen[a.DeliveryKey()] {
			continue
		}
		out = append(out, events[i])
	}
	return host.NewBatch(out)
}

// record marks the alerts of a delivered batch as delivered.
func (d *deliveredSet) record(b *host.Batch) {
	if b.KindCounts()[sdk.KindAlert] == 0 {
		return
	}
	var keys []string
	events := b.Events()
	for i := range events {
		if a := events[i].Alert; a != nil && events[i].Kind == sdk.KindAlert {
			keys = append(keys, a.DeliveryKey())
		}
	}
	d.mu.Lock()
	for _, k := range keys {
		d.seen[k] = true
	}
	d.mu.Unlock()
	if d.store == nil {
		return
	}
	now := make([]byte, 8)
	binary.BigEndian.PutUint64(now, uint64(time.Now().UnixNano()))
	_ = d.store.Update(func(tx *state.Tx) error {
		for _, k := range keys {
			if err := tx.Put(d.path, []byte(k), now); err != nil {
				return err
			}
		}
		return nil
	})
}
