package runtime

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tda-dev/tda/sdk"
	"github.com/tda-dev/tda/sdk/host"
)

// envelope tracks one source batch in one pipeline until every sink of the pipeline has
// accepted its share: then the pipeline's flow budget gets the batch back and the source may
// be granted another credit. It starts held once by the pipeline's processing.
type envelope struct {
	src      *sourceRunner
	flow     *flow
	size     int
	received time.Time
	pending  atomic.Int32
}

func (e *envelope) hold() { e.pending.Add(1) }

func (e *envelope) release() {
	if e.pending.Add(-1) == 0 {
		e.flow.done(e.src, e.size)
		// The bytes freed may make room for any source of the pipeline, not only this one.
		for _, s := range e.flow.sources {
			s.regrant()
		}
	}
}

// cpSegment is the checkpoint entries of a run of batches, coalesced by key.
type cpSegment struct {
	upTo    uint64 // the sequence of the last batch of the run
	entries map[string]sdk.Checkpoint
}

// sourceRunner reads one source, dispatches its batches to the pipelines it feeds and keeps
// its checkpoints.
//
// What a source's committed checkpoint means: every batch up to it was accepted by every sink
// of every pipeline the source feeds (see checkpoint.go). When one of those pipelines is
// slower, the others may have processed and delivered batches past the checkpoint; after a
// crash of the agent they are read again by all the pipelines (sinks de-duplicate alerts,
// and processors restart from the snapshot committed with the checkpoint, so they count each
// line once). The source keeps its checkpoints: latest (everything dispatched, used to resume after a plugin crash), and
// the entries not yet committed to the state store, in at most two segments: sealed (up to
// the group's pending checkpoint barrier) and open (since). Both are maps by key, so what a
// source keeps uncommitted is bounded by its number of keys, however long commits fail.
type sourceRunner struct {
	rt        *Runtime
	inst      *instance
	short     string
	pipelines []*pipelineRunner

	mu     sync.Mutex
	latest map[string][]byte
	sealed *cpSegment
	open   map[string]sdk.Checkpoint
	seq    uint64
	// outstanding is the credits granted to the current reader and not yet used.
	outstanding int
	// avgSize is a moving average of the source's batch sizes, for byte credits.
	avgSize  int
	reader   host.Reader
	stopping bool
	ended    bool
	// committedAll is every checkpoint entry committed, from the store at start on (nil
	// until the first reader opens); bounded by the source's number of keys. A source that
	// watches commits gets all of it when a reader opens, then each commit's entries.
	committedAll map[string]sdk.Checkpoint
	// commitSendMu keeps the commit notifications of a source in order: the one a new
	// reader gets and those of later commits.
	commitSendMu sync.Mutex

	done chan struct{}
}

func (s *sourceRunner) addr() string { return s.inst.addr() }

// run reads until stopped, reopening the stream after a crash or a failure.
func (s *sourceRunner) run(ctx context.Context) {
	defer close(s.done)
	failures := 0
	for {
		s.mu.Lock()
		if s.stopping {
			s.mu.Unlock()
			return
		}
		cps := make(map[string][]byte, len(s.latest))
		for k, v := range s.latest {
			cps[k] = v
		}
		// A new reader starts with the credits that fit now; acks meanwhile wait for it.
		s.outstanding = 0
		credits := s.roomLocked()
		s.outstanding = credits
		s.mu.Unlock()

		// Opening the stream is a call to the plugin: it has the call deadline. The stream
		// itself lives as long as ctx.
		openCtx, cancel := s.inst.callContext(ctx)
		reader, err := s.openStream(ctx, openCtx, cps, credits)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if !s.recoverOrWait(ctx, err, &failures) {
				return
			}
			continue
		}
		s.commitSendMu.Lock()
		s.mu.Lock()
		s.reader = reader
		stopping := s.stopping
		if s.committedAll == nil {
			// Nothing dispatched yet: what the source resumes from is what the store holds.
			s.committedAll = make(map[string]sdk.Checkpoint, len(s.latest))
			for k, v := range s.latest {
				s.committedAll[k] = sdk.Checkpoint{Key: k, Value: v}
			}
		}
		committed := s.committedEntriesLocked(s.committedAll)
		s.mu.Unlock()
		s.notifyCommitted(reader, committed)
		s.commitSendMu.Unlock()
		// A new stream reports its own status: what the previous one said no longer holds.
		s.rt.health.setStatus(s.addr(), true, "")
		s.regrant()
		if stopping {
			_ = reader.Stop()
		}

		for {
			msg, err := reader.Recv()
			if err != nil {
				s.mu.Lock()
				s.reader = nil
				stopping := s.stopping
				s.mu.Unlock()
				if host.IsEOF(err) {
					if !stopping {
						s.inst.logger.Info("source finished")
						s.mu.Lock()
						s.ended = true
						s.mu.Unlock()
					}
					return
				}
				if ctx.Err() != nil || stopping {
					return
				}
				if !s.recoverOrWait(ctx, err, &failures) {
					return
				}
				break
			}
			if failures > 0 {
				// Reading again: whatever made the runner report the source failing is over.
				s.rt.health.set(s.addr(), true, "")
			}
			failures = 0
			if msg.Status != nil {
				s.rt.health.setStatus(s.addr(), msg.Status.Healthy, msg.Status.Reason)
				if msg.Status.Healthy {
					s.inst.logger.Info("source healthy", "reason", msg.Status.Reason)
				} else {
					s.inst.logger.Warn("source degraded", "reason", msg.Status.Reason)
				}
				continue
			}
			s.dispatch(msg.Batch, msg.Checkpoints)
			// The batch refined the source's usual size: the budget may fit more credits.
			s.regrant()
		}
	}
}

// openStream opens the stream: the plugin's Read answers within openCtx's deadline, but the stream
// runs under ctx. The gRPC client binds a stream to the context it was opened with, so the
// deadline is enforced by abandoning a Read that does not answer in time.
func (s *sourceRunner) openStream(ctx, openCtx context.Context, cps map[string][]byte, credits int) (host.Reader, error) {
	if _, ok := openCtx.Deadline(); !ok {
		return s.inst.source().Read(ctx, cps, credits)
	}
	type result struct {
		r   host.Reader
		err error
	}
	ch := make(chan result, 1)
	go func() {
		r, err := s.inst.source().Read(ctx, cps, credits)
		ch <- result{r, err}
	}()
	select {
	case res := <-ch:
		return res.r, res.err
	case <-openCtx.Done():
		go func() {
			// The abandoned Read is stopped as soon as it answers.
			if res := <-ch; res.r != nil {
				_ = res.r.Stop()
			}
		}()
		return nil, fmt.Errorf("open the source's stream: %w", openCtx.Err())
	}
}

// recoverOrWait restarts a crashed plugin, or waits with backoff when the source itself
// failed; false means stop.
func (s *sourceRunner) recoverOrWait(ctx context.Context, err error, failures *int) bool {
	restarted, rerr := s.inst.recover(ctx, err)
	if rerr != nil {
		return false
	}
	if restarted {
		return true
	}
	*failures++
	delay := backoff(*failures, 500*time.Millisecond, 30*time.Second)
	s.rt.health.set(s.addr(), false, fmt.Sprintf("source failed: %v; tda reads again in %s", err, delay.Round(time.Millisecond)))
	s.inst.logger.Error("source failed; reading again", "error", err, "in", delay)
	return sleepCtx(ctx, delay) == nil
}

// dispatch hands a batch to every pipeline the source feeds, atomically with respect to
// checkpoint barriers: a barrier is either before the batch in every pipeline or after it
// in every pipeline.
func (s *sourceRunner) dispatch(b *host.Batch, cps []sdk.Checkpoint) {
	if b == nil {
		b = host.NewBatch(nil)
	}
	size := b.Size()
	s.rt.dispatchMu.Lock()
	defer s.rt.dispatchMu.Unlock()
	s.mu.Lock()
	s.seq++
	if s.avgSize == 0 {
		s.avgSize = size
	} else {
		s.avgSize += (size - s.avgSize) / 8
	}
	if s.outstanding > 0 {
		s.outstanding--
	}
	for _, c := range cps {
		if c.Delete {
			delete(s.latest, c.Key)
		} else {
			s.latest[c.Key] = c.Value
		}
		if s.open == nil {
			s.open = map[string]sdk.Checkpoint{}
		}
		s.open[c.Key] = c
	}
	s.mu.Unlock()
	s.rt.metrics.eventsOut.WithLabelValues(s.addr()).Add(float64(b.Len()))
	now := time.Now()
	// Every other pipeline gets its share before the first may start on the batch: a
	// processor changes its events in place, and a share made meanwhile would copy them half
	// changed (and race with the change).
	shares := make([]*host.Batch, len(s.pipelines))
	for i := range s.pipelines {
		if i > 0 {
			shares[i] = b.Share()
		}
	}
	if len(shares) > 0 {
		shares[0] = b
	}
	for i, p := range s.pipelines {
		pb := shares[i]
		env := &envelope{src: s, flow: p.flow, size: size, received: now}
		env.pending.Store(1)
		p.flow.add(s, size)
		p.in <- item{kind: itemBatch, env: env, batch: pb}
	}
}

// roomLocked returns the credits the source may be granted now: what fits in every
// pipeline it feeds. s.mu is held.
func (s *sourceRunner) roomLocked() int {
	n := -1
	for _, p := range s.pipelines {
		if r := p.flow.room(s, s.outstanding, s.avgSize); n < 0 || r < n {
			n = r
		}
	}
	if n < 0 {
		n = 0
	}
	return n
}

// regrant gives the reader the credits that fit in every pipeline the source feeds; called
// when a pipeline accepted one of its batches and when a reader opens.
func (s *sourceRunner) regrant() {
	s.mu.Lock()
	r := s.reader
	if r == nil {
		s.mu.Unlock()
		return
	}
	n := s.roomLocked()
	if n <= 0 {
		s.mu.Unlock()
		return
	}
	s.outstanding += n
	s.mu.Unlock()
	_ = r.Grant(n)
}

// seal closes the open segment at the last dispatched batch and returns its sequence: the
// source's position at a checkpoint barrier. Called under dispatchMu when no checkpoint of
// the source's group is pending, so an older sealed segment belongs to a barrier that was
// given up and the new one, covering more, absorbs it.
func (s *sourceRunner) seal() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.open) > 0 {
		if s.sealed == nil {
			s.sealed = &cpSegment{entries: s.open}
		} else {
			for k, c := range s.open {
				s.sealed.entries[k] = c
			}
		}
		s.open = nil
	}
	if s.sealed != nil {
		s.sealed.upTo = s.seq
	}
	return s.seq
}

// committable returns the checkpoint entries of the batches up to seq (a sealed position).
func (s *sourceRunner) committable(seq uint64) map[string]sdk.Checkpoint {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]sdk.Checkpoint{}
	if s.sealed != nil && s.sealed.upTo <= seq {
		for k, c := range s.sealed.entries {
			out[k] = c
		}
	}
	return out
}

// committed forgets the entries committed up to seq and tells a source that watches commits
// which they were. Called by the group's commit, in commit order.
func (s *sourceRunner) committed(seq uint64) {
	s.commitSendMu.Lock()
	defer s.commitSendMu.Unlock()
	s.mu.Lock()
	var done map[string]sdk.Checkpoint
	if s.sealed != nil && s.sealed.upTo <= seq {
		done = s.sealed.entries
		s.sealed = nil
	}
	if s.committedAll != nil {
		for k, c := range done {
			if c.Delete {
				delete(s.committedAll, k)
			} else {
				s.committedAll[k] = c
			}
		}
	}
	r := s.reader
	var committed []sdk.Checkpoint
	if r != nil {
		committed = s.committedEntriesLocked(done)
	}
	s.mu.Unlock()
	s.notifyCommitted(r, committed)
}

// committedEntriesLocked lists entries for a commit notification; nil when the source does
// not watch commits or there are none. s.mu is held.
func (s *sourceRunner) committedEntriesLocked(m map[string]sdk.Checkpoint) []sdk.Checkpoint {
	if len(m) == 0 || !s.inst.watchesCommitted() {
		return nil
	}
	out := make([]sdk.Checkpoint, 0, len(m))
	for _, c := range m {
		out = append(out, c)
	}
	return out
}

// notifyCommitted sends a commit notification to the reader. It is a small message on a
// stream whose plugin side always reads, so it does not hold the commit up; a reader that
// is gone loses it, and the next reader gets every committed entry when it opens.
func (s *sourceRunner) notifyCommitted(r host.Reader, cps []sdk.Checkpoint) {
	if r == nil || len(cps) == 0 {
		return
	}
	if err := r.Committed(cps); err != nil {
		s.inst.logger.Debug("commit notification not delivered; the next reader gets it", "error", err)
	}
}

// uncommitted returns the number of checkpoint entries held for a later commit.
func (s *sourceRunner) uncommitted() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.open)
	if s.sealed != nil {
		n += len(s.sealed.entries)
	}
	return n
}

// stop asks the source to finish; run returns once it has.
func (s *sourceRunner) stop() {
	s.mu.Lock()
	s.stopping = true
	r := s.reader
	s.mu.Unlock()
	if r != nil {
		_ = r.Stop()
	}
}

func (s *sourceRunner) hasEnded() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ended
}
