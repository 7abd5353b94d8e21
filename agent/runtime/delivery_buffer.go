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

// queued is one entry of a sink's buffer.
type queued struct {
	// key is the entry's key in the store when it is persisted (a durable queue, or spilled);
	// nil for an entry held in memory only.
	key []byte
	// batch is nil while the entry waits on disk only (the tail).
	batch *host.Batch
	n     int
	// bytes are the events' bytes (what the memory bound counts); disk the stored record's
	// bytes (what the disk bound counts; 0 when not persisted).
	bytes        int
	disk         int
	enqueued     time.Time
	onAccept     func()
	fallbackSent bool
	// replayed marks a dead letter put back by an operator: never dropped, it waits for room.
	replayed bool
}

// bufferPolicy is a sink's resolved `buffer` block.
type bufferPolicy struct {
	maxSize  int64
	whenFull string
	maxDisk  int64
}

// resolveBuffer fills in a buffer block's defaults:
//   - a sink that takes log events only (a capture such as logfile) drops what does not fit:
//     it must never hold back the pipeline that feeds the detection sinks, and its usual
//     trouble (a full or stuck disk) is not helped by spilling to disk;
//   - a durable queue (notifiers) is on disk already: past max_disk_size it blocks;
//   - any other sink (jsonl, console, snapshot) blocks: an audit trail keeps every record
//     and its order, and a sink that is merely slower than a catch-up read does not turn
//     the read into disk writes. "spill" is there to choose.
func resolveBuffer(b config.BufferSettings, kinds map[string]bool) bufferPolicy {
	p := bufferPolicy{maxSize: b.MaxSize, whenFull: b.WhenFull, maxDisk: b.MaxDiskSize}
	if p.maxSize <= 0 {
		p.maxSize = config.DefaultBufferMaxSize
	}
	if p.maxDisk <= 0 {
		p.maxDisk = config.DefaultBufferMaxDiskSize
	}
	if p.whenFull == "" {
		p.whenFull = config.WhenFullBlock
		if len(kinds) == 1 && kinds[sdk.KindLog] {
			p.whenFull = config.WhenFullDrop
		}
	}
	return p
}

// Queue records in the store: [enqueued unix ns: 8][flags: 1][events: 4][protobuf batch].
// Flag bit 0: handed to the fallback; bit 1: the events count is present (records written
// before it lack the count and are decoded to count them).
const (
	flagFallbackSent = 1 << 0
	flagCounted      = 1 << 1
)

func encodeQueued(e *queued) ([]byte, error) {
	b, err := e.batch.Raw()
	if err != nil {
		return nil, err
	}
	out := make([]byte, 13, 13+len(b))
	binary.BigEndian.PutUint64(out, uint64(e.enqueued.UnixNano()))
	out[8] = flagCounted
	if e.fallbackSent {
		out[8] |= flagFallbackSent
	}
	binary.BigEndian.PutUint32(out[9:], uint32(e.n))
	return append(out, b...), nil
}

// decodeQueued reads a record; with load false it reads the header only (batch stays nil,
// except for old records, which are decoded to count their events).
func decodeQueued(key, val []byte, load bool) (*queued, error) {
	if len(val) < 9 {
		return nil, errors.New("short queue record")
	}
	q := &queued{key: append([]byte(nil), key...), disk: len(val),
		enqueued: time.Unix(0, int64(binary.BigEndian.Uint64(val))), fallbackSent: val[8]&flagFallbackSent != 0}
	raw := val[9:]
	if val[8]&flagCounted != 0 {
		if len(val) < 13 {
			return nil, errors.New("short queue record")
		}
		q.n = int(binary.BigEndian.Uint32(val[9:]))
		raw = val[13:]
		if !load {
			q.bytes = len(raw)
			return q, nil
		}
	}
	// The store's bytes are valid only inside its transaction: the batch gets a copy.
	batch, err := host.RawBatch(bytes.Clone(raw))
	if err != nil {
		return nil, err
	}
	q.n, q.bytes = batch.Len(), batch.Size()
	if load {
		q.batch = batch
	}
	return q, nil
}

func (k *sinkRunner) queuePath() []string { return []string{"queues", k.addr()} }

// deliveryPath holds the in-flight delivery: [id: 8][last queue key].
func (k *sinkRunner) deliveryPath() []string { return []string{"inflight"} }

// errStopped: the runtime stopped before the sink took the batch.
var errStopped = errors.New("the agent is stopping")

// enqueue adds a batch for the pipelines. onAccept runs once, when the sink has accepted
// all of it: delivered, persisted (durable or spilled), dead-lettered, or dropped by
// when_full = "drop"; never before. With when_full = "block" (or "spill" with a full disk)
// it waits for room: that is the back-pressure.
func (k *sinkRunner) enqueue(b *host.Batch, onAccept func()) {
	if err := k.enqueueCtx(k.rt.runCtx, b, onAccept, false); err != nil && !errors.Is(err, errStopped) {
		k.inst.logger.Error("cannot queue a batch", "error", err)
	}
}

// enqueueCtx is enqueue bounded by ctx; replayed batches (dead letters put back) are never
// dropped by when_full = "drop": they wait for room.
func (k *sinkRunner) enqueueCtx(ctx context.Context, b *host.Batch, onAccept func(), replayed bool) error {
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
	for _, c := range chunks {
		e := &queued{batch: c, n: c.Len(), bytes: c.Size(), enqueued: now, onAccept: accept, replayed: replayed}
		if err := k.place(ctx, e); err != nil {
			return err
		}
	}
	k.publishFigures()
	k.signal()
	return nil
}

// place puts one entry where the policy says. Invariants (under mu): entries in mem are the
// oldest, in order; the tail (persisted, not loaded) holds every persisted key after
// cursor; an entry goes to memory only while the tail is empty, so order is kept; memBytes
// stays within maxSize except for a single entry larger than it, taken alone; diskBytes
// stays within maxDisk except for a single record larger than it.
func (k *sinkRunner) place(ctx context.Context, e *queued) error {
	for {
		room, placed := k.tryPlace(e)
		if placed {
			return nil
		}
		select {
		case <-room:
		case <-ctx.Done():
			return errStopped
		}
	}
}

// tryPlace places an entry if the policy allows it now; otherwise it returns the channel
// closed when room frees. diskMu is held for one try only, never while waiting: the runner
// needs it to refill memory from disk, which is what frees room.
func (k *sinkRunner) tryPlace(e *queued) (<-chan struct{}, bool) {
	k.diskMu.Lock()
	defer k.diskMu.Unlock()
	k.mu.Lock()
	memRoom := k.tailN == 0 && (len(k.mem) == 0 || k.memBytes+int64(e.bytes) <= k.buf.maxSize)
	diskRoom := k.rt.store != nil && (k.diskBytes == 0 || k.diskBytes+int64(e.bytes) <= k.buf.maxDisk)
	room, failing := k.room, k.failing
	k.mu.Unlock()
	spill := k.buf.whenFull == config.WhenFullSpill && k.rt.store != nil
	if !k.durable && (!memRoom || failing) && spill && diskRoom {
		// The first batch to go to disk takes what memory holds with it, in order: then the
		// disk holds the buffer's order, and a restart never sends a later batch before an
		// earlier one.
		k.spillMemoryLocked()
	}
	switch {
	case k.durable && diskRoom, !k.durable && (!memRoom || failing) && spill && diskRoom:
		if err := k.persist(e); err != nil {
			// A store that cannot write (full disk) must not lose the batch: it waits in
			// memory like a memory queue's, and the state says why.
			k.inst.logger.Error("cannot persist a batch to disk; keeping it in memory", "error", err)
			k.noteDisk(err)
			if !memRoom {
				break
			}
			k.toMemory(e)
			return nil, true
		}
		k.noteDisk(nil)
		accept := e.onAccept
		e.onAccept = nil
		k.mu.Lock()
		k.diskBytes += int64(e.disk)
		if memRoom {
			k.mem = append(k.mem, e)
			k.memBytes += int64(e.bytes)
			k.memEvents += e.n
			k.cursor = e.key
		} else {
			e.batch = nil
			k.tailN++
			k.tailEvents += e.n
		}
		k.mu.Unlock()
		if accept != nil {
			accept()
		}
		return nil, true
	case !k.durable && memRoom:
		if k.buf.whenFull == config.WhenFullDrop && e.onAccept != nil {
			// drop is the lossy policy: what it holds counts as accepted when queued, so
			// that a failing capture never holds back the source (and the sinks after it).
			e.onAccept()
			e.onAccept = nil
		}
		k.toMemory(e)
		return nil, true
	case k.buf.whenFull == config.WhenFullDrop && !e.replayed:
		k.drop(e)
		return nil, true
	}
	return room, false
}

func (k *sinkRunner) toMemory(e *queued) {
	k.mu.Lock()
	k.mem = append(k.mem, e)
	k.memBytes += int64(e.bytes)
	k.memEvents += e.n
	k.mu.Unlock()
}

// drop discards an entry under when_full = "drop": counted, reported, and accepted (the
// policy chose to lose it; holding the checkpoint for it would hold the pipeline).
func (k *sinkRunner) drop(e *queued) {
	k.mu.Lock()
	k.dropped += int64(e.n)
	total := k.dropped
	k.mu.Unlock()
	k.metrics.dropped.WithLabelValues(k.addr()).Add(float64(e.n))
	k.setFailing(true, fmt.Sprintf("buffer full (when_full = \"drop\"): %d events dropped so far; the sink is slower than its input or failing — see its log, or raise buffer.max_size", total))
	k.inst.logger.Warn("buffer full; dropping a batch (when_full = \"drop\")", "events", e.n, "dropped_total", total)
	if e.onAccept != nil {
		e.onAccept()
	}
}

// noteDisk records whether the last write to the spill store failed.
func (k *sinkRunner) noteDisk(err error) {
	k.mu.Lock()
	k.diskErr = err
	k.mu.Unlock()
	if err != nil {
		k.setFailing(true, fmt.Sprintf("cannot write its buffer to disk (%v); batches wait in memory — free space under data_dir", err))
	}
}

// persist writes an entry to the store.
func (k *sinkRunner) persist(e *queued) error {
	val, err := encodeQueued(e)
	if err != nil {
		return err
	}
	return k.rt.store.Update(func(tx *state.Tx) error {
		seq, err := tx.NextSequence(k.queuePath())
		if err != nil {
			return err
		}
		key := binary.BigEndian.AppendUint64(nil, seq)
		if err := tx.Put(k.queuePath(), key, val); err != nil {
			return err
		}
		e.key, e.disk = key, len(val)
		return nil
	})
}

// spillMemory persists the entries held in memory only, in order, when the sink starts
// failing, or its memory is full, under when_full = "spill": they then count as accepted,
// and the pipeline's source moves on while the destination is down. It only runs while nothing is on disk
// after them (an empty tail), which keeps the store's key order the buffer's order.
func (k *sinkRunner) spillMemory() {
	if k.durable || k.buf.whenFull != config.WhenFullSpill || k.rt.store == nil {
		return
	}
	k.diskMu.Lock()
	defer k.diskMu.Unlock()
	k.spillMemoryLocked()
}

// spillMemoryLocked is spillMemory with diskMu held.
func (k *sinkRunner) spillMemoryLocked() {
	k.mu.Lock()
	var todo []*queued
	if k.tailN == 0 {
		for _, q := range k.mem {
			if q.key == nil && q.batch != nil {
				todo = append(todo, q)
			}
		}
	}
	k.mu.Unlock()
	if len(todo) == 0 {
		return
	}
	vals := make([][]byte, len(todo))
	for i, q := range todo {
		v, err := encodeQueued(q)
		if err != nil {
			k.inst.logger.Error("cannot encode a batch for the disk; it stays in memory", "error", err)
			return
		}
		vals[i] = v
	}
	keys := make([][]byte, len(todo))
	err := k.rt.store.Update(func(tx *state.Tx) error {
		for i := range todo {
			seq, err := tx.NextSequence(k.queuePath())
			if err != nil {
				return err
			}
			keys[i] = binary.BigEndian.AppendUint64(nil, seq)
			if err := tx.Put(k.queuePath(), keys[i], vals[i]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		k.inst.logger.Error("cannot spill the buffer to disk; it stays in memory", "error", err)
		k.noteDisk(err)
		return
	}
	var accepts []func()
	k.mu.Lock()
	for i, q := range todo {
		q.key, q.disk = keys[i], len(vals[i])
		k.diskBytes += int64(q.disk)
		if q.onAccept != nil {
			accepts = append(accepts, q.onAccept)
			q.onAccept = nil
		}
	}
	k.cursor = keys[len(keys)-1]
	k.mu.Unlock()
	for _, a := range accepts {
		a()
	}
}

// refill loads the oldest entries of the tail into memory, up to max_size (at least one, and
// at least through the pinned in-flight delivery).
func (k *sinkRunner) refill() error {
	k.diskMu.Lock()
	defer k.diskMu.Unlock()
	k.mu.Lock()
	if k.tailN == 0 {
		k.mu.Unlock()
		return nil
	}
	cursor, budget, empty := k.cursor, k.buf.maxSize-k.memBytes, len(k.mem) == 0
	var through []byte
	if k.pin != nil {
		through = k.pin.last
	}
	k.mu.Unlock()
	var loaded []*queued
	var used int64
	err := k.rt.store.View(func(tx *state.Tx) error {
		return tx.Scan(k.queuePath(), cursor, func(key, val []byte) error {
			pinned := through != nil && bytes.Compare(key, through) <= 0
			if !pinned && (len(loaded) > 0 || !empty) && used+int64(len(val)) > budget {
				return state.ErrStop
			}
			q, err := decodeQueued(key, val, true)
			if err != nil {
				k.inst.logger.Error("skipping an unreadable queue record", "error", err)
				q = &queued{key: append([]byte(nil), key...), disk: len(val)}
			}
			used += int64(q.bytes)
			loaded = append(loaded, q)
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("read the buffer of %s from disk: %w", k.addr(), err)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, q := range loaded {
		k.tailN--
		k.tailEvents -= q.n
		k.cursor = q.key
		if q.batch == nil { // unreadable: remove it with the next completion
			q.batch = host.NewBatch(nil)
		}
		k.mem = append(k.mem, q)
		k.memBytes += int64(q.bytes)
		k.memEvents += q.n
	}
	if len(loaded) == 0 && k.tailN > 0 {
		// The counts disagree with the store (records removed outside the agent).
		k.tailN, k.tailEvents = 0, 0
	}
	return nil
}

// load reads the buffer left on disk by a previous run (a durable queue, or what was
// spilled): its figures only; refill brings the entries into memory as room allows.
func (k *sinkRunner) load() error {
	k.inst.logger.Debug("sink buffer", "policy", k.describeBuffer())
	if k.rt.store == nil {
		return nil
	}
	var n, events int
	var size int64
	var pinned *pin
	err := k.rt.store.View(func(tx *state.Tx) error {
		if err := tx.ForEach(k.queuePath(), func(key, val []byte) error {
			q, err := decodeQueued(key, val, false)
			if err != nil {
				k.inst.logger.Error("an unreadable queue record will be skipped", "error", err)
				n++
				size += int64(len(val))
				return nil
			}
			n++
			events += q.n
			size += int64(len(val))
			return nil
		}); err != nil {
			return err
		}
		v, err := tx.Get(k.deliveryPath(), []byte(k.addr()))
		if err == nil && len(v) > 8 {
			pinned = &pin{id: binary.BigEndian.Uint64(v), last: v[8:]}
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("load the queue of %s: %w", k.addr(), err)
	}
	if events > 0 {
		k.inst.logger.Info("resuming queued deliveries from the previous run", "events", events, "bytes", size)
	}
	k.mu.Lock()
	k.tailN, k.tailEvents, k.diskBytes, k.cursor = n, events, size, nil
	if n > 0 {
		k.pin = pinned
	}
	k.mu.Unlock()
	k.publishFigures()
	return nil
}

// pin is a delivery in flight: its id and the last queue key it covers. It is stored before
// the first attempt, so that after a kill the same entries go out again as one delivery
// with the same id (an idempotent receiver takes it for the repeat it is).
type pin struct {
	id   uint64
	last []byte
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
