package runtime

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tda-dev/tda/agent/deadletter"
	"github.com/tda-dev/tda/agent/state"
	"github.com/tda-dev/tda/sdk/host"
)

// Bounds of the dead-letter store.
const (
	DefaultMaxDeadLetters     = 10000
	DefaultMaxDeadLetterBytes = 256 << 20
	// previewEvents is how many events of a letter List shows in short form.
	previewEvents = 3
)

// ErrDeadLettersFull is returned when the dead-letter store holds its maximum: the store
// refuses new letters rather than forget old ones, and the batch stays where it was (a
// sink's queue keeps it and tries again), so nothing is lost while an operator replays or
// drops letters.
var ErrDeadLettersFull = errors.New("the dead-letter store is full")

var deadLetterPath = []string{"deadletters"}

// deadLetters is the runtime's dead-letter store: letters persisted in the state store's
// "deadletters" bucket (key: the id, big-endian; value: [4-byte header length][JSON
// header][the batch in the durable queue's protobuf encoding]), or in memory when the
// runtime has no store (tda replay). It is bounded by count and bytes, and refuses new
// letters when full (ErrDeadLettersFull).
type deadLetters struct {
	rt       *Runtime
	store    *state.Store
	maxCount int
	maxBytes int64

	mu sync.Mutex
	// count, bytes and perInstance mirror what is stored.
	count       int
	bytes       int64
	perInstance map[string]int
	// memory holds the letters when there is no store (bounded like the store).
	memory map[uint64]memoryLetter
	nextID uint64
}

type memoryLetter struct {
	letter deadletter.Letter
	raw    []byte
}

func newDeadLetters(rt *Runtime) *deadLetters {
	return &deadLetters{rt: rt, store: rt.store, maxCount: DefaultMaxDeadLetters,
		maxBytes: DefaultMaxDeadLetterBytes, perInstance: map[string]int{}, memory: map[uint64]memoryLetter{}}
}

// load counts the letters left by previous runs.
func (d *deadLetters) load() error {
	if d.store == nil {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.count, d.bytes, d.perInstance = 0, 0, map[string]int{}
	return d.store.View(func(tx *state.Tx) error {
		return tx.ForEach(deadLetterPath, func(k, v []byte) error {
			l, _, err := decodeLetter(v, false)
			if err != nil {
				return nil // unreadable: counted by nothing, shown by nothing
			}
			d.count++
			d.bytes += int64(len(v))
			d.perInstance[l.Instance]++
			return nil
		})
	})
}

func encodeLetter(l deadletter.Letter, raw []byte) ([]byte, error) {
	h, err := json.Marshal(l)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 4, 4+len(h)+len(raw))
	binary.BigEndian.PutUint32(out, uint32(len(h)))
	out = append(out, h...)
	return append(out, raw...), nil
}

func decodeLetter(v []byte, withBatch bool) (deadletter.Letter, []byte, error) {
	var l deadletter.Letter
	if len(v) < 4 || int(binary.BigEndian.Uint32(v)) > len(v)-4 {
		return l, nil, errors.New("short dead-letter record")
	}
	n := int(binary.BigEndian.Uint32(v))
	if err := json.Unmarshal(v[4:4+n], &l); err != nil {
		return l, nil, fmt.Errorf("dead-letter header: %w", err)
	}
	var raw []byte
	if withBatch {
		raw = append([]byte(nil), v[4+n:]...)
	}
	return l, raw, nil
}

// add stores a batch as a dead letter and returns it; ErrDeadLettersFull when the store is
// at its bounds.
func (d *deadLetters) add(instance, pipeline string, reason deadletter.Reason, cause error, attempts int, b *host.Batch) (deadletter.Letter, error) {
	raw, err := b.Raw()
	if err != nil {
		return deadletter.Letter{}, fmt.Errorf("encode the dead letter: %w", err)
	}
	l := deadletter.Letter{Instance: instance, Pipeline: pipeline, Time: time.Now().UTC(), Reason: reason,
		Error: cause.Error(), Attempts: attempts, Events: b.Len(), Bytes: b.Size(), Preview: preview(b)}
	for kind := range b.KindCounts() {
		l.Kinds = append(l.Kinds, kind)
	}
	sort.Strings(l.Kinds)
	d.mu.Lock()
	defer d.mu.Unlock()
	size := int64(len(raw) + 512)
	if d.count >= d.maxCount || d.bytes+size > d.maxBytes {
		return l, fmt.Errorf("%w (%d letters, %d bytes; bounds %d letters, %d bytes): list them with `tda deadletter list`, then replay or drop them",
			ErrDeadLettersFull, d.count, d.bytes, d.maxCount, d.maxBytes)
	}
	if d.store == nil {
		d.nextID++
		l.ID = d.nextID
		d.memory[l.ID] = memoryLetter{letter: l, raw: raw}
	} else {
		err := d.store.Update(func(tx *state.Tx) error {
			id, err := tx.NextSequence(deadLetterPath)
			if err != nil {
				return err
			}
			l.ID = id
			v, err := encodeLetter(l, raw)
			if err != nil {
				return err
			}
			size = int64(len(v))
			return tx.Put(deadLetterPath, letterKey(id), v)
		})
		if err != nil {
			return l, fmt.Errorf("store the dead letter: %w", err)
		}
	}
	d.count++
	d.bytes += size
	d.perInstance[instance]++
	return l, nil
}

func letterKey(id uint64) []byte { return binary.BigEndian.AppendUint64(nil, id) }

// preview is a few of a batch's events in short form.
func preview(b *host.Batch) []string {
	var out []string
	events := b.Events()
	for i := range events {
		if len(out) == previewEvents {
			break
		}
		e := &events[i]
		switch {
		case e.Alert != nil:
			out = append(out, fmt.Sprintf("alert %s %s %s", e.Alert.Rule, e.Alert.State, e.Alert.DeliveryKey()))
		case len(e.Line) > 0:
			line := e.Line
			if len(line) > 80 {
				line = line[:80]
			}
			out = append(out, fmt.Sprintf("%s %q", e.Kind, line))
		default:
			out = append(out, e.Kind)
		}
	}
	return out
}

// countFor returns the number of letters an instance gave up on.
func (d *deadLetters) countFor(instance string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.perInstance[instance]
}

func (d *deadLetters) totals() (int, int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.count, d.bytes
}

// List implements deadletter.Letters.
func (d *deadLetters) List(ctx context.Context) ([]deadletter.Letter, error) {
	var out []deadletter.Letter
	if d.store == nil {
		d.mu.Lock()
		for _, m := range d.memory {
			out = append(out, m.letter)
		}
		d.mu.Unlock()
		sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
		return out, nil
	}
	err := d.store.View(func(tx *state.Tx) error {
		return tx.ForEach(deadLetterPath, func(k, v []byte) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			l, _, err := decodeLetter(v, false)
			if err == nil {
				out = append(out, l)
			}
			return nil
		})
	})
	return out, err
}

// get returns a letter and its batch.
func (d *deadLetters) get(id uint64) (deadletter.Letter, *host.Batch, error) {
	var l deadletter.Letter
	var raw []byte
	if d.store == nil {
		d.mu.Lock()
		m, ok := d.memory[id]
		d.mu.Unlock()
		if !ok {
			return l, nil, deadletter.ErrNotFound
		}
		l, raw = m.letter, m.raw
	} else {
		var v []byte
		if err := d.store.View(func(tx *state.Tx) error {
			var err error
			v, err = tx.Get(deadLetterPath, letterKey(id))
			return err
		}); err != nil {
			return l, nil, err
		}
		if v == nil {
			return l, nil, deadletter.ErrNotFound
		}
		var err error
		if l, raw, err = decodeLetter(v, true); err != nil {
			return l, nil, err
		}
	}
	b, err := host.RawBatch(raw)
	if err != nil {
		return l, nil, fmt.Errorf("dead letter %d: %w", id, err)
	}
	return l, b, nil
}

// Show implements deadletter.Letters.
func (d *deadLetters) Show(_ context.Context, id uint64) (deadletter.Letter, []json.RawMessage, error) {
	l, b, err := d.get(id)
	if err != nil {
		return l, nil, err
	}
	events := b.Events()
	out := make([]json.RawMessage, len(events))
	for i := range events {
		out[i] = events[i].AppendJSON(nil)
	}
	return l, out, nil
}

// Replay implements deadletter.Letters: a sink's letter goes back on the sink's queue (it
// keeps its buffer's policy), a processor's letter into its pipeline as injected events.
func (d *deadLetters) Replay(ctx context.Context, id uint64) error {
	l, b, err := d.get(id)
	if err != nil {
		return err
	}
	if err := d.rt.requeue(ctx, l, b); err != nil {
		return fmt.Errorf("replay dead letter %d: %w", id, err)
	}
	return d.Drop(ctx, id)
}

// Drop implements deadletter.Letters.
func (d *deadLetters) Drop(_ context.Context, id uint64) error {
	instance, err := d.drop(id)
	if err != nil {
		return err
	}
	if k := d.rt.sinkByAddr(instance); k != nil {
		k.publishFigures()
		k.refreshHealth()
	} else {
		d.rt.healthyUnlessLetters(instance)
	}
	return nil
}

// drop deletes a letter and returns the instance it belonged to.
func (d *deadLetters) drop(id uint64) (string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.store == nil {
		m, ok := d.memory[id]
		if !ok {
			return "", deadletter.ErrNotFound
		}
		delete(d.memory, id)
		d.count--
		d.bytes -= int64(len(m.raw) + 512)
		d.forget(m.letter.Instance)
		return m.letter.Instance, nil
	}
	var found *deadletter.Letter
	var size int
	err := d.store.Update(func(tx *state.Tx) error {
		v, err := tx.Get(deadLetterPath, letterKey(id))
		if err != nil || v == nil {
			return err
		}
		l, _, _ := decodeLetter(v, false)
		found, size = &l, len(v)
		return tx.Delete(deadLetterPath, letterKey(id))
	})
	if err != nil {
		return "", err
	}
	if found == nil {
		return "", deadletter.ErrNotFound
	}
	d.count--
	d.bytes -= int64(size)
	d.forget(found.Instance)
	return found.Instance, nil
}

func (d *deadLetters) forget(instance string) {
	if d.perInstance[instance]--; d.perInstance[instance] <= 0 {
		delete(d.perInstance, instance)
	}
}

// requeue puts a letter's events back where they were given up on.
func (rt *Runtime) requeue(ctx context.Context, l deadletter.Letter, b *host.Batch) error {
	if k := rt.sinkByAddr(l.Instance); k != nil {
		accepted := make(chan struct{})
		if err := k.enqueueCtx(ctx, b, func() { close(accepted) }, true); err != nil {
			return err
		}
		// A memory queue accepts on delivery: the letter goes once the sink has it.
		select {
		case <-accepted:
		case <-ctx.Done():
			return ctx.Err()
		}
		return nil
	}
	if l.Pipeline != "" {
		return rt.Inject(ctx, l.Pipeline, b.Events())
	}
	return fmt.Errorf("%s is not running here; start the agent with it, then replay", l.Instance)
}

func (rt *Runtime) sinkByAddr(addr string) *sinkRunner {
	for _, k := range rt.sinks {
		if k.addr() == addr {
			return k
		}
	}
	return nil
}

// DeadLetters returns the dead-letter store: the batches the sinks and processors gave up on.
func (rt *Runtime) DeadLetters() deadletter.Letters { return rt.deadLetterStore() }

// deadLetterStore returns the runtime's store of dead letters, made on first use.
func (rt *Runtime) deadLetterStore() *deadLetters {
	rt.deliveryOnce.Do(func() {
		rt.letters = newDeadLetters(rt)
		if err := rt.letters.load(); err != nil {
			rt.logger.Error("cannot read the dead-letter store; its figures start at zero", "error", err)
		}
	})
	return rt.letters
}

var _ deadletter.Letters = (*deadLetters)(nil)

// setAsideInput makes a processor's input batch a dead letter after max_attempts failures,
// crashes or hangs, and says so in the state with what to do; an error means the store could
// not take it.
func (rt *Runtime) setAsideInput(in *instance, b *host.Batch, cause error, attempts int) error {
	reason := deadletter.ReasonCrashBudget
	if isDeadline(cause) {
		reason = deadletter.ReasonDeadline
	}
	l, err := rt.deadLetterStore().add(in.addr(), rt.pipelineOf(in), reason, cause, attempts, b)
	if err != nil {
		return err
	}
	in.logger.Error("processor gave up on a batch; it is a dead letter", "error", cause, "attempts", attempts,
		"events", b.Len(), "dead_letter", l.ID)
	rt.health.set(in.addr(), false, fmt.Sprintf("failed on a batch %d times (max_attempts): %v; fix the processor or the batch, then replay the dead letter: tda deadletter replay %d",
		attempts, cause, l.ID))
	return nil
}

// healthyUnlessLetters clears an instance's component state, unless it has dead letters
// waiting for an operator.
func (rt *Runtime) healthyUnlessLetters(addr string) {
	if n := rt.deadLetterStore().countFor(addr); n > 0 {
		rt.health.set(addr, false, fmt.Sprintf("%d batches were set aside as dead letters: inspect them with `tda deadletter list`, then replay or drop them", n))
		return
	}
	rt.health.set(addr, true, "")
}

// isDeadline reports whether err is a call that ran out of time.
func isDeadline(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	st, ok := status.FromError(err)
	if !ok {
		st, ok = status.FromError(errors.Unwrap(err))
	}
	return ok && st.Code() == codes.DeadlineExceeded
}

// pipelineOf names the pipeline a processor instance runs in ("" for another instance).
func (rt *Runtime) pipelineOf(in *instance) string {
	for _, p := range rt.pipelines {
		for _, st := range p.stages {
			if st.inst == in {
				return p.name
			}
		}
	}
	return ""
}
