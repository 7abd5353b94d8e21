package runtime

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/tda-dev/tda/sdk"
	"github.com/tda-dev/tda/sdk/host"
)

// stage is one processor of a pipeline. A stateful processor's stage keeps what a restarted
// plugin needs to catch up: a base snapshot and every input since it.
//
// Invariant: held (the bytes of the inputs kept) stays under the hold bound plus one batch,
// where the bound is hold or twice the base snapshot's size, whichever is larger. When an
// input takes it past the bound, the stage asks its group for a checkpoint and takes a
// snapshot of the processor there and then: the snapshot becomes the base and replaces the
// inputs it covers, which are let go. The base is only held in memory; the store keeps the
// last committed snapshot, which goes with the committed source checkpoints. A snapshot
// replaces at least twice its own size of input: a processor with a large state (many keys)
// is not snapshotted every batch to save less memory than the snapshot itself takes.
type stage struct {
	inst *instance
	// hold bounds the bytes of inputs kept for replay.
	hold int
	// group is asked for an early checkpoint when the inputs reach hold.
	group *group

	mu      sync.Mutex
	buffer  []buffered
	held    int // bytes of the buffered batches
	nextSeq uint64
	base    []byte // the state the buffered inputs follow
	baseSeq uint64 // inputs up to this sequence are in base
	// stored is the snapshot the store holds for the stage (restored at start, or the last
	// committed): a checkpoint whose snapshot is the same bytes does not write it again.
	stored []byte
	// failing is whether the last batch failed; dropped counts the batches set aside (the
	// health says both).
	failing bool
	dropped int
}

type buffered struct {
	seq   uint64
	batch *host.Batch
	wm    sdk.Watermark
	size  int
}

// errGaveUp means a processor call was abandoned: the runtime is stopping.
var errGaveUp = errors.New("processing cut off by the shutdown")

// process runs one batch through the stage's processor, restarting a crashed or hung plugin
// and replaying what it lost. A batch that fails, crashes or hangs the processor max_attempts
// times is set aside as a dead letter (dropped, with an error in the log, when the
// dead-letter store cannot take it), and forgotten by the replay buffer: a poison batch
// must not stop detection. An error means the batch could not be processed because ctx
// ended: it went nowhere.
func (st *stage) process(ctx context.Context, b *host.Batch, wm sdk.Watermark) (*host.Batch, error) {
	keep := st.keepsInputs()
	if keep {
		size := b.Size()
		st.mu.Lock()
		st.nextSeq++
		st.buffer = append(st.buffer, buffered{seq: st.nextSeq, batch: b.Retain(), wm: wm, size: size})
		st.held += size
		st.mu.Unlock()
	}
	for attempt := 1; ; attempt++ {
		callCtx, cancel := st.inst.callContext(ctx)
		out, err := st.inst.processor().Process(callCtx, b, wm)
		cancel()
		if err == nil {
			if keep {
				st.bound(ctx)
			}
			st.setFailing(nil)
			return out, nil
		}
		if ctx.Err() != nil {
			return nil, errGaveUp
		}
		restarted, rerr := st.inst.recover(ctx, err)
		if rerr != nil {
			return nil, errGaveUp
		}
		if attempt >= st.inst.maxAttempts() {
			if derr := st.inst.rt.setAsideInput(st.inst, b, err, attempt); derr != nil {
				st.setDropped(b.Len(), attempt, err)
				st.inst.logger.Error("a batch failed the processor max_attempts times; dropping it (the events reach no sink)",
					"error", err, "events", b.Len(), "plugin_restarted", restarted, "dead_letter_error", derr)
			} else {
				// The dead letter's reason stays in the state until it is replayed or dropped.
				st.mu.Lock()
				st.failing = false
				st.mu.Unlock()
			}
			st.inst.rt.metrics.droppedBatches.WithLabelValues(st.inst.addr()).Inc()
			if keep {
				st.forgetLast()
			}
			if restarted {
				st.rebuild(ctx, false)
			}
			return host.NewBatch(nil), nil
		}
		if restarted {
			st.rebuild(ctx, true)
			continue
		}
		st.setFailing(fmt.Errorf("processor failed on a batch (%v); retrying", err))
		st.inst.logger.Warn("processor failed on a batch; retrying", "error", err, "attempt", attempt)
		if sleepCtx(ctx, time.Duration(attempt)*100*time.Millisecond) != nil {
			return nil, errGaveUp
		}
	}
}

// setFailing records in the health whether the processor's last batch failed (err) or went
// through (nil). Retries clear once a batch goes through; a dropped batch does not (see
// setDropped).
func (st *stage) setFailing(err error) {
	st.mu.Lock()
	was := st.failing
	st.failing = err != nil
	dropped := st.dropped
	st.mu.Unlock()
	switch {
	case dropped > 0:
		// The drops stay in the state: events lost to every sink must not go unnoticed.
	case err != nil:
		st.inst.rt.health.set(st.inst.addr(), false, err.Error())
	case was:
		st.inst.rt.healthyUnlessLetters(st.inst.addr())
	}
}

// setDropped records a batch set aside: the state stays degraded with the count until the
// agent restarts.
func (st *stage) setDropped(events int, attempts int, err error) {
	st.mu.Lock()
	st.dropped++
	n := st.dropped
	st.mu.Unlock()
	st.inst.rt.health.set(st.inst.addr(), false, fmt.Sprintf(
		"dropped %d batch(es) the processor failed %d times (last: %d events, %v); those events reached no sink: see the agent log",
		n, attempts, events, err))
}

// forgetLast drops the newest input from the replay buffer (a batch set aside).
func (st *stage) forgetLast() {
	st.mu.Lock()
	defer st.mu.Unlock()
	if n := len(st.buffer); n > 0 && st.buffer[n-1].seq > st.baseSeq {
		st.buffer[n-1].batch.Release()
		st.held -= st.buffer[n-1].size
		st.buffer = st.buffer[:n-1]
	}
}

// bound keeps the inputs held under the hold bound: past it, the processor's snapshot
// replaces the inputs held, and the group is asked for a checkpoint ahead of its interval
// (at most one a second: see earlyCommitGap). The snapshot is the base a restarted processor
// is rebuilt from; it need not be committed for that.
func (st *stage) bound(ctx context.Context) {
	st.mu.Lock()
	over := st.held >= st.boundLocked()
	st.mu.Unlock()
	if !over {
		return
	}
	if st.group != nil {
		st.group.commitSoon()
	}
	callCtx, cancel := st.inst.callContext(ctx)
	snap, err := st.inst.processor().Snapshot(callCtx)
	cancel()
	if err != nil {
		// The next batch tries again; a crashed plugin is restarted by the next Process.
		st.inst.logger.Warn("cannot snapshot the processor to let go of the inputs held for replay", "error", err,
			"held_bytes", st.heldBytes())
		return
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if n := len(st.buffer); n > 0 {
		st.rebaseLocked(snap, st.buffer[n-1].seq)
	}
}

// rebaseLocked makes snap, the state after input seq, the base, and lets go of the inputs it
// covers. An older snapshot never replaces a newer base.
func (st *stage) rebaseLocked(snap []byte, seq uint64) {
	if seq < st.baseSeq {
		return
	}
	st.base, st.baseSeq = snap, seq
	i := 0
	for i < len(st.buffer) && st.buffer[i].seq <= seq {
		st.buffer[i].batch.Release()
		st.held -= st.buffer[i].size
		i++
	}
	st.buffer = append(st.buffer[:0:0], st.buffer[i:]...)
}

// boundLocked is the bytes of input the stage holds before a snapshot replaces them: hold,
// or twice the size of the base snapshot when that is larger. st.mu is held.
func (st *stage) boundLocked() int { return max(st.hold, 2*len(st.base)) }

func (st *stage) heldBytes() int {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.held
}

// keepsInputs reports whether the stage buffers its inputs for crash recovery: only stateful
// processors whose snapshots are committed to a store (a replay keeps nothing).
func (st *stage) keepsInputs() bool {
	return st.inst.isStateful() && st.inst.rt.store != nil
}

// rebuild restores a restarted processor to its base snapshot and replays the inputs since
// then (all but the current one, the last buffered, when exceptLast); their outputs were
// already passed on and are dropped.
func (st *stage) rebuild(ctx context.Context, exceptLast bool) {
	if !st.keepsInputs() {
		return
	}
	st.mu.Lock()
	snap := st.base
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
		callCtx, cancel := st.inst.callContext(ctx)
		err := proc.Restore(callCtx, snap)
		cancel()
		if err != nil {
			st.inst.logger.Error("restoring the processor's state failed; it starts empty", "error", err)
		}
	}
	for _, b := range replay {
		callCtx, cancel := st.inst.callContext(ctx)
		_, err := proc.Process(callCtx, b.batch, b.wm)
		cancel()
		if err != nil {
			st.inst.logger.Error("replaying a batch into the restarted processor failed", "error", err)
			return
		}
	}
	st.inst.logger.Info("processor state rebuilt", "from_snapshot", len(snap) > 0, "replayed_batches", len(replay))
}

// snapshot returns the processor's state and the sequence of the last input it covers,
// restarting the plugin first if it crashed.
func (st *stage) snapshot(ctx context.Context) ([]byte, uint64, error) {
	for {
		st.mu.Lock()
		mark := st.nextSeq
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
			return nil, 0, fmt.Errorf("snapshot %s: %w", st.inst.addr(), err)
		}
		// The restarted plugin lost everything after the base: bring it back, then snapshot
		// again.
		st.rebuild(ctx, false)
	}
}

// commit records a committed snapshot, taken after input mark: it becomes the base unless a
// newer one already is, and the inputs it covers are let go.
func (st *stage) commit(snap []byte, mark uint64) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.stored = snap
	st.rebaseLocked(snap, mark)
}

// unchanged reports whether snap is the snapshot the store already holds for the stage.
func (st *stage) unchanged(snap []byte) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.stored != nil && bytes.Equal(st.stored, snap)
}
