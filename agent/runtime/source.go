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

// envelope tracks one source batch until every sink fed by it has accepted its share.
type envelope struct {
	src      *sourceRunner
	seq      uint64
	received time.Time
	pending  atomic.Int32
}

func (e *envelope) hold() { e.pending.Add(1) }

func (e *envelope) release() {
	if e.pending.Add(-1) == 0 {
		e.src.acked()
	}
}

// cpUpdate is the checkpoint entries a batch carried.
type cpUpdate struct {
	seq uint64
	cps []sdk.Checkpoint
}

// sourceRunner reads one source, dispatches its batches to the pipelines it feeds and keeps
// its checkpoints: latest (everything dispatched, used to resume after a plugin crash) and
// pending (not yet committed to the state store).
type sourceRunner struct {
	rt          *Runtime
	inst        *instance
	short       string
	pipelines   []*pipelineRunner
	maxInflight int

	mu       sync.Mutex
	latest   map[string][]byte
	pending  []cpUpdate
	seq      uint64
	inflight int
	reader   host.Reader
	opening  bool
	stopping bool
	ended    bool

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
		credits := s.maxInflight - s.inflight
		s.opening = true
		s.mu.Unlock()

		reader, err := s.inst.source().Read(ctx, cps, credits)
		if err != nil {
			s.mu.Lock()
			s.opening = false
			s.mu.Unlock()
			if ctx.Err() != nil {
				return
			}
			if !s.recoverOrWait(ctx, err, &failures) {
				return
			}
			continue
		}
		s.mu.Lock()
		s.opening = false
		s.reader = reader
		if extra := (s.maxInflight - s.inflight) - credits; extra > 0 {
			_ = reader.Grant(extra)
		}
		stopping := s.stopping
		s.mu.Unlock()
		if stopping {
			_ = reader.Stop()
		}
		s.rt.health.set(s.addr(), true, "")

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
			failures = 0
			if msg.Status != nil {
				s.rt.health.set(s.addr(), msg.Status.Healthy, msg.Status.Reason)
				if msg.Status.Healthy {
					s.inst.logger.Info("source healthy", "reason", msg.Status.Reason)
				} else {
					s.inst.logger.Warn("source degraded", "reason", msg.Status.Reason)
				}
				continue
			}
			s.dispatch(msg.Batch, msg.Checkpoints)
		}
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
	s.rt.health.set(s.addr(), false, fmt.Sprintf("source failed: %v", err))
	s.inst.logger.Error("source failed; reading again", "error", err, "in", delay)
	return sleepCtx(ctx, delay) == nil
}

// dispatch hands a batch to every pipeline the source feeds, atomically with respect to
// checkpoint barriers.
func (s *sourceRunner) dispatch(b *host.Batch, cps []sdk.Checkpoint) {
	if b == nil {
		b = host.NewBatch(nil)
	}
	s.rt.dispatchMu.Lock()
	defer s.rt.dispatchMu.Unlock()
	s.mu.Lock()
	s.seq++
	seq := s.seq
	s.inflight++
	for _, c := range cps {
		if c.Delete {
			delete(s.latest, c.Key)
		} else {
			s.latest[c.Key] = c.Value
		}
	}
	if len(cps) > 0 {
		s.pending = append(s.pending, cpUpdate{seq: seq, cps: cps})
	}
	s.mu.Unlock()
	s.rt.metrics.eventsOut.WithLabelValues(s.addr()).Add(float64(b.Len()))
	env := &envelope{src: s, seq: seq, received: time.Now()}
	env.pending.Store(int32(len(s.pipelines)))
	for i, p := range s.pipelines {
		pb := b
		if i > 0 {
			pb = b.Share()
		}
		p.in <- item{kind: itemBatch, env: env, batch: pb}
	}
}

// acked is called when every sink accepted a batch: the source gets its credit back.
func (s *sourceRunner) acked() {
	s.mu.Lock()
	s.inflight--
	r := s.reader
	opening := s.opening
	s.mu.Unlock()
	if r != nil && !opening {
		_ = r.Grant(1)
	}
}

// position returns the sequence of the last dispatched batch.
func (s *sourceRunner) position() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.seq
}

// committable returns the checkpoint entries of batches up to seq, coalesced by key.
func (s *sourceRunner) committable(seq uint64) map[string]sdk.Checkpoint {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]sdk.Checkpoint{}
	for _, u := range s.pending {
		if u.seq > seq {
			break
		}
		for _, c := range u.cps {
			out[c.Key] = c
		}
	}
	return out
}

// committed drops the pending entries up to seq.
func (s *sourceRunner) committed(seq uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := 0
	for i < len(s.pending) && s.pending[i].seq <= seq {
		i++
	}
	s.pending = append(s.pending[:0:0], s.pending[i:]...)
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
