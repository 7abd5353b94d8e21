package runtime

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tda-dev/tda/agent/state"
	"github.com/tda-dev/tda/sdk"
)

// The checkpoint coordinator.
//
// Invariant: commit N of a group covers every batch of the group's sources up to barrier N,
// each accepted by every sink it was routed to. A commit never covers a batch that some sink
// has not accepted: not on Ctrl-C, not after a failed or cancelled commit, not after a sink
// plugin crashed with the batch in hand.
//
// How it keeps it:
//   - A barrier is put into every pipeline of the group at one point of the stream (under
//     dispatchMu, which every dispatch holds: each source batch is before the barrier in all
//     of its pipelines, or after it in all).
//   - Each pipeline counts its sink deliveries in epochs, one per barrier. An epoch is drained
//     when its own deliveries were accepted AND the epoch before it is drained: a barrier given
//     up (cancelled, failed) leaves its epoch in the chain, and the next barrier waits for it.
//   - The group commits only when the mark of every pipeline is drained; the sources' entries
//     and the processors' snapshots of the barrier go to the store in one transaction.
//   - A pipeline that could not process a batch (the shutdown cut it off) refuses every later
//     checkpoint of its group in this run (errLost).
//
// Groups are the connected parts of the pipeline graph (Plan.Groups): pipelines that share a
// source or a sink. Each group commits on its own, so a stuck sink holds back the checkpoints
// of its own group only.
//
// Bounds: a group has at most one pending checkpoint (issued, not yet committed): a commit
// first completes the pending one, and a cancelled or failed commit keeps it for the next try
// rather than issuing another. Its sources keep at most two segments of entries each (see
// sourceRunner), and a pipeline at most two epochs that are not drained.

// group is one checkpoint group.
type group struct {
	rt        *Runtime
	name      string
	pipelines []*pipelineRunner
	sources   []*sourceRunner

	// mu serialises the group's commits.
	mu      sync.Mutex
	pending *pendingCheckpoint
	// now asks the group's commit loop for a checkpoint before the interval is up.
	now chan struct{}
	// lastCommit is when the commit loop last began a commit (unix nanoseconds).
	lastCommit atomic.Int64
}

// earlyCommitGap is the least time between the start of a commit and a checkpoint asked for
// ahead of the interval (commitSoon): a stage whose replay hold fills every few batches
// would otherwise commit, fsync and snapshot its processor again at each of them, which
// under a fast source cost a fifth of the agent's CPU. Its inputs are let go by its own
// snapshot either way.
const earlyCommitGap = time.Second

// pendingCheckpoint is a barrier issued and not yet committed.
type pendingCheckpoint struct {
	issued    time.Time
	positions []uint64 // of the group's sources, by index
	barrier   *barrier
	marks     []pipelineMark
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
	mark     uint64
}

// epoch counts the sink deliveries a pipeline issued between two barriers.
type epoch struct {
	outstanding int
	closed      bool
	prev        *epoch // nil once drained
	next        *epoch
	done        chan struct{}
}

func newEpoch() *epoch { return &epoch{done: make(chan struct{})} }

// successor starts the epoch after e.
func (e *epoch) successor() *epoch {
	n := &epoch{done: make(chan struct{}), prev: e}
	e.next = n
	return n
}

func (e *epoch) drained() bool {
	select {
	case <-e.done:
		return true
	default:
		return false
	}
}

// settle closes done when the epoch and every epoch before it are drained, and passes the
// news on to the epochs after it. The pipeline's mu is held.
func (e *epoch) settle() {
	for e != nil && !e.drained() && e.closed && e.outstanding == 0 && (e.prev == nil || e.prev.drained()) {
		close(e.done)
		e.prev = nil
		e = e.next
	}
}

// commitSoon asks for a checkpoint ahead of the interval, unless a commit began less than
// earlyCommitGap ago; a request made while one is pending is the same request.
func (g *group) commitSoon() {
	if time.Since(time.Unix(0, g.lastCommit.Load())) < earlyCommitGap {
		return
	}
	select {
	case g.now <- struct{}{}:
	default:
	}
}

// CheckpointAddress is the address under which a checkpoint group's health is kept.
func CheckpointAddress(group string) string { return "checkpoint." + group }

// loop commits the group's checkpoints every interval, and sooner when asked, until ctx
// ends. A commit that waits longer than stallAfter for the sinks is given up (it stays
// pending) and the state says the group's checkpoints are held back, until one commits.
func (g *group) loop(ctx context.Context, interval, stallAfter time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	var heldSince time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-g.now:
			t.Reset(interval)
		}
		g.lastCommit.Store(time.Now().UnixNano())
		cctx, cancel := context.WithTimeout(ctx, stallAfter)
		err := g.commit(cctx)
		cancel()
		switch {
		case err == nil:
			heldSince = time.Time{}
			g.rt.health.setLazy(CheckpointAddress(g.name), true, "")
		case ctx.Err() != nil:
			return
		case errors.Is(err, context.DeadlineExceeded):
			if heldSince.IsZero() {
				heldSince = time.Now().Add(-stallAfter)
			}
			g.rt.health.setLazy(CheckpointAddress(g.name), false, fmt.Sprintf(
				"checkpoints held back since %s: the sinks of pipelines %s have not accepted what they were handed; tda reads on while the pipelines have room, and after a restart re-reads everything since; see those sinks' state",
				heldSince.UTC().Format(time.RFC3339), strings.Join(g.pipelineNames(), ", ")))
			g.rt.logger.Warn("checkpoint held back by sinks not accepting; waiting on", "group", g.name, "error", err)
		default:
			g.rt.logger.Error("checkpoint failed; the next one retries, and nothing past the last commit is forgotten",
				"group", g.name, "error", err)
		}
	}
}

func (g *group) pipelineNames() []string {
	names := make([]string, len(g.pipelines))
	for i, p := range g.pipelines {
		names[i] = p.name
	}
	return names
}

// commit completes the pending checkpoint if there is one, then issues a new barrier and
// completes it: on return without error, every batch the group's sources dispatched before
// the call is committed.
func (g *group) commit(ctx context.Context) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.pending != nil {
		if err := g.complete(ctx); err != nil {
			return err
		}
	}
	g.issue()
	return g.complete(ctx)
}

// issue puts a barrier into every pipeline of the group. g.mu is held and nothing is pending.
func (g *group) issue() {
	b := &barrier{marks: make(chan pipelineMark, len(g.pipelines))}
	pc := &pendingCheckpoint{issued: time.Now(), barrier: b, positions: make([]uint64, len(g.sources))}
	g.rt.dispatchMu.Lock()
	for i, s := range g.sources {
		pc.positions[i] = s.seal()
	}
	for _, p := range g.pipelines {
		p.in <- item{kind: itemBarrier, barrier: b}
	}
	g.rt.dispatchMu.Unlock()
	g.pending = pc
}

// complete waits until the pending barrier's marks are drained and commits it. A cancelled
// wait or a failed write keeps it pending (retried by the next commit); a mark that failed
// (a snapshot error, a lost batch) gives it up once drained, and the next barrier covers its
// batches. g.mu is held.
func (g *group) complete(ctx context.Context) error {
	pc := g.pending
	for len(pc.marks) < len(g.pipelines) {
		select {
		case m := <-pc.barrier.marks:
			pc.marks = append(pc.marks, m)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	for _, m := range pc.marks {
		select {
		case <-m.drained:
		case <-ctx.Done():
			return fmt.Errorf("the sinks of pipeline %s (%s) have not accepted everything before the barrier; nothing after the last checkpoint is committed, and it is read again after a restart: %w",
				m.pipeline.name, m.pipeline.sinkNames(), ctx.Err())
		}
	}
	// A failed mark is given up only once drained, so the epochs not drained stay two per
	// pipeline at most: the pending barrier's and the open one.
	for _, m := range pc.marks {
		if m.err != nil {
			g.pending = nil
			return fmt.Errorf("pipeline %s: %w", m.pipeline.name, m.err)
		}
	}
	if err := g.write(pc); err != nil {
		g.rt.health.setStore(g.rt.store.Path(), err)
		return fmt.Errorf("write checkpoint: %w", err)
	}
	g.rt.health.setStore(g.rt.store.Path(), nil)
	for _, m := range pc.marks {
		for _, sm := range m.stages {
			sm.stage.commit(sm.snapshot, sm.mark)
		}
	}
	for i, s := range g.sources {
		s.committed(pc.positions[i])
	}
	g.pending = nil
	g.rt.metrics.commits.Inc()
	g.rt.metrics.commitSeconds.Observe(time.Since(pc.issued).Seconds())
	return nil
}

// write stores the processors' snapshots and the sources' checkpoint entries of a drained
// barrier in one transaction. What the store already holds is not written again: an idle
// group (no checkpoint entry, every snapshot the bytes stored) commits without a
// transaction, and so without its writes to disk every checkpoint interval.
func (g *group) write(pc *pendingCheckpoint) error {
	rt := g.rt
	if f := rt.commitFault.Load(); f != nil {
		if err := (*f)(); err != nil {
			return err
		}
	}
	cps := make([]map[string]sdk.Checkpoint, len(g.sources))
	changed := false
	for i, s := range g.sources {
		cps[i] = s.committable(pc.positions[i])
		changed = changed || len(cps[i]) > 0
	}
	for _, m := range pc.marks {
		for _, sm := range m.stages {
			changed = changed || !sm.stage.unchanged(sm.snapshot)
		}
	}
	if !changed {
		g.rt.metrics.commitsSkipped.Inc()
		return nil
	}
	return rt.store.Update(func(tx *state.Tx) error {
		for _, m := range pc.marks {
			for _, sm := range m.stages {
				if sm.stage.unchanged(sm.snapshot) {
					continue
				}
				if err := tx.Put(rt.snapshotPath(m.pipeline), []byte(sm.stage.inst.addr()), sm.snapshot); err != nil {
					return err
				}
			}
		}
		for i, s := range g.sources {
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
}

// Commit commits a checkpoint of every group, the groups side by side: a group whose sinks
// do not accept holds back its own commit only. It returns when every group committed
// everything dispatched before the call, or with the errors of those that did not.
func (rt *Runtime) Commit(ctx context.Context) error {
	if rt.store == nil {
		return nil
	}
	errs := make([]error, len(rt.groups))
	var wg sync.WaitGroup
	for i, g := range rt.groups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := g.commit(ctx); err != nil {
				errs[i] = fmt.Errorf("group %s: %w", g.name, err)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}
